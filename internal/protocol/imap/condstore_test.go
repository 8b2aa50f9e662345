package imap

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// modSeqIn returns the number of the first MODSEQ in the lines matching re ("MODSEQ (n)"
// of a FETCH, "[HIGHESTMODSEQ n]", "HIGHESTMODSEQ n" of STATUS).
func modSeqIn(t *testing.T, lines []string, re string) int64 {
	t.Helper()
	num := regexp.MustCompile(`MODSEQ \(?(\d+)`)
	for _, l := range grep(lines, re) {
		if m := num.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			return n
		}
	}
	t.Fatalf("no MODSEQ in %q matching %s", lines, re)
	return 0
}

func TestHighestModSeqInSelectAndStatus(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("one", "x\r\n"))
	d := e.deliver("INBOX", plainMessage("two", "x\r\n"))
	c := e.rawLogin()
	// RFC 7162 §3.1.2.2: STATUS (HIGHESTMODSEQ), a CONDSTORE-enabling command.
	status := c.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
	if got := modSeqIn(t, status, `^\* STATUS`); got != d.ModSeq {
		t.Errorf("STATUS HIGHESTMODSEQ %d, want the last delivery's modseq %d", got, d.ModSeq)
	}
	// RFC 7162 §3.1.2.1: every SELECT, CONDSTORE or not.
	sel := c.ok("EXAMINE INBOX")
	if got := modSeqIn(t, sel, `^\* OK \[HIGHESTMODSEQ `); got != d.ModSeq {
		t.Errorf("EXAMINE HIGHESTMODSEQ %d, want %d", got, d.ModSeq)
	}
	// An expunge raises it too (QRESYNC needs that, RFC 7162 §3.2).
	other := e.rawLogin()
	other.ok("SELECT INBOX")
	other.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	other.ok("EXPUNGE")
	if got := modSeqIn(t, c.ok("STATUS INBOX (HIGHESTMODSEQ)"), `^\* STATUS`); got <= d.ModSeq+1 {
		t.Errorf("HIGHESTMODSEQ after STORE and EXPUNGE %d, want above %d", got, d.ModSeq+1)
	}
}

// FETCH MODSEQ in the selected state enables CONDSTORE: HIGHESTMODSEQ is announced, and from
// then on every FETCH with FLAGS carries MODSEQ, the unsolicited ones included.
func TestFetchModSeqEnablesCondStore(t *testing.T) {
	e := newEnv(t)
	d1 := e.deliver("INBOX", plainMessage("one", "x\r\n"))
	e.deliver("INBOX", plainMessage("two", "x\r\n"))
	c, other := e.rawLogin(), e.rawLogin()
	c.ok("SELECT INBOX")
	other.ok("SELECT INBOX")
	if got := grep(c.ok("FETCH 1 (FLAGS)"), "MODSEQ"); len(got) != 0 {
		t.Errorf("MODSEQ before CONDSTORE is on: %q", got)
	}
	got := c.ok("FETCH 1 (MODSEQ)")
	if len(grep(got, `^\* OK \[HIGHESTMODSEQ \d+\]`)) != 1 {
		t.Errorf("first CONDSTORE-enabling command in the selected state: no HIGHESTMODSEQ in %q", got)
	}
	if want := fmt.Sprintf("* 1 FETCH (MODSEQ (%d))", d1.ModSeq); len(grep(got, "^"+regexp.QuoteMeta(want)+"$")) != 1 {
		t.Errorf("FETCH 1 (MODSEQ): %q, want %q", got, want)
	}
	if got := c.ok("FETCH 2 (MODSEQ)"); len(grep(got, "HIGHESTMODSEQ")) != 0 {
		t.Errorf("HIGHESTMODSEQ again: %q", got)
	}
	if got := grep(c.ok("FETCH 1 (FLAGS)"), `^\* 1 FETCH \(FLAGS \(.*\) MODSEQ \(\d+\)\)$`); len(got) != 1 {
		t.Errorf("FETCH FLAGS with CONDSTORE on: no MODSEQ")
	}
	other.ok(`STORE 2 +FLAGS (\Flagged)`)
	after := modSeqIn(t, other.ok("FETCH 2 (MODSEQ)"), `^\* 2 FETCH`)
	got = grep(c.ok("NOOP"), `^\* 2 FETCH`)
	if want := fmt.Sprintf(`* 2 FETCH (UID 2 FLAGS (\Recent \Flagged) MODSEQ (%d))`, after); len(got) != 1 || got[0] != want {
		t.Errorf("unsolicited FETCH after another session's STORE: %q, want %q", got, want)
	}
}

func TestFetchChangedSince(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.deliver("INBOX", plainMessage(fmt.Sprint(i), "x\r\n"))
	}
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	base := modSeqIn(t, c.ok("STATUS INBOX (HIGHESTMODSEQ)"), `^\* STATUS`)
	c.ok(`STORE 2 +FLAGS.SILENT (\Answered)`)
	got := grep(c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", base), `FETCH`)
	if len(got) != 1 || !strings.HasPrefix(got[0], "* 2 FETCH (UID 2 FLAGS (") || !strings.Contains(got[0], "MODSEQ (") {
		t.Errorf("CHANGEDSINCE %d: %q, want message 2 alone with its MODSEQ", base, got)
	}
	if got := grep(c.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", base+10), `FETCH`); len(got) != 0 {
		t.Errorf("CHANGEDSINCE above HIGHESTMODSEQ: %q", got)
	}
}

// RFC 7162 §3.1.3: the messages changed since UNCHANGEDSINCE are left alone and named in
// MODIFIED (sequence numbers for STORE, UIDs for UID STORE); the others are changed and
// each answered with a FETCH with MODSEQ, .SILENT or not.
func TestStoreUnchangedSince(t *testing.T) {
	e := newEnv(t)
	for i := range 4 {
		e.deliver("INBOX", plainMessage(fmt.Sprint(i), "x\r\n"))
	}
	c, other := e.rawLogin(), e.rawLogin()
	other.ok("SELECT INBOX")
	other.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	other.ok("EXPUNGE") // sequence numbers now differ from UIDs: UIDs 2, 3, 4
	c.ok("SELECT INBOX")
	base := modSeqIn(t, c.ok("STATUS INBOX (HIGHESTMODSEQ)"), `^\* STATUS`)
	other.ok(`STORE 2 +FLAGS.SILENT (\Flagged)`) // UID 3, after base

	untagged, status := c.cmd(`STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\Seen)`, base)
	if status != "OK [MODIFIED 2] Conditional STORE failed" {
		t.Errorf("STORE UNCHANGEDSINCE: %q", status)
	}
	fetches := grep(untagged, `^\* \d FETCH \(UID \d FLAGS \(.*\\Seen.*\) MODSEQ \(\d+\)\)$`)
	if len(fetches) != 2 || !strings.HasPrefix(fetches[0], "* 1 FETCH (UID 2 ") || !strings.HasPrefix(fetches[1], "* 3 FETCH (UID 4 ") {
		t.Errorf(".SILENT with UNCHANGEDSINCE: FETCHes %q (untagged %q), want UIDs 2 and 4 with MODSEQ", fetches, untagged)
	}
	if got := grep(c.ok("UID FETCH 3 (FLAGS)"), `\\Seen`); len(got) != 0 {
		t.Errorf("a message that failed the test was changed: %q", got)
	}
	_, status = c.cmd(`UID STORE 2:4 (UNCHANGEDSINCE %d) -FLAGS (\Seen)`, base)
	if status != "OK [MODIFIED 2:4] Conditional STORE failed" {
		t.Errorf("UID STORE UNCHANGEDSINCE after all three changed: %q", status)
	}
	now := modSeqIn(t, c.ok("STATUS INBOX (HIGHESTMODSEQ)"), `^\* STATUS`)
	untagged, status = c.cmd(`UID STORE 2:4 (UNCHANGEDSINCE %d) -FLAGS (\Seen)`, now)
	if status != "OK STORE completed" && status != "OK UID STORE completed" || len(grep(untagged, `MODSEQ`)) != 3 {
		t.Errorf("UID STORE UNCHANGEDSINCE HIGHESTMODSEQ: %q %q", untagged, status)
	}
	// UNCHANGEDSINCE 0 fails for every message (RFC 7162 §3.1.3).
	if _, status := c.cmd(`STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\Draft)`); status != "OK [MODIFIED 1] Conditional STORE failed" {
		t.Errorf("UNCHANGEDSINCE 0: %q", status)
	}
}

// RFC 7162 §3.1.5: SEARCH MODSEQ n finds the messages with a modseq of n or more and
// answers with the highest of them; ESEARCH with that of the messages it names.
func TestSearchModSeq(t *testing.T) {
	e := newEnv(t)
	for i := range 4 {
		e.deliver("INBOX", plainMessage(fmt.Sprint(i), "x\r\n"))
	}
	c := e.rawLogin()
	c.ok("ENABLE CONDSTORE")
	c.ok("SELECT INBOX")
	// Changed in the order 1, 3, 2: message 2 has the highest modseq of 1:3.
	ms := map[int]int64{}
	for _, n := range []int{1, 3, 2} {
		ms[n] = modSeqIn(t, c.ok(`STORE %d +FLAGS (\Seen)`, n), fmt.Sprintf(`^\* %d FETCH`, n))
	}
	for _, tc := range []struct{ cmd, want string }{
		{fmt.Sprintf("SEARCH MODSEQ %d", ms[1]), fmt.Sprintf("* SEARCH 1 2 3 (MODSEQ %d)", ms[2])},
		{fmt.Sprintf("SEARCH MODSEQ %d", ms[3]), fmt.Sprintf("* SEARCH 2 3 (MODSEQ %d)", ms[2])},
		{fmt.Sprintf("SEARCH MODSEQ %d", ms[2]+1), "* SEARCH"},
		{fmt.Sprintf(`SEARCH RETURN (MIN) 1:3 MODSEQ "/flags/\\seen" all %d`, ms[1]), fmt.Sprintf(`* ESEARCH (TAG "T%%d") MIN 1 MODSEQ %d`, ms[1])},
		{fmt.Sprintf(`SEARCH RETURN (MAX) MODSEQ %d`, ms[1]), fmt.Sprintf(`* ESEARCH (TAG "T%%d") MAX 3 MODSEQ %d`, ms[3])},
		{fmt.Sprintf(`UID SEARCH RETURN (COUNT) MODSEQ %d`, ms[1]), fmt.Sprintf(`* ESEARCH (TAG "T%%d") UID COUNT 3 MODSEQ %d`, ms[2])},
		{fmt.Sprintf(`SEARCH RETURN (ALL) MODSEQ %d`, ms[2]+1), `* ESEARCH (TAG "T%d")`},
	} {
		got := c.ok("%s", tc.cmd)
		want := tc.want
		if strings.Contains(want, "%d") {
			want = fmt.Sprintf(want, c.tags)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want %q", tc.cmd, got, want)
		}
	}
}

// changeBeforeSync is a store whose next Changes (the poll after a command) is preceded by
// before: another session's change landing between a command's own reads and its poll.
type changeBeforeSync struct {
	mailStore
	before *func()
}

func (s changeBeforeSync) Changes(ctx context.Context, accountID int64, since int64) ([]store.Change, error) {
	if f := *s.before; f != nil {
		*s.before = nil
		f()
	}
	return s.mailStore.Changes(ctx, accountID, since)
}

// A STORE whose FETCH waits for FLAGS (a new keyword, RFC 3501 §7.2.6) while another
// session changes the same message is answered, after FLAGS, with the newest flags and
// modseq: a client never sees a message's MODSEQ go down (RFC 7162 §3.1). imaptest's plain
// stress reported "MODSEQ dropped" when the held FETCH carried the STORE's older modseq
// after the poll had shown the other session's newer one.
func TestHeldStoreFetchKeepsModSeqRising(t *testing.T) {
	var before func()
	e := newEnv(t, func(_ *Options, ms *mailStore) { *ms = changeBeforeSync{*ms, &before} })
	e.deliver("INBOX", plainMessage("one", "x\r\n"))
	c := e.rawLogin()
	c.ok("ENABLE CONDSTORE")
	c.ok("SELECT INBOX")
	mbox, err := e.st.MailboxByName(context.Background(), e.acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var other int64
	before = func() {
		u, err := e.st.SetFlags(context.Background(), mbox.ID, []uint32{1}, store.FlagsAdd, []string{store.FlagFlagged})
		if err != nil || len(u) != 1 {
			t.Errorf("the other session's STORE: %v, %v", u, err)
			return
		}
		other = u[0].ModSeq
	}
	got := c.ok(`STORE 1 +FLAGS ($New)`)
	fetches := grep(got, `^\* 1 FETCH `)
	if len(fetches) == 0 {
		t.Fatalf("STORE answered %q, want a FETCH of 1", got)
	}
	last := int64(0)
	for _, f := range fetches {
		n := modSeqIn(t, []string{f}, "")
		if n < last {
			t.Errorf("MODSEQ went down from %d to %d: %q", last, n, got)
		}
		last = n
	}
	if f := fetches[len(fetches)-1]; last != other || !strings.Contains(f, `\Flagged`) || !strings.Contains(f, "$New") {
		t.Errorf("the last FETCH of 1 is %q, want both sessions' flags and the other's modseq %d", f, other)
	}
}
