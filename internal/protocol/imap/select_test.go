package imap

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

func TestSelectCounts(t *testing.T) {
	e := newEnv(t)
	var last store.Delivered
	for i := range 3 {
		last = e.deliver("INBOX", plainMessage(fmt.Sprintf("Message %d", i), "hello\r\n"), "$Work")
	}
	c := e.rawLogin()
	untagged, status := c.cmd("SELECT inbox")
	if !strings.HasPrefix(status, "OK [READ-WRITE]") {
		t.Errorf("SELECT status %q", status)
	}
	all := strings.Join(untagged, "\n")
	for _, want := range []string{
		"* 3 EXISTS",
		"* 3 RECENT", // the first session to see them (RFC 3501 §2.3.2)
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work \*)]`,
		fmt.Sprintf("* OK [UIDVALIDITY %d]", last.UIDValidity),
		fmt.Sprintf("* OK [UIDNEXT %d]", last.UID+1),
		"* OK [UNSEEN 1]",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("SELECT lacks %q:\n%s", want, all)
		}
	}
	uids := grep(c.ok("FETCH 1:* (UID)"), `^\* \d+ FETCH`)
	if len(uids) != 3 || !strings.Contains(uids[2], fmt.Sprintf("UID %d", last.UID)) {
		t.Errorf("FETCH UID: %q", uids)
	}
}

func TestExamineIsReadOnly(t *testing.T) {
	e := newEnv(t)
	d := e.deliver("INBOX", plainMessage("Read only", "body\r\n"))
	e.deliver("INBOX", plainMessage("Deleted already", "body\r\n"), store.FlagDeleted)
	c := e.rawLogin()
	untagged, status := c.cmd("EXAMINE INBOX")
	if !strings.HasPrefix(status, "OK [READ-ONLY]") {
		t.Errorf("EXAMINE status %q", status)
	}
	if got := grep(untagged, `PERMANENTFLAGS`); len(got) != 1 || !strings.Contains(got[0], "[PERMANENTFLAGS ()]") {
		t.Errorf("EXAMINE PERMANENTFLAGS %q", got)
	}
	if _, status := c.cmd(`STORE 1 +FLAGS (\Flagged)`); !strings.HasPrefix(status, "NO [READ-ONLY]") {
		t.Errorf("STORE under EXAMINE: %s", status)
	}
	fetched := c.ok("FETCH 1 (BODY[])")
	if len(grep(fetched, `FLAGS`)) != 0 {
		t.Errorf("FETCH BODY[] under EXAMINE reported flags: %q", fetched)
	}
	if _, status := c.cmd("EXPUNGE"); !strings.HasPrefix(status, "NO") {
		t.Errorf("EXPUNGE under EXAMINE: %s", status)
	}
	if _, status := c.cmd(`MOVE 1 Trash`); !strings.HasPrefix(status, "NO") {
		t.Errorf("MOVE under EXAMINE: %s", status)
	}
	c.ok("CLOSE") // expunges nothing when read-only (RFC 3501 §6.4.2)

	msgs, err := e.st.Messages(context.Background(), d.MailboxID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || len(msgs[0].Flags) != 0 || !msgs[1].HasFlag(store.FlagDeleted) {
		t.Errorf("messages after EXAMINE session: %+v", msgs)
	}
}

func TestSelectMissingAndReselect(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("One", "x\r\n"))
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	untagged, status := c.cmd("SELECT Sent")
	if !strings.HasPrefix(status, "OK") || len(grep(untagged, `^\* OK \[CLOSED\]`)) != 1 || len(grep(untagged, `^\* 0 EXISTS`)) != 1 {
		t.Errorf("SELECT of another mailbox: %s %q", status, untagged)
	}
	if _, status := c.cmd(`SELECT "Nope"`); !strings.HasPrefix(status, "NO [NONEXISTENT]") {
		t.Errorf("SELECT of a missing mailbox: %s", status)
	}
	// A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
	if _, status := c.cmd("FETCH 1 (UID)"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("FETCH after a failed SELECT: %s", status)
	}
	c.ok("SELECT INBOX")
	c.ok("UNSELECT")
	if _, status := c.cmd("FETCH 1 (UID)"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("FETCH after UNSELECT: %s", status)
	}
}

// Two sessions on one INBOX see each other's APPEND, STORE and EXPUNGE, with sequence
// numbers that stay consistent, and EXPUNGE is held back during FETCH, STORE and SEARCH.
func TestTwoSessionsSeeEachOther(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.deliver("INBOX", plainMessage(fmt.Sprintf("Message %d", i), "x\r\n"))
	}
	a, b := e.rawLogin(), e.rawLogin()
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")

	a.ok(`STORE 2 +FLAGS.SILENT (\Flagged $Work)`)
	got := b.ok("NOOP")
	if len(grep(got, `^\* FLAGS \(.*\$Work\)`)) != 1 || len(grep(got, `^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged \$Work\)\)`)) != 1 {
		t.Errorf("B after A's STORE: %q", got)
	}
	if again := b.ok("NOOP"); len(again) != 0 {
		t.Errorf("B's second NOOP repeated updates: %q", again)
	}

	a.ok("APPEND INBOX {%d+}\r\n%s", len(plainMessage("Appended", "y\r\n")), plainMessage("Appended", "y\r\n"))
	if got := b.ok("NOOP"); len(grep(got, `^\* 4 EXISTS$`)) != 1 {
		t.Errorf("B after A's APPEND: %q", got)
	}

	a.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	if got := grep(a.ok("EXPUNGE"), `EXPUNGE`); len(got) != 1 || got[0] != "* 1 EXPUNGE" {
		t.Errorf("A's EXPUNGE: %q", got)
	}
	// B is not told during FETCH; its sequence numbers still include the expunged message,
	// which FETCH skips.
	got = b.ok("FETCH 1:* (UID)")
	if len(grep(got, `EXPUNGE`)) != 0 {
		t.Errorf("EXPUNGE sent during FETCH: %q", got)
	}
	if want := []string{"* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)", "* 4 FETCH (UID 4)"}; strings.Join(grep(got, `FETCH \(UID`), "|") != strings.Join(want, "|") {
		t.Errorf("B FETCH during pending expunge: %q", got)
	}
	got = b.ok("SEARCH ALL")
	if len(grep(got, `EXPUNGE`)) != 0 || len(grep(got, `^\* SEARCH 2 3 4$`)) != 1 {
		t.Errorf("B SEARCH during pending expunge: %q", got)
	}
	got = b.ok("NOOP")
	if len(grep(got, `^\* 1 EXPUNGE$`)) != 1 {
		t.Errorf("B NOOP after A's EXPUNGE: %q", got)
	}
	got = b.ok("FETCH 1:* (UID)")
	if len(grep(got, `^\* 1 FETCH \(UID 2\)$`)) != 1 || len(grep(got, `^\* 3 FETCH \(UID 4\)$`)) != 1 {
		t.Errorf("B's sequence numbers after the EXPUNGE: %q", got)
	}
}

// An expunge made directly in the store (as POP3 QUIT does) reaches an IDLE session as
// EXPUNGE with the sequence number the client knows; a delivery as EXISTS; a flag change
// as FETCH FLAGS.
func TestIdleHearsStoreChanges(t *testing.T) {
	e := newEnv(t)
	var uids []uint32
	for i := range 3 {
		uids = append(uids, e.deliver("INBOX", plainMessage(fmt.Sprintf("Message %d", i), "x\r\n")).UID)
	}
	inbox := e.mailbox("INBOX")
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	c.send("I1 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}

	ctx := context.Background()
	if _, err := e.st.Expunge(ctx, inbox.ID, []uint32{uids[1]}); err != nil {
		t.Fatal(err)
	}
	c.waitFor(`^\* 2 EXPUNGE$`)

	e.deliver("INBOX", plainMessage("New", "x\r\n"))
	c.waitFor(`^\* 3 EXISTS$`)

	if _, err := e.st.SetFlags(ctx, inbox.ID, []uint32{uids[2]}, store.FlagsAdd, []string{store.FlagSeen}); err != nil {
		t.Fatal(err)
	}
	c.waitFor(fmt.Sprintf(`^\* 2 FETCH \(UID %d FLAGS \(\\Recent \\Seen\)\)$`, uids[2]))

	c.send("DONE")
	if l := c.line(); !strings.HasPrefix(l, "I1 OK") {
		t.Fatalf("DONE: %q", l)
	}
}

// Changes made just before IDLE are reported at once, not held back until the next change.
func TestIdleReportsPendingChanges(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	// Deliveries after the last poll of this session: only IDLE can tell it.
	e.deliver("INBOX", plainMessage("One", "x\r\n"))
	e.deliver("INBOX", plainMessage("Two", "x\r\n"))
	c.send("I1 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	c.waitFor(`^\* 2 EXISTS$`)
	c.send("DONE")
	c.waitFor(`^I1 OK`)
}

// Several messages arriving together are announced with one EXISTS, never one that says
// more messages than the session has been given sequence numbers for.
func TestExistsAfterSeveralDeliveries(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	for i := range 5 {
		e.deliver("INBOX", plainMessage(fmt.Sprintf("M%d", i), "x\r\n"))
	}
	got := c.ok("NOOP")
	if len(grep(got, `^\* 5 EXISTS$`)) != 1 {
		t.Fatalf("NOOP after 5 deliveries: %q", got)
	}
	fetched := grep(c.ok("FETCH 1:* (UID)"), `FETCH`)
	if len(fetched) != 5 || !regexp.MustCompile(`^\* 5 FETCH \(UID 5\)$`).MatchString(fetched[4]) {
		t.Errorf("FETCH after EXISTS: %q", fetched)
	}
}

// A mailbox deleted while selected: its messages are expunged from the view.
func TestSelectedMailboxDeleted(t *testing.T) {
	e := newEnv(t)
	if _, err := e.st.CreateMailbox(context.Background(), e.acct.ID, "Doomed", ""); err != nil {
		t.Fatal(err)
	}
	e.deliver("Doomed", plainMessage("One", "x\r\n"))
	e.deliver("Doomed", plainMessage("Two", "x\r\n"))
	a, b := e.rawLogin(), e.rawLogin()
	a.ok("SELECT Doomed")
	b.ok("DELETE Doomed")
	got := a.ok("NOOP")
	if len(grep(got, `^\* 1 EXPUNGE$`)) != 2 {
		t.Errorf("NOOP in a deleted mailbox: %q", got)
	}
}

// Sessions that SELECT the same mailbox start from the same rows of the store's flags
// cache (viewFlags): what one session learns must not change what another has been told.
// Here A hears of C's STORE; B, which has not, must still be sent the change, and a new
// session must see the store's flags.
func TestSelectViewsDoNotShareChanges(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.deliver("INBOX", plainMessage(fmt.Sprintf("m%d", i), "x\r\n"))
	}
	a, b, c := e.rawLogin(), e.rawLogin(), e.rawLogin()
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	c.ok("SELECT INBOX")
	c.ok(`STORE 2 +FLAGS.SILENT (\Flagged)`)
	c.ok(`STORE 3 +FLAGS.SILENT (\Answered)`)
	lines := a.ok("FETCH 1:3 (FLAGS)")
	if got := grep(lines, `^\* 2 FETCH .*\\Flagged`); len(got) == 0 {
		t.Errorf("A: FETCH 1:3 (FLAGS): %q, want 2 \\Flagged", lines)
	}
	a.ok(`STORE 1 +FLAGS.SILENT (\Seen)`) // A's own change, to its own view
	lines = b.ok("NOOP")
	if got := grep(lines, `^\* 2 FETCH \(.*FLAGS \(\\Flagged\)\)`); len(got) != 1 {
		t.Errorf("B: NOOP after C's STORE: %q, want * 2 FETCH (FLAGS (\\Flagged))", lines)
	}
	if got := grep(lines, `^\* 3 FETCH \(.*FLAGS \(\\Answered\)\)`); len(got) != 1 {
		t.Errorf("B: NOOP after C's STORE: %q, want * 3 FETCH (FLAGS (\\Answered))", lines)
	}
	if got := grep(lines, `^\* 1 FETCH \(.*FLAGS \(\\Seen\)\)`); len(got) != 1 {
		t.Errorf("B: NOOP after A's STORE: %q, want * 1 FETCH (FLAGS (\\Seen))", lines)
	}
	d := e.rawLogin()
	d.ok("EXAMINE INBOX")
	lines = d.ok("FETCH 1:3 (FLAGS)")
	want := []string{`* 1 FETCH (FLAGS (\Seen))`, `* 2 FETCH (FLAGS (\Flagged))`, `* 3 FETCH (FLAGS (\Answered))`}
	if got := grep(lines, `^\* \d FETCH`); !slices.Equal(got, want) {
		t.Errorf("D: FETCH 1:3 (FLAGS): %q, want %q", got, want)
	}
}
