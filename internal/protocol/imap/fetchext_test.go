package imap

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// TestFetchSaveDateEmailIDPreview: SAVEDATE (RFC 8514), EMAILID and THREADID (RFC 8474)
// and PREVIEW (RFC 8970), end to end; a COPY keeps the EMAILID and gets a save date of
// its own.
func TestFetchSaveDateEmailIDPreview(t *testing.T) {
	e, c := searchEnv(t)
	msgs, err := e.st.Messages(t.Context(), e.mailbox("INBOX").ID)
	if err != nil {
		t.Fatal(err)
	}
	got := grep(c.ok("FETCH 1:2 (SAVEDATE EMAILID THREADID PREVIEW)"), `FETCH`)
	want := []string{
		`* 1 FETCH (SAVEDATE "` + msgs[0].SaveDate.UTC().Format("02-Jan-2006 15:04:05 -0700") + `" EMAILID (` + msgs[0].EmailID() +
			`) THREADID (` + msgs[0].ThreadID() + `) PREVIEW "The pineapple harvest doubled.")`,
		`* 2 FETCH (SAVEDATE "` + msgs[1].SaveDate.UTC().Format("02-Jan-2006 15:04:05 -0700") + `" EMAILID (` + msgs[1].EmailID() +
			`) THREADID (` + msgs[1].ThreadID() + `) PREVIEW "Shall we try the new place?")`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("FETCH:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if msgs[0].ThreadID() == "" || msgs[0].ThreadID() == msgs[1].ThreadID() {
		t.Errorf("unrelated messages: THREADIDs %q and %q", msgs[0].ThreadID(), msgs[1].ThreadID())
	}
	if msgs[0].EmailID() == msgs[1].EmailID() {
		t.Errorf("two messages share EMAILID %s", msgs[0].EmailID())
	}

	// PREVIEW (LAZY) answers with the text at once, as the store has it; the modifier
	// list may be followed by other items.
	if got := grep(c.ok("UID FETCH 1 (PREVIEW (LAZY) FLAGS)"), `FETCH`); len(got) != 1 ||
		got[0] != `* 1 FETCH (UID 1 FLAGS (\Recent \Seen) PREVIEW "The pineapple harvest doubled.")` {
		t.Errorf("PREVIEW (LAZY): %q", got)
	}
	if got := grep(c.ok("FETCH 4 PREVIEW (lazy)"), `FETCH`); len(got) != 1 ||
		got[0] != `* 4 FETCH (PREVIEW {24}`+"\r\n"+`Schöne Grüße vom Dom.)` {
		t.Errorf("PREVIEW of a latin-1 body: %q", got)
	}
	for _, bad := range []string{"FETCH 1 (PREVIEW (EAGER))", "FETCH 1 (PREVIEW ())"} {
		if _, status := c.cmd("%s", bad); !strings.HasPrefix(status, "BAD") {
			t.Errorf("%s: %s, want BAD", bad, status)
		}
	}

	c.ok("CREATE Kept")
	c.ok("COPY 1 Kept")
	c.ok("SELECT Kept")
	got = grep(c.ok("FETCH 1 (EMAILID SAVEDATE)"), `FETCH`)
	if len(got) != 1 || !strings.Contains(got[0], "EMAILID ("+msgs[0].EmailID()+")") {
		t.Errorf("the copy's EMAILID: %q, want %s", got, msgs[0].EmailID())
	}
	if !regexp.MustCompile(`SAVEDATE "[ 0-9]+-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d \+0000"`).MatchString(strings.Join(got, "")) {
		t.Errorf("the copy's SAVEDATE: %q", got)
	}
	// SEARCH EMAILID and THREADID find every copy in the selected mailbox.
	if got := searchNums(t, c, "EMAILID "+msgs[0].EmailID()); got != "1" {
		t.Errorf("SEARCH EMAILID = %q", got)
	}
	if got := searchNums(t, c, "EMAILID "+msgs[1].EmailID()); got != "" {
		t.Errorf("SEARCH EMAILID of a message not here = %q", got)
	}
	if got := searchNums(t, c, "THREADID "+msgs[0].ThreadID()); got != "1" {
		t.Errorf("SEARCH THREADID = %q", got)
	}
	if got := searchNums(t, c, "THREADID "+msgs[1].ThreadID()); got != "" {
		t.Errorf("SEARCH THREADID of a thread not here = %q", got)
	}
	if _, status := c.cmd("SEARCH EMAILID E.1"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("EMAILID with a bad object id: %s", status)
	}
}

// TestFetchSaveDateUnknown: a message stored before the store kept save dates answers
// SAVEDATE NIL (RFC 8514 §3), and one without text an empty PREVIEW.
func TestFetchSaveDateUnknown(t *testing.T) {
	var buf bytes.Buffer
	w := newResponseWriter(&buf)
	a := &fetchArgs{ext: fetchExt{saveDate: true, threadID: true, preview: true}}
	m := &store.Metadata{Message: store.Message{UID: 7, BodyID: 3, InternalDate: time.Unix(0, 0)}}
	rw := (&fetchWriter{w: w, args: a}).CreateMessage(msgRef{seq: 1, uid: 7})
	writeFetchExt(rw, a, m)
	rw.Close()
	w.flush()
	if got, want := buf.String(), `* 1 FETCH (SAVEDATE NIL THREADID NIL PREVIEW "")`+"\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
