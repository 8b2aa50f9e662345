package imap

import (
	"strings"
	"testing"
)

func TestCopyWithCopyUID(t *testing.T) {
	e := newEnv(t)
	a := e.deliver("INBOX", plainMessage("Copy one", "x\r\n"), `\Flagged`)
	b := e.deliver("INBOX", plainMessage("Copy two", "y\r\n"))
	c := e.rawLogin()
	c.ok(`CREATE "Copies"`)
	dst := e.mailbox("Copies")
	c.ok("SELECT INBOX")
	_, status := c.cmd("UID COPY %d,%d Copies", a.UID, b.UID)
	if want := "OK [COPYUID " + itoa(dst.UIDValidity) + " 1:2 1:2]"; !strings.HasPrefix(status, want) {
		t.Errorf("UID COPY: %s, want %s", status, want)
	}
	if _, status := c.cmd("COPY 1 Nowhere"); !strings.HasPrefix(status, "NO [TRYCREATE]") {
		t.Errorf("COPY to a missing mailbox: %s", status)
	}
	// A copy into the selected mailbox arrives as EXISTS.
	_, status = c.cmd("COPY 2 INBOX")
	if !strings.HasPrefix(status, "OK [COPYUID") {
		t.Errorf("COPY into the selected mailbox: %s", status)
	}
	c.ok("SELECT Copies")
	got := grep(c.ok("FETCH 1:* (UID FLAGS BODY.PEEK[])"), "FETCH")
	// The copies are new in Copies: \Recent is this session's, the first to select it.
	if len(got) != 2 || !strings.Contains(got[0], `FLAGS (\Recent \Flagged)`) || !strings.Contains(got[0], "Copy one") || !strings.Contains(got[1], "Copy two") {
		t.Errorf("copies: %q", got)
	}
}

func TestCopyIntoSelectedMailbox(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("Twice", "x\r\n"))
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	untagged, status := c.cmd("COPY 1 INBOX")
	if !strings.HasPrefix(status, "OK [COPYUID") || len(grep(untagged, `^\* 2 EXISTS$`)) != 1 {
		t.Errorf("COPY into the selected mailbox: %q %s", untagged, status)
	}
}

func TestMove(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("Move me", "x\r\n"))
	e.deliver("INBOX", plainMessage("Leave me", "x\r\n"))
	e.deliver("INBOX", plainMessage("Move me too", "x\r\n"))
	trash := e.mailbox("Trash")
	watcher := e.rawLogin()
	watcher.ok("SELECT INBOX")
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	untagged, status := c.cmd("UID MOVE 1,3 Trash")
	if !strings.HasPrefix(status, "OK") {
		t.Fatalf("UID MOVE: %s", status)
	}
	want := []string{"* OK [COPYUID " + itoa(trash.UIDValidity) + " 1,3 1:2] COPY completed", "* 1 EXPUNGE", "* 2 EXPUNGE"}
	if strings.Join(untagged, "|") != strings.Join(want, "|") {
		t.Errorf("UID MOVE responses %q, want %q", untagged, want)
	}
	if got := grep(c.ok("UID SEARCH ALL"), "SEARCH"); len(got) != 1 || got[0] != "* SEARCH 2" {
		t.Errorf("INBOX after MOVE: %q", got)
	}
	// Another session sees the move as expunges.
	if got := grep(watcher.ok("NOOP"), "EXPUNGE"); strings.Join(got, ",") != "* 1 EXPUNGE,* 2 EXPUNGE" {
		t.Errorf("other session after MOVE: %q", got)
	}
	// Into the selected mailbox: copied to a new UID, the original expunged (as Dovecot).
	untagged, status = c.cmd("MOVE 1 INBOX")
	if want := []string{"* OK [COPYUID " + itoa(e.mailbox("INBOX").UIDValidity) + " 2 4] COPY completed", "* 1 EXPUNGE", "* 1 EXISTS", "* 1 RECENT"}; !strings.HasPrefix(status, "OK") ||
		strings.Join(untagged, "|") != strings.Join(want, "|") {
		t.Errorf("MOVE into the same mailbox: %q %s, want %q", untagged, status, want)
	}
	if got := grep(c.ok("UID SEARCH ALL"), "SEARCH"); len(got) != 1 || got[0] != "* SEARCH 4" {
		t.Errorf("INBOX after MOVE into itself: %q", got)
	}
	if _, status := c.cmd("MOVE 1 Nowhere"); !strings.HasPrefix(status, "NO [TRYCREATE]") {
		t.Errorf("MOVE to a missing mailbox: %s", status)
	}
	c.ok("SELECT Trash")
	if got := grep(c.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "FETCH"); len(got) != 2 || !strings.Contains(got[1], "Move me too") {
		t.Errorf("Trash: %q", got)
	}
}
