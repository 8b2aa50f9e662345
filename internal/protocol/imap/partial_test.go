package imap

import (
	"strings"
	"testing"
)

// TestSearchPartial: RETURN (PARTIAL range) (RFC 9394) gives the matches at those
// positions of the result, counted from the first or (negative) from the last, as
// sequence numbers or UIDs.
func TestSearchPartial(t *testing.T) {
	_, c := searchEnv(t)
	c.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	c.ok("UID EXPUNGE 2") // UIDs 1 3 4 are left, as sequence numbers 1 2 3
	for _, tt := range []struct{ cmd, want string }{
		{"SEARCH RETURN (PARTIAL 1:2) ALL", ` PARTIAL (1:2 1:2)`},
		{"SEARCH RETURN (PARTIAL 3:2) ALL", ` PARTIAL (2:3 2:3)`},
		{"SEARCH RETURN (PARTIAL 2:100) ALL", ` PARTIAL (2:100 2:3)`},
		{"SEARCH RETURN (PARTIAL 4:5) ALL", ` PARTIAL (4:5 NIL)`},
		{"SEARCH RETURN (PARTIAL -1:-1) ALL", ` PARTIAL (-1:-1 3)`},
		{"SEARCH RETURN (PARTIAL -1:-2) ALL", ` PARTIAL (-1:-2 2:3)`},
		{"SEARCH RETURN (PARTIAL -3:-2) ALL", ` PARTIAL (-2:-3 1:2)`},
		{"SEARCH RETURN (PARTIAL -1:-100) ALL", ` PARTIAL (-1:-100 1:3)`},
		{"SEARCH RETURN (PARTIAL -4:-9) ALL", ` PARTIAL (-4:-9 NIL)`},
		{"UID SEARCH RETURN (PARTIAL 2:3) ALL", ` UID PARTIAL (2:3 3:4)`},
		{"UID SEARCH RETURN (PARTIAL -1:-2) ALL", ` UID PARTIAL (-1:-2 3:4)`},
		{"UID SEARCH RETURN (PARTIAL 1:1) NOT UID 1", ` UID PARTIAL (1:1 3)`},
		{"UID SEARCH RETURN (COUNT PARTIAL 1:1) ALL", ` UID PARTIAL (1:1 1) COUNT 3`},
		{"SEARCH RETURN (PARTIAL 1:10) FROM nobody", ` PARTIAL (1:10 NIL)`},
	} {
		got := grep(c.ok("%s", tt.cmd), `ESEARCH`)
		if len(got) != 1 || !strings.HasSuffix(got[0], tt.want) || strings.Contains(got[0], " ALL ") {
			t.Errorf("%s = %q, want …%s", tt.cmd, got, tt.want)
		}
	}
	// SAVE with PARTIAL saves the messages PARTIAL gives.
	if got := c.ok("UID SEARCH RETURN (SAVE PARTIAL -1:-1) ALL"); len(got) != 1 || !strings.HasSuffix(got[0], " UID PARTIAL (-1:-1 4)") {
		t.Errorf("SAVE PARTIAL: %q", got)
	}
	if got := strings.Join(grep(c.ok("UID FETCH $ (UID)"), `FETCH`), "|"); got != "* 3 FETCH (UID 4)" {
		t.Errorf("FETCH $ after SAVE PARTIAL: %q", got)
	}
	for _, bad := range []string{
		"SEARCH RETURN (PARTIAL 1) ALL", "SEARCH RETURN (PARTIAL 1:*) ALL", "SEARCH RETURN (PARTIAL *:1) ALL",
		"SEARCH RETURN (PARTIAL 0:1) ALL", "SEARCH RETURN (PARTIAL -1:2) ALL", "SEARCH RETURN (PARTIAL 1:-2) ALL",
		"SEARCH RETURN (PARTIAL) ALL", "SEARCH RETURN (ALL PARTIAL 1:2) ALL",
	} {
		if _, status := c.cmd("%s", bad); !strings.HasPrefix(status, "BAD") {
			t.Errorf("%s: %s, want BAD", bad, status)
		}
	}
}

// TestUIDSearchReturnAll: UID SEARCH RETURN (ALL) (RFC 4731), which iOS Mail sends for
// every search: one ESEARCH with the tag, UID and the UIDs as a set; nothing after ALL
// when nothing matches.
func TestUIDSearchReturnAll(t *testing.T) {
	_, c := searchEnv(t)
	c.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	c.ok("UID EXPUNGE 2")
	c.tags++
	tag := "T" + itoa(uint32(c.tags))
	c.send(tag + " UID SEARCH RETURN (ALL) ALL")
	if l := c.line(); l != `* ESEARCH (TAG "`+tag+`") UID ALL 1,3:4` {
		t.Errorf("UID SEARCH RETURN (ALL): %q", l)
	}
	if l := c.line(); !strings.HasPrefix(l, tag+" OK") {
		t.Errorf("status: %q", l)
	}
	if got := c.ok("UID SEARCH RETURN () SEEN"); len(got) != 1 || !strings.HasSuffix(got[0], `") UID ALL 1,3`) {
		t.Errorf("UID SEARCH RETURN (): %q", got)
	}
	if got := c.ok(`UID SEARCH RETURN (ALL) FROM "nobody"`); len(got) != 1 || !strings.HasSuffix(got[0], `") UID`) {
		t.Errorf("UID SEARCH RETURN (ALL) matching nothing: %q", got)
	}
}

// TestFetchPartial: the PARTIAL FETCH modifier (RFC 9394 §3.2) answers the messages at
// those positions among the ones the set names: the last two of 1:*, the first of 3:*.
func TestFetchPartial(t *testing.T) {
	_, c := searchEnv(t)
	c.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	c.ok("UID EXPUNGE 2") // UIDs 1 3 4 are left
	for _, tt := range []struct{ cmd, want string }{
		{"UID FETCH 1:* (FLAGS) (PARTIAL -1:-2)", "* 2 FETCH (UID 3 FLAGS (\\Recent \\Flagged \\Seen $Work))|* 3 FETCH (UID 4 FLAGS (\\Recent \\Deleted))"},
		{"UID FETCH 3:* (UID) (PARTIAL 1:1)", "* 2 FETCH (UID 3)"},
		{"FETCH 1:* (UID) (PARTIAL 2:10)", "* 2 FETCH (UID 3)|* 3 FETCH (UID 4)"},
		{"UID FETCH 1:* (UID) (PARTIAL 4:10)", ""},
	} {
		if got := strings.Join(grep(c.ok("%s", tt.cmd), `FETCH`), "|"); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.cmd, got, tt.want)
		}
	}
	if _, status := c.cmd("UID FETCH 1:* (UID) (PARTIAL 1:*)"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("PARTIAL 1:*: %s", status)
	}
}
