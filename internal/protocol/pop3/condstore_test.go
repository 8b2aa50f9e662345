package pop3

import (
	"context"
	"slices"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// What a POP3 session does reaches an IMAP client resynchronising with CONDSTORE and
// QRESYNC (RFC 7162) through the store: the \Seen of a RETR committed at QUIT is a change
// with a modseq above the HIGHESTMODSEQ the IMAP client last saw, and a DELE committed at
// QUIT leaves a tombstone that Vanished reports.

func (e *env) highestModSeq() int64 {
	e.t.Helper()
	st, err := e.st.Status(context.Background(), e.inboxID())
	if err != nil {
		e.t.Fatal(err)
	}
	return st.ModSeq
}

func TestRetrQuitRaisesModSeq(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("read over POP3", "1\r\n"))
	kept := e.deliver(plainMessage("left alone", "2\r\n"))
	before := e.highestModSeq() // what an IMAP client knows

	c := e.login()
	c.retr(1)
	if e.highestModSeq() != before {
		t.Errorf("HIGHESTMODSEQ moved before QUIT: %d, was %d", e.highestModSeq(), before)
	}
	c.ok("QUIT")
	c.closed()

	after := e.highestModSeq()
	inbox := e.inbox()
	if !inbox[0].HasFlag(store.FlagSeen) || inbox[0].ModSeq <= before || after != inbox[0].ModSeq {
		t.Errorf("RETR'd message: flags %v modseq %d; HIGHESTMODSEQ %d, was %d", inbox[0].Flags, inbox[0].ModSeq, after, before)
	}
	if inbox[1].ModSeq != kept.ModSeq {
		t.Errorf("untouched message's modseq moved: %d, was %d", inbox[1].ModSeq, kept.ModSeq)
	}
	changed, err := e.st.ChangedSince(context.Background(), e.inboxID(), before)
	if err != nil || len(changed) != 1 || changed[0].UID != inbox[0].UID {
		t.Errorf("ChangedSince(%d) = %v, %v; want only UID %d", before, changed, err, inbox[0].UID)
	}

	// An IMAP STORE (UNCHANGEDSINCE what it knew) must not undo what POP3 did meanwhile.
	up, modified, err := e.st.SetFlagsUnchangedSince(context.Background(), e.inboxID(),
		[]uint32{inbox[0].UID, inbox[1].UID}, store.FlagsReplace, nil, before)
	if err != nil || !slices.Equal(modified, []uint32{inbox[0].UID}) || len(up) != 1 || up[0].UID != inbox[1].UID {
		t.Errorf("STORE UNCHANGEDSINCE %d: updates %+v, modified %v, %v; want UID %d refused", before, up, modified, err, inbox[0].UID)
	}
	if m := e.inbox()[0]; !m.HasFlag(store.FlagSeen) {
		t.Errorf("the \\Seen POP3 set was undone: %v", m.Flags)
	}
}

func TestDeleQuitLeavesTombstone(t *testing.T) {
	e := newEnv(t)
	d1 := e.deliver(plainMessage("one", "1\r\n"))
	d2 := e.deliver(plainMessage("two", "2\r\n"))
	d3 := e.deliver(plainMessage("three", "3\r\n"))
	before := e.highestModSeq()

	c := e.login()
	c.ok("DELE 1")
	c.ok("DELE 3")
	c.ok("QUIT")
	c.closed()

	v, err := e.st.Vanished(context.Background(), e.inboxID(), before)
	want := []store.UIDRange{{Start: d1.UID, Stop: d1.UID}, {Start: d3.UID, Stop: d3.UID}}
	if err != nil || !v.Exact || !slices.Equal(v.UIDs, want) {
		t.Errorf("Vanished(%d) = %+v, %v; want exact %v", before, v, err, want)
	}
	if after := e.highestModSeq(); after <= before {
		t.Errorf("HIGHESTMODSEQ %d after the expunges, was %d", after, before)
	}
	if inbox := e.inbox(); len(inbox) != 1 || inbox[0].UID != d2.UID {
		t.Errorf("INBOX after QUIT: %v", inbox)
	}
}
