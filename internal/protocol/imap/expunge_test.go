package imap

import (
	"fmt"
	"strings"
	"testing"
)

func TestExpungeAndUIDExpunge(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.deliver("INBOX", plainMessage(fmt.Sprintf("Message %d", i), "x\r\n"))
	}
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	c.ok(`UID STORE 1,3,5 +FLAGS.SILENT (\Deleted)`)
	// Each EXPUNGE counts after the ones before it (RFC 3501 §7.4.1).
	got := grep(c.ok("EXPUNGE"), `EXPUNGE`)
	if strings.Join(got, ",") != "* 1 EXPUNGE,* 2 EXPUNGE,* 3 EXPUNGE" {
		t.Errorf("EXPUNGE: %q", got)
	}
	if got := grep(c.ok("UID SEARCH ALL"), "SEARCH"); len(got) != 1 || got[0] != "* SEARCH 2 4" {
		t.Errorf("left: %q", got)
	}
	c.ok(`UID STORE 2,4 +FLAGS.SILENT (\Deleted)`)
	got = grep(c.ok("UID EXPUNGE 4:10"), `EXPUNGE`)
	if len(got) != 1 || got[0] != "* 2 EXPUNGE" {
		t.Errorf("UID EXPUNGE: %q", got)
	}
	if got := grep(c.ok("UID SEARCH ALL"), "SEARCH"); len(got) != 1 || got[0] != "* SEARCH 2" {
		t.Errorf("left after UID EXPUNGE: %q", got)
	}
	// UID EXPUNGE leaves a message that is not \Deleted.
	c.ok(`UID STORE 2 -FLAGS.SILENT (\Deleted)`)
	if got := grep(c.ok("UID EXPUNGE 2"), `EXPUNGE`); len(got) != 0 {
		t.Errorf("UID EXPUNGE of an undeleted message: %q", got)
	}
}

func TestCloseExpungesSilently(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("Keep", "x\r\n"))
	e.deliver("INBOX", plainMessage("Drop", "x\r\n"))
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	c.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	if got := c.ok("CLOSE"); len(got) != 0 {
		t.Errorf("CLOSE answered %q", got)
	}
	if got := grep(c.ok("SELECT INBOX"), "EXISTS"); len(got) != 1 || got[0] != "* 1 EXISTS" {
		t.Errorf("after CLOSE: %q", got)
	}
}
