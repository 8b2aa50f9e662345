package imap

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// MULTIAPPEND (RFC 3502): several messages in one APPEND, each with its own flags and
// date, stored with consecutive UIDs and answered with one APPENDUID range.
func TestMultiAppend(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	m1, m2, m3 := plainMessage("One", "1\r\n"), plainMessage("Two", "2\r\n"), plainMessage("Three", "3\r\n")
	mbox := e.mailbox("Archives")
	_, status := c.cmd("APPEND Archives (\\Seen) {%d+}\r\n%s (\\Flagged $Work) \"01-Jan-2024 10:00:00 +0100\" {%d+}\r\n%s {%d+}\r\n%s",
		len(m1), m1, len(m2), m2, len(m3), m3)
	if want := fmt.Sprintf("OK [APPENDUID %d 1:3]", mbox.UIDValidity); !strings.HasPrefix(status, want) {
		t.Fatalf("MULTIAPPEND: %s, want %s", status, want)
	}
	c.ok("SELECT Archives")
	lines := c.ok("FETCH 1:* (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	for i, want := range []string{
		`FLAGS (\Recent \Seen) INTERNALDATE "`,
		`FLAGS (\Recent \Flagged $Work) INTERNALDATE "01-Jan-2024 10:00:00 +0100"`,
		`FLAGS (\Recent) INTERNALDATE "`,
	} {
		f := grep(lines, fmt.Sprintf(`^\* %d FETCH`, i+1))
		if subject := []string{"One", "Two", "Three"}[i]; len(f) != 1 || !strings.Contains(f[0], want) || !strings.Contains(f[0], "Subject: "+subject+"\r\n") {
			t.Errorf("message %d: %q, want %s and subject %s", i+1, f, want, subject)
		}
	}

	// Synchronizing literals: each is asked for in turn.
	c.send("T50 APPEND INBOX {%d}", len(m1))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("first literal: %q", l)
	}
	c.send("%s {%d}", m1, len(m2))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("second literal: %q", l)
	}
	c.send("%s", m2)
	if l := c.line(); !strings.HasPrefix(l, "T50 OK [APPENDUID ") || !strings.Contains(l, " 1:2]") {
		t.Fatalf("MULTIAPPEND with synchronizing literals: %q", l)
	}
}

// If one message of a MULTIAPPEND is refused, none is stored (RFC 3502 §6.3.11), and the
// literals sent are read, so the session stays in step.
func TestMultiAppendAllOrNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.rawLogin()
	small := plainMessage("Small", "s\r\n")
	big := plainMessage("Big", strings.Repeat("b", 3000)+"\r\n")

	// Over quota only with the second: neither is stored.
	if err := e.st.SetQuota(ctx, testUser, int64(len(small)+len(big))-1); err != nil {
		t.Fatal(err)
	}
	_, status := c.cmd("APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s", len(small), small, len(big), big)
	if !strings.HasPrefix(status, "NO [OVERQUOTA]") {
		t.Errorf("MULTIAPPEND over quota: %s, want NO [OVERQUOTA]", status)
	}
	if st, _ := e.st.Status(ctx, e.mailbox("INBOX").ID); st.Messages != 0 {
		t.Errorf("INBOX has %d messages after a refused MULTIAPPEND", st.Messages)
	}

	// A bad flag on the second message: BAD, nothing stored, the third literal skipped.
	if err := e.st.SetQuota(ctx, testUser, 0); err != nil {
		t.Fatal(err)
	}
	_, status = c.cmd("APPEND INBOX {%d+}\r\n%s (\\Bogus) {%d+}\r\n%s {%d+}\r\n%s",
		len(small), small, len(small), small, len(small), small)
	if !strings.HasPrefix(status, "BAD") {
		t.Errorf("MULTIAPPEND with an unknown system flag: %s, want BAD", status)
	}
	if st, _ := e.st.Status(ctx, e.mailbox("INBOX").ID); st.Messages != 0 {
		t.Errorf("INBOX has %d messages after a MULTIAPPEND answered BAD", st.Messages)
	}
	// In step: the next command is answered as itself.
	if lines := c.ok("STATUS INBOX (MESSAGES)"); len(lines) != 1 || !strings.Contains(lines[0], "MESSAGES 0") {
		t.Errorf("STATUS after refused MULTIAPPENDs: %q", lines)
	}
	_, status = c.cmd("APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s", len(small), small, len(big), big)
	if !strings.HasPrefix(status, "OK [APPENDUID ") || !strings.Contains(status, " 1:2]") {
		t.Errorf("MULTIAPPEND within quota: %s", status)
	}
}
