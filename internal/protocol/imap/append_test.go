package imap

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestAppend(t *testing.T) {
	e := newEnv(t)
	msg := plainMessage("Appended draft", "Exactly\r\nthese bytes\r\n")
	c := e.rawLogin()
	inbox := e.mailbox("INBOX")
	c.send("A1 APPEND INBOX (\\flagged $Todo) \"15-Mar-2023 10:20:30 +0100\" {%d}", len(msg))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND continuation: %q", l)
	}
	c.send("%s", msg)
	if l := c.line(); l != "A1 OK [APPENDUID "+itoa(inbox.UIDValidity)+" 1] APPEND completed" {
		t.Fatalf("APPEND: %q", l)
	}
	c.ok("SELECT INBOX")
	got := grep(c.ok("FETCH 1 (FLAGS INTERNALDATE BODY.PEEK[])"), "FETCH")
	want := `* 1 FETCH (FLAGS (\Recent \Flagged $Todo) INTERNALDATE "15-Mar-2023 10:20:30 +0100" BODY[] {` + itoa(uint32(len(msg))) + "}\r\n" + msg + ")"
	if len(got) != 1 || got[0] != want {
		t.Errorf("appended message:\n%q\nwant\n%q", got, want)
	}
	if _, status := c.cmd("APPEND Nowhere {1+}\r\nx"); !strings.HasPrefix(status, "NO [TRYCREATE]") {
		t.Errorf("APPEND to a missing mailbox: %s", status)
	}
	// Any octets are stored, an empty header section too (as Dovecot; imaptest's esearch).
	c.ok("APPEND INBOX {5+}\r\n\r\n1\r\n")
	if got := grep(c.ok("FETCH 2 (BODY.PEEK[] BODY.PEEK[TEXT])"), "FETCH"); len(got) != 1 ||
		got[0] != "* 2 FETCH (BODY[] {5}\r\n\r\n1\r\n BODY[TEXT] {3}\r\n1\r\n)" {
		t.Errorf("message with an empty header: %q", got)
	}
}

// RFC 3516 §4.2: a literal8 APPEND is stored octet for octet, bare LFs and NULs included.
func TestAppendLiteral8Unchanged(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	msg := "Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00-\xe4\n\r\n\n"
	c.ok("APPEND INBOX ~{%d+}\r\n%s", len(msg), msg)
	c.ok("SELECT INBOX")
	if got := grep(c.ok("FETCH 1 (RFC822.SIZE BINARY.PEEK[1])"), "FETCH"); len(got) != 1 ||
		got[0] != "* 1 FETCH (RFC822.SIZE "+strconv.Itoa(len(msg))+" BINARY[1] ~{7}\r\n\x00-\xe4\n\r\n\n)" {
		t.Errorf("literal8 message: %q", got)
	}
	// RFC 3501 §4.3: no NUL in a plain literal; BODY[1] carries 0x80 instead (as Dovecot).
	if got := grep(c.ok("FETCH 1 (BODY.PEEK[1])"), "FETCH"); len(got) != 1 ||
		got[0] != "* 1 FETCH (BODY[1] {7}\r\n\x80-\xe4\n\r\n\n)" {
		t.Errorf("BODY[1] of a part with a NUL: %q", got)
	}
}

func TestAppendSelectedAnnouncesExists(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msg := plainMessage("Hello", "x\r\n")
	cmd := c.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
	cmd.Write([]byte(msg))
	cmd.Close()
	data, err := cmd.Wait()
	if err != nil || data.UID != 1 {
		t.Fatalf("APPEND: %+v %v", data, err)
	}
	if n := c.Mailbox().NumMessages; n != 1 {
		t.Errorf("EXISTS after APPEND to the selected mailbox: %d", n)
	}
}

func TestAppendLimit(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *mailStore) { o.AppendLimit = 1000 })
	c := e.rawLogin()
	if caps := c.ok("CAPABILITY")[0]; !strings.Contains(caps, "APPENDLIMIT=1000") {
		t.Errorf("CAPABILITY %q", caps)
	}
	c.send("A1 APPEND INBOX {1001}")
	if l := c.line(); !strings.HasPrefix(l, "A1 NO [TOOBIG]") {
		t.Errorf("APPEND above the limit: %q", l)
	}
	msg := plainMessage("Small", "x\r\n")
	c.ok("APPEND INBOX {%d+}\r\n%s", len(msg), msg)
}

// TestAppendKeepsExactOctets: a message comes back exactly as it was given, without a line
// break added at its end (RFC 3501 §6.3.11 stores the literal's octets; RFC822.SIZE is their
// number, §7.4.2).
func TestAppendKeepsExactOctets(t *testing.T) {
	e := newEnv(t)
	msg := "From: a@b\r\nSubject: x\r\n\r\nno final line break" // 44 octets, no final CRLF
	c := e.rawLogin()
	c.ok("APPEND INBOX {%d+}\r\n%s", len(msg), msg)
	c.ok("SELECT INBOX")
	got := grep(c.ok("FETCH 1 (RFC822.SIZE BODY.PEEK[])"), "FETCH")
	want := "* 1 FETCH (RFC822.SIZE 44 BODY[] {44}\r\n" + msg + ")"
	if len(got) != 1 || got[0] != want {
		t.Errorf("FETCH of the appended message:\n%q\nwant\n%q", got, want)
	}
}

// A session appending again to the mailbox it last appended to skips the lookup before the
// literal (appendTarget); when that mailbox is gone meanwhile, the answer is still
// NO [TRYCREATE], and nothing is stored.
func TestAppendToAMailboxDeletedMeanwhile(t *testing.T) {
	e := newEnv(t)
	c, other := e.rawLogin(), e.rawLogin()
	msg := plainMessage("Imported", "x\r\n")
	appendSync := func(tag, mailbox string) (continued bool, status string) {
		t.Helper()
		c.send("%s APPEND %s {%d}", tag, mailbox, len(msg))
		l := c.line()
		if !strings.HasPrefix(l, "+") {
			return false, l
		}
		c.send("%s", msg)
		return true, c.line()
	}
	c.ok("CREATE Import")
	if _, status := appendSync("A1", "Import"); !strings.HasPrefix(status, "A1 OK [APPENDUID") {
		t.Fatalf("APPEND: %s", status)
	}
	other.ok("DELETE Import")
	if _, status := appendSync("A2", "Import"); !strings.HasPrefix(status, "A2 NO [TRYCREATE]") {
		t.Errorf("APPEND after another session deleted the mailbox: %s", status)
	}
	// Its own DELETE and RENAME make the session look the mailbox up again: the refusal
	// comes before the message is asked for.
	for _, drop := range []string{"DELETE Import", "RENAME Import Old"} {
		c.ok("CREATE Import")
		if _, status := appendSync("A3", "Import"); !strings.HasPrefix(status, "A3 OK") {
			t.Fatalf("APPEND: %s", status)
		}
		c.ok("%s", drop)
		if continued, status := appendSync("A4", "Import"); continued || !strings.HasPrefix(status, "A4 NO [TRYCREATE]") {
			t.Errorf("APPEND after %s: continued %v, %s", drop, continued, status)
		}
	}
	c.ok("SELECT Old")
	if got := grep(c.ok("FETCH 1:* (FLAGS)"), "FETCH"); len(got) != 1 {
		t.Errorf("Old holds %d messages, want the one appended before the RENAME", len(got))
	}
	// "inbox" is INBOX, the second time too.
	for i := 0; i < 2; i++ {
		if _, status := appendSync("A5", "inbox"); !strings.HasPrefix(status, "A5 OK") {
			t.Fatalf("APPEND to inbox: %s", status)
		}
	}
	c.ok("SELECT INBOX")
	if got := grep(c.ok("FETCH 1:* (FLAGS)"), "FETCH"); len(got) != 2 {
		t.Errorf("INBOX holds %d messages, want 2", len(got))
	}
}
