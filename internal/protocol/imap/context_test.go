package imap

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// nextTag is the tag rawClient.cmd gives the next command.
func (c *rawClient) nextTag() string { return fmt.Sprintf("T%d", c.tags+1) }

// TestSearchContextUpdate: SEARCH RETURN (UPDATE) (RFC 5267 §4.3) keeps the result live:
// ADDTO and REMOVEFROM with the search's tag follow this session's STORE, another
// session's STORE, an expunge (REMOVEFROM in the numbers before the EXPUNGE responses)
// and a delivery, until CANCELUPDATE.
func TestSearchContextUpdate(t *testing.T) {
	e, c := searchEnv(t) // 1 \Seen, 2, 3 \Seen \Flagged, 4 \Deleted
	uidTag := c.nextTag()
	if got := c.ok("UID SEARCH RETURN (UPDATE ALL) SEEN"); len(got) != 1 || got[0] != `* ESEARCH (TAG "`+uidTag+`") UID ALL 1,3` {
		t.Fatalf("initial answer: %q", got)
	}
	seqTag := c.nextTag()
	if got := c.ok("SEARCH RETURN (UPDATE) DELETED"); len(got) != 1 || got[0] != `* ESEARCH (TAG "`+seqTag+`")` {
		t.Fatalf("RETURN (UPDATE) alone: %q", got)
	}

	got := grep(c.ok(`STORE 2 +FLAGS.SILENT (\Seen)`), "ESEARCH")
	if want := `* ESEARCH (TAG "` + uidTag + `") UID ADDTO (0 2)`; len(got) != 1 || got[0] != want {
		t.Errorf("after STORE: %q, want %q", got, want)
	}
	other := e.rawLogin()
	other.ok("SELECT INBOX")
	other.ok(`STORE 1 -FLAGS.SILENT (\Seen)`)
	other.ok(`STORE 3 +FLAGS.SILENT (\Deleted)`)
	got = grep(c.ok("NOOP"), "ESEARCH")
	wantSet := []string{
		`* ESEARCH (TAG "` + uidTag + `") UID REMOVEFROM (0 1)`,
		`* ESEARCH (TAG "` + seqTag + `") ADDTO (0 3)`,
	}
	if !slices.Equal(got, wantSet) {
		t.Errorf("after the other session's STORE: %q, want %q", got, wantSet)
	}

	// The expunge of 3 and 4: REMOVEFROM names them by the numbers the client knows,
	// so it comes before the EXPUNGE responses.
	lines := c.ok("EXPUNGE")
	want := []string{
		`* ESEARCH (TAG "` + uidTag + `") UID REMOVEFROM (0 3)`,
		`* ESEARCH (TAG "` + seqTag + `") REMOVEFROM (0 3:4)`,
		"* 3 EXPUNGE", "* 3 EXPUNGE",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("EXPUNGE: %q, want %q", lines, want)
	}

	e.deliver("INBOX", "Subject: new\r\n\r\nnew\r\n", store.FlagSeen) // UID 5, sequence number 3
	lines = c.ok("NOOP")
	if len(lines) < 2 || lines[0] != "* 3 EXISTS" || lines[len(lines)-1] != `* ESEARCH (TAG "`+uidTag+`") UID ADDTO (0 5)` {
		t.Errorf("after a delivery: %q", lines)
	}

	c.ok(`CANCELUPDATE "%s"`, uidTag)
	if got := grep(c.ok(`STORE 1:* -FLAGS.SILENT (\Seen)`), "ESEARCH"); len(got) != 0 {
		t.Errorf("ESEARCH after CANCELUPDATE: %q", got)
	}
	if _, status := c.cmd(`CANCELUPDATE "%s"`, uidTag); !strings.HasPrefix(status, "BAD") {
		t.Errorf("CANCELUPDATE of a cancelled tag: %s, want BAD", status)
	}
	// A new selection ends the contexts.
	c.ok("SELECT INBOX")
	if _, status := c.cmd(`CANCELUPDATE "%s"`, seqTag); !strings.HasPrefix(status, "BAD") {
		t.Errorf("CANCELUPDATE after SELECT: %s, want BAD", status)
	}
}

// TestSearchContextRefused: RETURN (UPDATE PARTIAL ...) answers but refuses the updates
// with NOUPDATE (RFC 5267 §4.3.1), and sends none.
func TestSearchContextRefused(t *testing.T) {
	_, c := searchEnv(t)
	tag := c.nextTag()
	lines, status := c.cmd("SEARCH RETURN (UPDATE PARTIAL 1:10) SEEN")
	if len(lines) != 1 || !strings.HasSuffix(lines[0], " PARTIAL (1:10 1,3)") || !strings.HasPrefix(status, `OK [NOUPDATE "`+tag+`"]`) {
		t.Fatalf("UPDATE PARTIAL: %q %s", lines, status)
	}
	if got := grep(c.ok(`STORE 2 +FLAGS.SILENT (\Seen)`), "ESEARCH"); len(got) != 0 {
		t.Errorf("update of a refused context: %q", got)
	}
}

// TestSortContextUpdate: SORT RETURN (UPDATE) (RFC 5267 §4.3) updates with the positions
// in sort order, and SORT RETURN (PARTIAL) (RFC 5267 §4.4) gives the window in sort order.
func TestSortContextUpdate(t *testing.T) {
	e, c := searchEnv(t) // arrival ascends with the sequence numbers
	if got := c.ok("SORT RETURN (PARTIAL 1:2) (REVERSE ARRIVAL) US-ASCII ALL"); len(got) != 1 || !strings.HasSuffix(got[0], " PARTIAL (1:2 4,3)") {
		t.Errorf("SORT PARTIAL: %q", got)
	}
	if got := c.ok("UID SORT RETURN (PARTIAL -1:-1) (ARRIVAL) US-ASCII ALL"); len(got) != 1 || !strings.HasSuffix(got[0], " UID PARTIAL (-1:-1 4)") {
		t.Errorf("SORT PARTIAL from the end: %q", got)
	}
	if _, status := c.cmd("SORT RETURN (ALL PARTIAL 1:2) (ARRIVAL) US-ASCII ALL"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("SORT ALL with PARTIAL: %s, want BAD", status)
	}
	tag := c.nextTag()
	if got := c.ok("UID SORT RETURN (UPDATE ALL) (REVERSE ARRIVAL) US-ASCII UNDELETED"); len(got) != 1 || !strings.HasSuffix(got[0], " UID ALL 3,2,1") {
		t.Fatalf("initial answer: %q", got)
	}
	got := grep(c.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`), "ESEARCH")
	if want := `* ESEARCH (TAG "` + tag + `") UID REMOVEFROM (2 2)`; len(got) != 1 || got[0] != want {
		t.Errorf("after STORE: %q, want %q", got, want)
	}
	e.deliver("INBOX", "Subject: new\r\n\r\nnew\r\n") // UID 5, the latest arrival: first
	got = grep(c.ok("NOOP"), "ESEARCH")
	if want := `* ESEARCH (TAG "` + tag + `") UID ADDTO (1 5)`; len(got) != 1 || got[0] != want {
		t.Errorf("after a delivery: %q, want %q", got, want)
	}
}

// TestOrderedDiff: applying the items of orderedDiff one after the other, as a client
// does (RFC 5267 §4.3.3, §4.3.4), turns the old sorted result into the new one.
func TestOrderedDiff(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 500 {
		all := r.Perm(12) // a sort order of 12 messages
		var old, now []uint32
		for _, m := range all {
			if r.IntN(2) == 0 {
				old = append(old, uint32(m+1))
			}
			if r.IntN(2) == 0 {
				now = append(now, uint32(m+1))
			}
		}
		list := slices.Clone(old)
		for _, it := range orderedDiff(old, now) {
			if it.remove {
				if it.pos < 1 || it.pos-1+len(it.uids) > len(list) || !slices.Equal(list[it.pos-1:it.pos-1+len(it.uids)], it.uids) {
					t.Fatalf("case %d: REMOVEFROM (%d %v) does not match %v", n, it.pos, it.uids, list)
				}
				list = slices.Delete(list, it.pos-1, it.pos-1+len(it.uids))
			} else {
				if it.pos < 1 || it.pos-1 > len(list) {
					t.Fatalf("case %d: ADDTO (%d %v) outside %v", n, it.pos, it.uids, list)
				}
				list = slices.Insert(list, it.pos-1, it.uids...)
			}
		}
		if !slices.Equal(list, now) {
			t.Fatalf("case %d: %v to %v gave %v", n, old, now, list)
		}
	}
}
