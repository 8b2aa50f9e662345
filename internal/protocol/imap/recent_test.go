package imap

import (
	"strings"
	"testing"
)

// RFC 3501 §2.3.2: \Recent is held by one session per message, the first to see it. EXAMINE
// shows recent messages without taking them (imaptest's select and copy scripts).
func TestRecent(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("One", "x\r\n"))
	e.deliver("INBOX", plainMessage("Two", "x\r\n"))

	c := e.rawLogin()
	if got := grep(c.ok("EXAMINE INBOX"), "RECENT"); len(got) != 1 || got[0] != "* 2 RECENT" {
		t.Errorf("EXAMINE: %q, want 2 RECENT", got)
	}
	if got := grep(c.ok("FETCH 1 FLAGS"), "FETCH"); len(got) != 1 || got[0] != `* 1 FETCH (FLAGS (\Recent))` {
		t.Errorf("FETCH FLAGS under EXAMINE: %q", got)
	}
	c.ok("CLOSE")
	if got := grep(c.ok("STATUS INBOX (RECENT)"), "STATUS"); len(got) != 1 || !strings.Contains(got[0], "RECENT 2") {
		t.Errorf("STATUS after EXAMINE: %q, want RECENT 2", got)
	}
	if got := grep(c.ok("SELECT INBOX"), "RECENT"); len(got) != 1 || got[0] != "* 2 RECENT" {
		t.Errorf("SELECT: %q, want 2 RECENT", got)
	}

	// Another session selecting later gets none; STATUS counts none.
	other := e.rawLogin()
	if got := grep(other.ok("STATUS INBOX (RECENT)"), "STATUS"); len(got) != 1 || !strings.Contains(got[0], "RECENT 0") {
		t.Errorf("STATUS after SELECT: %q, want RECENT 0", got)
	}
	if got := grep(other.ok("SELECT INBOX"), "RECENT"); len(got) != 1 || got[0] != "* 0 RECENT" {
		t.Errorf("second SELECT: %q, want 0 RECENT", got)
	}
	if got := grep(other.ok("SEARCH RECENT"), "SEARCH"); len(got) != 1 || got[0] != "* SEARCH" {
		t.Errorf("SEARCH RECENT in the second session: %q", got)
	}
	if got := grep(c.ok("SEARCH RECENT"), "SEARCH"); len(got) != 1 || got[0] != "* SEARCH 1 2" {
		t.Errorf("SEARCH RECENT in the first session: %q", got)
	}

	// A new message goes to the first session to announce it, with RECENT after EXISTS.
	e.deliver("INBOX", plainMessage("Three", "x\r\n"))
	got := other.ok("NOOP")
	if strings.Join(got, "|") != "* 3 EXISTS|* 1 RECENT" {
		t.Errorf("NOOP after a delivery: %q, want EXISTS then RECENT", got)
	}
	if got := grep(other.ok("FETCH 3 FLAGS"), "FETCH"); len(got) != 1 || got[0] != `* 3 FETCH (FLAGS (\Recent))` {
		t.Errorf("FETCH FLAGS of the new message: %q", got)
	}
	got = c.ok("NOOP")
	if strings.Join(got, "|") != "* 3 EXISTS|* 2 RECENT" {
		t.Errorf("NOOP in the first session: %q", got)
	}
	if got := grep(c.ok("SEARCH NEW"), "SEARCH"); len(got) != 1 || got[0] != "* SEARCH 1 2" {
		t.Errorf("SEARCH NEW in the first session: %q", got)
	}
	if got := grep(c.ok("SEARCH OLD"), "SEARCH"); len(got) != 1 || got[0] != "* SEARCH 3" {
		t.Errorf("SEARCH OLD in the first session: %q", got)
	}
}
