package imap

import (
	"strings"
	"testing"
)

// TestObjectIDMailboxID: MAILBOXID (RFC 8474 §4) in CREATE's OK, SELECT and EXAMINE,
// STATUS and LIST-STATUS, the same for one mailbox everywhere and across a RENAME, and
// different for another.
func TestObjectIDMailboxID(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	_, status := c.cmd("CREATE Projects")
	id := e.mailbox("Projects").ObjectID()
	if status != "OK [MAILBOXID ("+id+")] CREATE completed" {
		t.Fatalf("CREATE: %s (want MAILBOXID %s)", status, id)
	}
	inbox := e.mailbox("INBOX").ObjectID()
	if inbox == id {
		t.Fatalf("INBOX and Projects share MAILBOXID %s", id)
	}
	for _, cmd := range []string{"SELECT Projects", "EXAMINE Projects"} {
		if got := grep(c.ok("%s", cmd), `MAILBOXID`); len(got) != 1 || got[0] != "* OK [MAILBOXID ("+id+")] Ok" {
			t.Errorf("%s: %q", cmd, got)
		}
	}
	c.ok("RENAME Projects Archive/Projects")
	if got := c.ok("STATUS Archive/Projects (MESSAGES MAILBOXID)"); len(got) != 1 ||
		got[0] != `* STATUS "Archive/Projects" (MESSAGES 0 MAILBOXID (`+id+`))` {
		t.Errorf("STATUS after RENAME: %q", got)
	}
	if got := c.ok("STATUS INBOX (MAILBOXID)"); len(got) != 1 || got[0] != `* STATUS INBOX (MAILBOXID (`+inbox+`))` {
		t.Errorf("STATUS INBOX: %q", got)
	}
	got := grep(c.ok(`LIST "" "INBOX" RETURN (STATUS (UIDNEXT MAILBOXID))`), `STATUS`)
	if len(got) != 1 || !strings.HasSuffix(got[0], " MAILBOXID ("+inbox+"))") {
		t.Errorf("LIST-STATUS: %q", got)
	}
	got = grep(c.ok(`LIST "" "INBOX" RETURN (STATUS (UIDNEXT))`), `STATUS`)
	if len(got) != 1 || strings.Contains(got[0], "MAILBOXID") {
		t.Errorf("LIST-STATUS without MAILBOXID: %q", got)
	}
	if _, status := c.cmd("CREATE INBOX"); strings.Contains(status, "MAILBOXID") || !strings.HasPrefix(status, "NO") {
		t.Errorf("CREATE INBOX: %s", status)
	}
}

// TestObjectIDThreadID: THREADID (RFC 8474 §5.2) joins a reply (by In-Reply-To or
// References) to its parent's thread, and SEARCH THREADID finds the thread's messages.
func TestObjectIDThreadID(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", "Message-ID: <root@example.com>\r\nSubject: plans\r\n\r\nroot\r\n")
	e.deliver("INBOX", "Message-ID: <other@example.com>\r\nSubject: other\r\n\r\nother\r\n")
	e.deliver("INBOX", "Message-ID: <re@example.com>\r\nIn-Reply-To: <root@example.com>\r\nSubject: Re: plans\r\n\r\nre\r\n")
	e.deliver("INBOX", "Message-ID: <re2@example.com>\r\nReferences: <root@example.com>\r\n <re@example.com>\r\nSubject: Re: plans\r\n\r\nre2\r\n")
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	lines := grep(c.ok("FETCH 1:4 (THREADID)"), "FETCH")
	if len(lines) != 4 {
		t.Fatalf("FETCH THREADID: %q", lines)
	}
	ids := make([]string, 4)
	for i, l := range lines {
		_, rest, _ := strings.Cut(l, "THREADID (")
		ids[i], _, _ = strings.Cut(rest, ")")
	}
	if ids[0] == "" || ids[2] != ids[0] || ids[3] != ids[0] || ids[1] == "" || ids[1] == ids[0] {
		t.Fatalf("THREADIDs %q: want 1, 3, 4 in one thread, 2 in another", ids)
	}
	if got := searchNums(t, c, "THREADID "+ids[0]); got != "1 3 4" {
		t.Errorf("SEARCH THREADID %s = %q, want 1 3 4", ids[0], got)
	}
}
