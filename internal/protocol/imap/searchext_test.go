package imap

import (
	"strings"
	"testing"
	"time"
)

// searchNums runs SEARCH criteria and returns the numbers of its answer.
func searchNums(t *testing.T, c *rawClient, criteria string) string {
	t.Helper()
	got := grep(c.ok("SEARCH %s", criteria), `^\* SEARCH`)
	if len(got) != 1 {
		t.Fatalf("SEARCH %s: %q", criteria, got)
	}
	return strings.TrimSpace(strings.TrimPrefix(got[0], "* SEARCH"))
}

// TestSearchWithin: OLDER and YOUNGER (RFC 5032) count seconds back from now against
// INTERNALDATE, with time of day, not days as BEFORE and SINCE do.
func TestSearchWithin(t *testing.T) {
	_, c := searchEnv(t)
	defer func(old func() time.Time) { searchNow = old }(searchNow)
	// 30 s after the third message's INTERNALDATE (2024-06-20 12:00:00 UTC); the fourth
	// is later still, in this clock's future.
	searchNow = func() time.Time { return time.Date(2024, 6, 20, 12, 0, 30, 0, time.UTC) }
	for _, tt := range []struct{ criteria, want string }{
		{"YOUNGER 60", "3 4"},
		{"YOUNGER 30", "3 4"},
		{"YOUNGER 29", "4"},
		{"OLDER 29", "1 2 3"},
		{"OLDER 30", "1 2"},
		{"OLDER 86400", "1 2"},
		{"OLDER 500000", "1"}, // the second message is 5 days and 30 s old
		{"NOT YOUNGER 60", "1 2"},
		{"OR OLDER 500000 YOUNGER 60", "1 3 4"},
		{"SEEN YOUNGER 60", "3"},
	} {
		if got := searchNums(t, c, tt.criteria); got != tt.want {
			t.Errorf("SEARCH %s = %q, want %q", tt.criteria, got, tt.want)
		}
	}
	for _, bad := range []string{"OLDER 0", "YOUNGER", "OLDER -5", "YOUNGER x"} {
		if _, status := c.cmd("SEARCH %s", bad); !strings.HasPrefix(status, "BAD") {
			t.Errorf("SEARCH %s: %s, want BAD", bad, status)
		}
	}
}

// TestSearchSaveDate: SAVEDBEFORE, SAVEDON and SAVEDSINCE (RFC 8514) use the save date,
// not INTERNALDATE (these messages were delivered today with INTERNALDATEs of 2020 and
// 2024); SAVEDATESUPPORTED matches every message.
func TestSearchSaveDate(t *testing.T) {
	e, c := searchEnv(t)
	msgs, err := e.st.Messages(t.Context(), e.mailbox("INBOX").ID)
	if err != nil {
		t.Fatal(err)
	}
	saved := msgs[0].SaveDate.UTC()
	if saved.IsZero() {
		t.Fatal("no save date for a delivered message")
	}
	imapDate := func(t time.Time) string { return t.Format("2-Jan-2006") }
	for _, tt := range []struct{ criteria, want string }{
		{"SAVEDATESUPPORTED", "1 2 3 4"},
		{"SAVEDSINCE " + imapDate(saved), "1 2 3 4"},
		{"SAVEDON " + imapDate(saved), "1 2 3 4"},
		{"SAVEDBEFORE " + imapDate(saved), ""},
		{"SAVEDBEFORE " + imapDate(saved.AddDate(0, 0, 1)), "1 2 3 4"},
		{"SAVEDSINCE " + imapDate(saved.AddDate(0, 0, 1)), ""},
		{"SAVEDON 20-Jun-2024", ""}, // the third message's INTERNALDATE
		{"SAVEDBEFORE 1-Jan-2025", ""},
		{"NOT SAVEDON " + imapDate(saved), ""},
		{"SAVEDSINCE " + imapDate(saved) + " FLAGGED", "3"},
	} {
		if got := searchNums(t, c, tt.criteria); got != tt.want {
			t.Errorf("SEARCH %s = %q, want %q", tt.criteria, got, tt.want)
		}
	}
	if _, status := c.cmd("SEARCH SAVEDON 2024-06-20"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("SAVEDON with a bad date: %s", status)
	}
}

// TestSearchHeaderNotAnExtensionKey: HEADER with a field name shaped like the internal
// name of an extension's key searches that (impossible) field, and matches nothing.
func TestSearchHeaderNotAnExtensionKey(t *testing.T) {
	_, c := searchEnv(t)
	if got := searchNums(t, c, `HEADER ":SAVEDATESUPPORTED" ""`); got != "" {
		t.Errorf("HEADER :SAVEDATESUPPORTED = %q, want nothing", got)
	}
	if got := searchNums(t, c, `HEADER ":OLDER" "1"`); got != "" {
		t.Errorf("HEADER :OLDER = %q, want nothing", got)
	}
}
