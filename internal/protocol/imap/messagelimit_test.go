package imap

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// withMessageLimit sets Options.MessageLimit (RFC 9738). The tests use 3, far below the
// 1000 §3 asks servers not to go under, to keep the mailboxes small.
func withMessageLimit(n int) envOption {
	return func(o *Options, _ *mailStore) { o.MessageLimit = n }
}

// limitEnv is a server with MESSAGELIMIT=3 and INBOX holding UIDs 1 to 6, selected.
func limitEnv(t *testing.T) (*testEnv, *rawClient) {
	t.Helper()
	e := newEnv(t, withMessageLimit(3))
	for i := 1; i <= 6; i++ {
		e.deliver("INBOX", plainMessage(fmt.Sprintf("m%d", i), "body\r\n"))
	}
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	return e, c
}

// wantStatus fails unless the tagged status starts with want.
func wantStatus(t *testing.T, what, status, want string) {
	t.Helper()
	if !strings.HasPrefix(status, want) {
		t.Errorf("%s: %q, want it to start with %q", what, status, want)
	}
}

// fetchedUIDs lists the UIDs of "* n FETCH (UID u ...)" lines.
func fetchedUIDs(lines []string) []string {
	var out []string
	for _, l := range grep(lines, `^\* \d+ FETCH `) {
		f := strings.Fields(l[strings.Index(l, "(UID ")+5:])
		out = append(out, strings.TrimRight(f[0], ")"))
	}
	return out
}

// TestMessageLimitCapability: "MESSAGELIMIT=<n>" after login when set (RFC 9738 §3, §5),
// nothing when the limit is 0.
func TestMessageLimitCapability(t *testing.T) {
	e := newEnv(t, withMessageLimit(1000))
	c := e.rawLogin()
	if got := grep(c.ok("CAPABILITY"), `^\* CAPABILITY .* MESSAGELIMIT=1000( |$)`); len(got) != 1 {
		t.Errorf("CAPABILITY lacks MESSAGELIMIT=1000")
	}
	off := newEnv(t).rawLogin()
	if got := grep(off.ok("CAPABILITY"), `MESSAGELIMIT`); len(got) != 0 {
		t.Errorf("MESSAGELIMIT announced with the limit 0: %q", got)
	}
}

// TestMessageLimitFetch: FETCH and UID FETCH over the limit process the messages with the
// highest UIDs and say OK [MESSAGELIMIT n lowest-uid]; under it, no code; a PARTIAL
// range wider than the limit is refused with NO [MESSAGELIMIT n] (RFC 9738 §3.1).
func TestMessageLimitFetch(t *testing.T) {
	_, c := limitEnv(t)
	lines, status := c.cmd("FETCH 1:* (UID)")
	if got := fetchedUIDs(lines); !slices.Equal(got, []string{"4", "5", "6"}) {
		t.Errorf("FETCH 1:*: UIDs %q, want 4 5 6", got)
	}
	wantStatus(t, "FETCH 1:*", status, "OK [MESSAGELIMIT 3 4]")

	lines, status = c.cmd("UID FETCH 2:5 (FLAGS)")
	if got := fetchedUIDs(lines); !slices.Equal(got, []string{"3", "4", "5"}) {
		t.Errorf("UID FETCH 2:5: UIDs %q, want 3 4 5", got)
	}
	wantStatus(t, "UID FETCH 2:5", status, "OK [MESSAGELIMIT 3 3]")

	if _, status = c.cmd("UID FETCH 1:3 (FLAGS)"); strings.Contains(status, "MESSAGELIMIT") {
		t.Errorf("UID FETCH within the limit: %q", status)
	}
	// UIDs 7 and up name nothing: the set's existing messages count, not its width.
	if _, status = c.cmd("UID FETCH 4:100 (FLAGS)"); strings.Contains(status, "MESSAGELIMIT") {
		t.Errorf("UID FETCH of 3 existing messages: %q", status)
	}

	lines, status = c.cmd("UID FETCH 1:* (FLAGS) (PARTIAL -1:-5)")
	wantStatus(t, "PARTIAL wider than the limit", status, "NO [MESSAGELIMIT 3]")
	if len(grep(lines, `FETCH`)) != 0 {
		t.Errorf("PARTIAL wider than the limit fetched %q", lines)
	}
	lines, status = c.cmd("UID FETCH 1:* (FLAGS) (PARTIAL -1:-2)")
	wantStatus(t, "PARTIAL within the limit", status, "OK")
	if n := len(grep(lines, `FETCH`)); n != 2 || strings.Contains(status, "MESSAGELIMIT") {
		t.Errorf("PARTIAL -1:-2: %d responses, %q", n, status)
	}
}

// TestMessageLimitSearch: SEARCH limits the messages searched, not the matches (RFC 9738
// §3.1): the whole mailbox without a set key, else what its top-level UID and sequence
// keys name; and the $ of SEARCHRES holds the matches of those only (§3.4).
func TestMessageLimitSearch(t *testing.T) {
	_, c := limitEnv(t)
	c.ok(`UID STORE 5:6 +FLAGS.SILENT (\Seen)`)
	lines, status := c.cmd("UID SEARCH UNSEEN")
	if !slices.Equal(lines, []string{"* SEARCH 4"}) {
		t.Errorf("UID SEARCH UNSEEN: %q, want only 4 (1-3 are not searched)", lines)
	}
	wantStatus(t, "UID SEARCH UNSEEN", status, "OK [MESSAGELIMIT 3 4]")

	lines, status = c.cmd("UID SEARCH UID 1:4 ALL")
	if !slices.Equal(lines, []string{"* SEARCH 2 3 4"}) {
		t.Errorf("UID SEARCH UID 1:4: %q", lines)
	}
	wantStatus(t, "UID SEARCH UID 1:4", status, "OK [MESSAGELIMIT 3 2]")

	lines, status = c.cmd("SEARCH 1:2 UNSEEN")
	if !slices.Equal(lines, []string{"* SEARCH 1 2"}) || strings.Contains(status, "MESSAGELIMIT") {
		t.Errorf("SEARCH 1:2 within the limit: %q %q", lines, status)
	}

	_, status = c.cmd("SEARCH RETURN (SAVE) ALL")
	wantStatus(t, "SEARCH RETURN (SAVE)", status, "OK [MESSAGELIMIT 3 4]")
	lines, status = c.cmd("UID FETCH $ (UID)")
	if got := fetchedUIDs(lines); !slices.Equal(got, []string{"4", "5", "6"}) || strings.Contains(status, "MESSAGELIMIT") {
		t.Errorf("$ after a cut SEARCH: UIDs %q (%q), want 4 5 6", got, status)
	}
}

// TestMessageLimitStore: STORE over the limit changes the messages with the highest UIDs
// only (RFC 9738 §3.1).
func TestMessageLimitStore(t *testing.T) {
	_, c := limitEnv(t)
	lines, status := c.cmd(`UID STORE 1:* +FLAGS (\Flagged)`)
	if got := fetchedUIDs(lines); !slices.Equal(got, []string{"4", "5", "6"}) {
		t.Errorf("UID STORE 1:*: UIDs %q", got)
	}
	wantStatus(t, "UID STORE 1:*", status, "OK [MESSAGELIMIT 3 4]")
	_, status = c.cmd(`STORE 1:6 +FLAGS.SILENT (\Answered)`)
	wantStatus(t, "STORE 1:6", status, "OK [MESSAGELIMIT 3 4]")
	lines = c.ok("UID SEARCH FLAGGED")
	if !slices.Equal(lines, []string{"* SEARCH 4 5 6"}) {
		t.Errorf("flagged after the cut STORE: %q", lines)
	}
	if lines = c.ok("UID SEARCH UID 1:3 OR FLAGGED ANSWERED"); !slices.Equal(lines, []string{"* SEARCH"}) {
		t.Errorf("messages below the cut were changed: %q", lines)
	}
}

// TestMessageLimitCopyMove: COPY over the limit fails and copies nothing (it is atomic);
// MOVE moves the messages with the highest UIDs (RFC 9738 §3.1).
func TestMessageLimitCopyMove(t *testing.T) {
	_, c := limitEnv(t)
	_, status := c.cmd("UID COPY 1:4 Archives")
	wantStatus(t, "UID COPY 1:4", status, "NO [MESSAGELIMIT 3 2]")
	_, status = c.cmd("COPY 1:* Archives")
	wantStatus(t, "COPY 1:*", status, "NO [MESSAGELIMIT 3 4]")
	if got := c.ok("STATUS Archives (MESSAGES)"); !slices.Equal(got, []string{`* STATUS "Archives" (MESSAGES 0)`}) {
		t.Errorf("after refused COPYs: %q", got)
	}
	if _, status = c.cmd("UID COPY 1:3 Archives"); !strings.HasPrefix(status, "OK [COPYUID ") {
		t.Errorf("UID COPY within the limit: %q", status)
	}

	lines, status := c.cmd("UID MOVE 1:* Archives")
	wantStatus(t, "UID MOVE 1:*", status, "OK [MESSAGELIMIT 3 4]")
	if got := grep(lines, `^\* OK \[COPYUID \d+ 4:6 `); len(got) != 1 {
		t.Errorf("UID MOVE: COPYUID of 4:6 missing in %q", lines)
	}
	if got := c.ok("UID SEARCH ALL"); !slices.Equal(got, []string{"* SEARCH 1 2 3"}) {
		t.Errorf("INBOX after the cut MOVE: %q", got)
	}
}

// TestMessageLimitExpunge: UID EXPUNGE counts the \Deleted messages of its set and
// removes the highest of them; EXPUNGE is never limited (RFC 9738 §3.1).
func TestMessageLimitExpunge(t *testing.T) {
	_, c := limitEnv(t)
	c.ok(`UID STORE 1,2 +FLAGS.SILENT (\Deleted)`) // two STOREs: one of four would be cut
	c.ok(`UID STORE 4,5 +FLAGS.SILENT (\Deleted)`)
	lines, status := c.cmd("UID EXPUNGE 1:6")
	wantStatus(t, "UID EXPUNGE of 4 \\Deleted", status, "OK [MESSAGELIMIT 3 2]")
	if want := []string{"* 2 EXPUNGE", "* 3 EXPUNGE", "* 3 EXPUNGE"}; !slices.Equal(lines, want) {
		t.Errorf("UID EXPUNGE: %q, want %q", lines, want)
	}
	if got := c.ok("UID SEARCH ALL"); !slices.Equal(got, []string{"* SEARCH 1 3 6"}) {
		t.Errorf("after UID EXPUNGE: %q", got)
	}
	// Six named, three of them \Deleted: within the limit.
	_, c2 := limitEnv(t)
	c2.ok(`UID STORE 1,3,5 +FLAGS.SILENT (\Deleted)`)
	if _, status = c2.cmd("UID EXPUNGE 1:6"); strings.Contains(status, "MESSAGELIMIT") || !strings.HasPrefix(status, "OK") {
		t.Errorf("UID EXPUNGE of 3 \\Deleted among 6: %q", status)
	}
	c2.ok(`UID STORE 2,4,6 +FLAGS.SILENT (\Deleted)`)
	c2.ok("APPEND INBOX (\\Deleted) {%d+}\r\n%s", len(plainMessage("x", "y\r\n")), plainMessage("x", "y\r\n"))
	c2.ok("NOOP")
	lines, status = c2.cmd("EXPUNGE")
	if n := len(grep(lines, `EXPUNGE$`)); n != 4 || strings.Contains(status, "MESSAGELIMIT") {
		t.Errorf("EXPUNGE of 4: %d EXPUNGE responses, %q", n, status)
	}
}

// TestMessageLimitAppend: a MULTIAPPEND of more messages than the limit is refused with
// NO [MESSAGELIMIT n] and appends nothing (RFC 9738 §3.1); the limit itself is fine.
func TestMessageLimitAppend(t *testing.T) {
	e := newEnv(t, withMessageLimit(3))
	c := e.rawLogin()
	m := plainMessage("m", "body\r\n")
	lit := fmt.Sprintf(" {%d+}\r\n%s", len(m), m)
	_, status := c.cmd("APPEND Archives%s%s%s%s", lit, lit, lit, lit)
	wantStatus(t, "APPEND of 4", status, "NO [MESSAGELIMIT 3]")
	if got := c.ok("STATUS Archives (MESSAGES)"); !slices.Equal(got, []string{`* STATUS "Archives" (MESSAGES 0)`}) {
		t.Errorf("after the refused APPEND: %q", got)
	}
	_, status = c.cmd("APPEND Archives%s%s%s", lit, lit, lit)
	wantStatus(t, "APPEND of 3", status, "OK [APPENDUID ")
}
