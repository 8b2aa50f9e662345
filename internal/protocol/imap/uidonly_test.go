package imap

import (
	"slices"
	"strings"
	"testing"
)

// TestUIDOnly: after ENABLE UIDONLY (RFC 9586) commands with sequence numbers get
// BAD [UIDREQUIRED], FETCH responses become "* uid UIDFETCH" (the UID item only when asked
// for), for this session's commands and for changes made elsewhere, and expunges come as
// VANISHED.
func TestUIDOnly(t *testing.T) {
	e, c := searchEnv(t) // UIDs 1 to 4: 1 \Seen, 2, 3 \Seen \Flagged $Work, 4 \Deleted
	if got := c.ok("ENABLE UIDONLY"); !slices.Equal(got, []string{"* ENABLED UIDONLY"}) {
		t.Fatalf("ENABLE: %q", got)
	}
	for _, cmd := range []string{
		"FETCH 1 FLAGS", `STORE 1 +FLAGS (\Seen)`, "SEARCH ALL", "COPY 1 INBOX", "MOVE 1 INBOX",
		"SORT (ARRIVAL) US-ASCII ALL", "THREAD REFERENCES US-ASCII ALL",
		"UID SEARCH 1:2", "UID SEARCH NOT 1", "UID SEARCH OR SEEN 2", "UID SORT (ARRIVAL) US-ASCII 1",
		"UID THREAD REFERENCES US-ASCII NOT 3",
	} {
		if _, status := c.cmd("%s", cmd); !strings.HasPrefix(status, "BAD [UIDREQUIRED]") {
			t.Errorf("%s: %s, want BAD [UIDREQUIRED]", cmd, status)
		}
	}
	if got := c.ok("UID SEARCH UID 2:3"); !slices.Equal(got, []string{"* SEARCH 2 3"}) {
		t.Errorf("UID SEARCH UID: %q", got)
	}

	// UID 2 goes, so UID 3 is message 2: UIDFETCH must name it 3.
	c.ok(`UID STORE 2 +FLAGS.SILENT (\Deleted)`)
	if got := c.ok("UID EXPUNGE 2"); !slices.Equal(got, []string{"* VANISHED 2"}) {
		t.Errorf("UID EXPUNGE: %q, want VANISHED", got)
	}
	if got := c.ok("UID FETCH 3 (FLAGS)"); !slices.Equal(got, []string{`* 3 UIDFETCH (FLAGS (\Recent \Flagged \Seen $Work))`}) {
		t.Errorf("UID FETCH FLAGS: %q", got)
	}
	if got := c.ok("UID FETCH 3 (UID RFC822.SIZE)"); len(got) != 1 || !strings.HasPrefix(got[0], "* 3 UIDFETCH (UID 3 RFC822.SIZE ") {
		t.Errorf("UID FETCH UID: %q", got)
	}
	if got := c.ok(`UID STORE 3 -FLAGS (\Flagged)`); !slices.Equal(got, []string{`* 3 UIDFETCH (FLAGS (\Recent \Seen $Work))`}) {
		t.Errorf("UID STORE: %q", got)
	}

	other := e.rawLogin()
	other.ok("SELECT INBOX")
	other.ok(`UID STORE 3 +FLAGS.SILENT (\Answered)`)
	other.ok(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
	other.ok("UID EXPUNGE 1")
	want := []string{"* VANISHED 1", `* 3 UIDFETCH (FLAGS (\Recent \Answered \Seen $Work))`}
	if got := c.ok("NOOP"); !slices.Equal(got, want) {
		t.Errorf("changes made elsewhere: %q, want %q", got, want)
	}
	// The other session, without UIDONLY, still speaks in sequence numbers.
	if got := other.ok("FETCH 1 (UID)"); !slices.Equal(got, []string{"* 1 FETCH (UID 3)"}) {
		t.Errorf("a session without UIDONLY: %q", got)
	}
}
