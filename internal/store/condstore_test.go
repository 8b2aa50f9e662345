package store

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

func status(t *testing.T, s *Store, mailboxID int64) MailboxStatus {
	t.Helper()
	st, err := s.Status(ctx, mailboxID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

func messageAt(t *testing.T, s *Store, mailboxID int64, uid uint32) Message {
	t.Helper()
	msgs, err := s.Messages(ctx, mailboxID, UIDRange{Start: uid, Stop: uid})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Messages(%d): %v, %v", uid, msgs, err)
	}
	return msgs[0]
}

// Every kind of change to a message gives it a new modseq above the mailbox's
// HIGHESTMODSEQ before it, and raises HIGHESTMODSEQ to it; the expunge too.
func TestModSeqMovesWithEveryChange(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	sent, err := s.MailboxByName(ctx, a.ID, "Sent")
	if err != nil {
		t.Fatal(err)
	}
	highest := func(id int64) int64 { return status(t, s, id).ModSeq }

	before := highest(in.ID)
	if before <= 0 {
		t.Fatalf("HIGHESTMODSEQ of a new mailbox %d, want > 0 (RFC 7162 §3.1.2.1)", before)
	}
	d := deliver(t, s, a.ID, simpleMessage("one"), DeliverOptions{})
	if d.ModSeq <= before || highest(in.ID) != d.ModSeq || messageAt(t, s, in.ID, d.UID).ModSeq != d.ModSeq {
		t.Fatalf("delivery: modseq %d, message %d, HIGHESTMODSEQ %d (before %d)",
			d.ModSeq, messageAt(t, s, in.ID, d.UID).ModSeq, highest(in.ID), before)
	}

	before = highest(in.ID)
	up, err := s.SetFlags(ctx, in.ID, []uint32{d.UID}, FlagsAdd, []string{FlagFlagged})
	if err != nil || len(up) != 1 || !up[0].Changed || up[0].ModSeq <= before || highest(in.ID) != up[0].ModSeq {
		t.Fatalf("SetFlags: %+v, %v; HIGHESTMODSEQ %d, before %d", up, err, highest(in.ID), before)
	}

	before = highest(sent.ID)
	pairs, err := s.Copy(ctx, in.ID, []uint32{d.UID}, sent.ID)
	if err != nil {
		t.Fatal(err)
	}
	copied := messageAt(t, s, sent.ID, pairs[0].Dst)
	if copied.ModSeq <= before || highest(sent.ID) != copied.ModSeq {
		t.Errorf("COPY destination modseq %d, HIGHESTMODSEQ %d, before %d", copied.ModSeq, highest(sent.ID), before)
	}

	before = highest(in.ID)
	if _, err := s.Expunge(ctx, in.ID, []uint32{d.UID}); err != nil {
		t.Fatal(err)
	}
	if highest(in.ID) <= before {
		t.Errorf("expunge left HIGHESTMODSEQ at %d (before %d): QRESYNC needs it raised", highest(in.ID), before)
	}

	before = highest(in.ID)
	moved, err := s.Move(ctx, sent.ID, []uint32{copied.UID}, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m := messageAt(t, s, in.ID, moved[0].Dst); m.ModSeq <= before || highest(in.ID) != m.ModSeq {
		t.Errorf("MOVE destination modseq %d, HIGHESTMODSEQ %d, before %d", m.ModSeq, highest(in.ID), before)
	}
	if hi, _ := s.HighestModSeq(ctx, a.ID); hi < highest(in.ID) || hi < highest(sent.ID) {
		t.Errorf("account HighestModSeq %d below a mailbox's", hi)
	}
}

// RFC 7162 §3.1: a STORE that changes nothing moves no modseq, with or without
// UNCHANGEDSINCE; with it, the message is still reported (the client is owed its FETCH).
func TestNoOpFlagChangeKeepsModSeq(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	d := deliver(t, s, a.ID, simpleMessage("one"), DeliverOptions{Flags: []string{FlagSeen, "Work"}})
	hi := status(t, s, in.ID).ModSeq

	for _, tc := range []struct {
		op    FlagOp
		flags []string
	}{
		{FlagsAdd, []string{`\seen`}},
		{FlagsAdd, []string{"work"}}, // keywords compare case-insensitively
		{FlagsRemove, []string{FlagDeleted}},
		{FlagsReplace, []string{FlagSeen, "Work"}},
	} {
		up, err := s.SetFlags(ctx, in.ID, []uint32{d.UID}, tc.op, tc.flags)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(up, func(u FlagUpdate) bool { return u.Changed || u.ModSeq != d.ModSeq }) {
			t.Errorf("SetFlags(%v %v) = %+v: reported a change", tc.op, tc.flags, up)
		}
		up, mod, err := s.SetFlagsUnchangedSince(ctx, in.ID, []uint32{d.UID}, tc.op, tc.flags, d.ModSeq)
		if err != nil {
			t.Fatal(err)
		}
		if len(mod) != 0 || len(up) != 1 || up[0].Changed || up[0].ModSeq != d.ModSeq {
			t.Errorf("SetFlagsUnchangedSince(%v %v, %d) = %+v, modified %v; want it reported unchanged", tc.op, tc.flags, d.ModSeq, up, mod)
		}
	}
	if m := messageAt(t, s, in.ID, d.UID); m.ModSeq != d.ModSeq || status(t, s, in.ID).ModSeq != hi {
		t.Errorf("after no-op stores: message modseq %d (was %d), HIGHESTMODSEQ %d (was %d)", m.ModSeq, d.ModSeq, status(t, s, in.ID).ModSeq, hi)
	}
	if ch, _ := s.Changes(ctx, a.ID, hi); len(ch) != 0 {
		t.Errorf("no-op stores logged changes: %+v", ch)
	}
}

// RFC 7162 §3.1.3: UNCHANGEDSINCE refuses to change a message modified meanwhile (by
// anyone) and reports it; the others are changed in the same transaction.
func TestUnchangedSince(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	d1 := deliver(t, s, a.ID, simpleMessage("one"), DeliverOptions{})
	d2 := deliver(t, s, a.ID, simpleMessage("two"), DeliverOptions{})
	d3 := deliver(t, s, a.ID, simpleMessage("three"), DeliverOptions{})
	seen := status(t, s, in.ID).ModSeq // what the client knows

	// Another session flags message 2 meanwhile.
	other, err := s.SetFlags(ctx, in.ID, []uint32{d2.UID}, FlagsAdd, []string{FlagFlagged})
	if err != nil || len(other) != 1 {
		t.Fatal(other, err)
	}

	up, mod, err := s.SetFlagsUnchangedSince(ctx, in.ID, []uint32{d1.UID, d2.UID, d3.UID}, FlagsAdd, []string{FlagDeleted}, seen)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mod, []uint32{d2.UID}) {
		t.Errorf("modified %v, want [%d]", mod, d2.UID)
	}
	if len(up) != 2 || up[0].UID != d1.UID || up[1].UID != d3.UID || !up[0].Changed || !up[1].Changed ||
		up[0].ModSeq <= other[0].ModSeq || up[1].ModSeq <= up[0].ModSeq {
		t.Errorf("updates %+v, want UIDs %d and %d changed with new modseqs above %d", up, d1.UID, d3.UID, other[0].ModSeq)
	}
	if m := messageAt(t, s, in.ID, d2.UID); m.HasFlag(FlagDeleted) || m.ModSeq != other[0].ModSeq {
		t.Errorf("the message modified meanwhile was changed: %v modseq %d", m.Flags, m.ModSeq)
	}
	if m := messageAt(t, s, in.ID, d1.UID); !m.HasFlag(FlagDeleted) {
		t.Errorf("message 1 not \\Deleted: %v", m.Flags)
	}

	// The test is on the modseq alone: a STORE that would change nothing still fails it.
	_, mod, err = s.SetFlagsUnchangedSince(ctx, in.ID, []uint32{d2.UID}, FlagsAdd, []string{FlagFlagged}, seen)
	if err != nil || !slices.Equal(mod, []uint32{d2.UID}) {
		t.Errorf("no-op store on a message modified since: modified %v, %v; want [%d]", mod, err, d2.UID)
	}
	// UNCHANGEDSINCE 0 fails for every message (RFC 7162 §3.1.3).
	up, mod, err = s.SetFlagsUnchangedSince(ctx, in.ID, []uint32{d1.UID, d3.UID}, FlagsRemove, []string{FlagDeleted}, 0)
	if err != nil || len(up) != 0 || !slices.Equal(mod, []uint32{d1.UID, d3.UID}) {
		t.Errorf("UNCHANGEDSINCE 0: updates %+v, modified %v, %v", up, mod, err)
	}
}

func TestChangedSince(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	d1 := deliver(t, s, a.ID, simpleMessage("one"), DeliverOptions{})
	d2 := deliver(t, s, a.ID, simpleMessage("two"), DeliverOptions{})
	d3 := deliver(t, s, a.ID, simpleMessage("three"), DeliverOptions{})
	since := status(t, s, in.ID).ModSeq
	if _, err := s.SetFlags(ctx, in.ID, []uint32{d1.UID, d3.UID}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ChangedSince(ctx, in.ID, since)
	if err != nil || !slices.Equal(uids(got), []uint32{d1.UID, d3.UID}) {
		t.Errorf("ChangedSince(%d) = %v, %v; want UIDs %d, %d", since, uids(got), err, d1.UID, d3.UID)
	}
	got, _ = s.ChangedSince(ctx, in.ID, since, UIDRange{Start: d2.UID, Stop: d3.UID})
	if !slices.Equal(uids(got), []uint32{d3.UID}) {
		t.Errorf("ChangedSince in %d:%d = %v, want [%d]", d2.UID, d3.UID, uids(got), d3.UID)
	}
	got, _ = s.ChangedSince(ctx, in.ID, d1.ModSeq-1)
	if len(got) != 3 {
		t.Errorf("ChangedSince(%d) = %v, want all three", d1.ModSeq-1, uids(got))
	}
}

// Vanished reports the UIDs expunged since a modseq from the tombstones, by whoever.
func TestVanished(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	var ds []Delivered
	for i := range 6 {
		ds = append(ds, deliver(t, s, a.ID, simpleMessage("m"+strings.Repeat("x", i)), DeliverOptions{}))
	}
	if _, err := s.Expunge(ctx, in.ID, []uint32{ds[0].UID}); err != nil {
		t.Fatal(err)
	}
	since := status(t, s, in.ID).ModSeq
	if _, err := s.Expunge(ctx, in.ID, []uint32{ds[2].UID, ds[3].UID, ds[5].UID}); err != nil {
		t.Fatal(err)
	}
	v, err := s.Vanished(ctx, in.ID, since)
	want := []UIDRange{{ds[2].UID, ds[3].UID}, {ds[5].UID, ds[5].UID}}
	if err != nil || !v.Exact || !slices.Equal(v.UIDs, want) {
		t.Errorf("Vanished(%d) = %+v, %v; want exact %v", since, v, err, want)
	}
	v, _ = s.Vanished(ctx, in.ID, 0)
	if want := []UIDRange{{ds[0].UID, ds[0].UID}, {ds[2].UID, ds[3].UID}, {ds[5].UID, ds[5].UID}}; !slices.Equal(v.UIDs, want) {
		t.Errorf("Vanished(0) = %v, want %v", v.UIDs, want)
	}
	v, _ = s.Vanished(ctx, in.ID, since, UIDRange{Start: ds[3].UID, Stop: 0})
	if want := []UIDRange{{ds[3].UID, ds[3].UID}, {ds[5].UID, ds[5].UID}}; !slices.Equal(v.UIDs, want) {
		t.Errorf("Vanished in %d:* = %v, want %v", ds[3].UID, v.UIDs, want)
	}
	if v, _ := s.Vanished(ctx, in.ID, status(t, s, in.ID).ModSeq); len(v.UIDs) != 0 || !v.Exact {
		t.Errorf("Vanished(HIGHESTMODSEQ) = %+v, want nothing", v)
	}
	if _, err := s.Vanished(ctx, 999999, 0); err == nil {
		t.Error("Vanished of no mailbox: no error")
	}
}

// Tombstones older than the retention are pruned; the store then says from which modseq
// on it still knows every expunge, and below it answers every UID no longer there.
func TestVanishedAfterPruning(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := openTest(t, Options{Logger: quietLogger(), Now: clock, ExpungeRetention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	var ds []Delivered
	for i := range 5 {
		ds = append(ds, deliver(t, s, a.ID, simpleMessage("m"+strings.Repeat("x", i)), DeliverOptions{}))
	}
	start := status(t, s, in.ID).ModSeq
	if _, err := s.Expunge(ctx, in.ID, []uint32{ds[1].UID}); err != nil { // old
		t.Fatal(err)
	}
	oldHigh := status(t, s, in.ID).ModSeq
	now = now.Add(36 * time.Hour)
	if _, err := s.Expunge(ctx, in.ID, []uint32{ds[3].UID}); err != nil { // recent
		t.Fatal(err)
	}
	accountHigh, _ := s.HighestModSeq(ctx, a.ID)

	n, err := s.pruneTombstones(now.Add(-24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruneTombstones = %d, %v; want 1", n, err)
	}
	if hi, _ := s.HighestModSeq(ctx, a.ID); hi != accountHigh {
		t.Errorf("HighestModSeq %d after pruning, was %d: it must never fall", hi, accountHigh)
	}

	v, err := s.Vanished(ctx, in.ID, oldHigh)
	if err != nil || !v.Exact || !slices.Equal(v.UIDs, []UIDRange{{ds[3].UID, ds[3].UID}}) {
		t.Errorf("Vanished(%d) = %+v, %v; want exact [%d]", oldHigh, v, err, ds[3].UID)
	}
	// A client from before the pruned tombstone: no exact answer, but every UID that is
	// not there any more (and none that is).
	v, err = s.Vanished(ctx, in.ID, start)
	if err != nil || v.Exact || v.KnownSince != oldHigh {
		t.Errorf("Vanished(%d) = %+v, %v; want inexact, known since %d", start, v, err, oldHigh)
	}
	if want := []UIDRange{{ds[1].UID, ds[1].UID}, {ds[3].UID, ds[3].UID}}; !slices.Equal(v.UIDs, want) {
		t.Errorf("inexact Vanished = %v, want %v", v.UIDs, want)
	}
	v, _ = s.Vanished(ctx, in.ID, start, UIDRange{Start: ds[2].UID, Stop: ds[4].UID})
	if want := []UIDRange{{ds[3].UID, ds[3].UID}}; !slices.Equal(v.UIDs, want) {
		t.Errorf("inexact Vanished in %d:%d = %v, want %v", ds[2].UID, ds[4].UID, v.UIDs, want)
	}
	// Pruning again finds nothing more; the recent tombstone stays until it is old too.
	if n, _ := s.pruneTombstones(now.Add(-24 * time.Hour)); n != 0 {
		t.Errorf("second prune removed %d", n)
	}
	if n, _ := s.pruneTombstones(now.Add(time.Second)); n != 1 {
		t.Errorf("prune of the rest removed %d, want 1", n)
	}
	if v, _ := s.Vanished(ctx, in.ID, oldHigh); v.Exact {
		t.Errorf("Vanished(%d) exact after its tombstone was pruned: %+v", oldHigh, v)
	}
}

// Pruning in many small batches ends where one batch would: every old tombstone gone,
// each mailbox's floor at its highest one pruned.
func TestPruneInBatches(t *testing.T) {
	defer func(n int) { pruneBatch = n }(pruneBatch)
	pruneBatch = 2
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := openTest(t, Options{Logger: quietLogger(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	trash, err := s.MailboxByName(ctx, a.ID, "Trash")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 { // 3 moved to Trash, 4 expunged: 7 tombstones in INBOX
		d := deliver(t, s, a.ID, simpleMessage("m"+strconv.Itoa(i)), DeliverOptions{})
		if i%3 == 0 {
			_, err = s.Move(ctx, in.ID, []uint32{d.UID}, trash.ID)
		} else {
			_, err = s.Expunge(ctx, in.ID, []uint32{d.UID})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	msgs, _ := s.Messages(ctx, trash.ID) // and 3 in Trash
	if _, err := s.Expunge(ctx, trash.ID, uids(msgs)); err != nil {
		t.Fatal(err)
	}
	inHigh, trashHigh := status(t, s, in.ID).ModSeq, status(t, s, trash.ID).ModSeq
	now = now.Add(time.Hour)
	n, err := s.pruneTombstones(now)
	if want := 7 + 3; err != nil || n != want {
		t.Fatalf("pruneTombstones = %d, %v; want %d", n, err, want)
	}
	for _, mb := range []struct {
		id, high int64
	}{{in.ID, inHigh}, {trash.ID, trashHigh}} {
		v, err := s.Vanished(ctx, mb.id, 0)
		if err != nil || v.Exact || v.KnownSince != mb.high {
			t.Errorf("mailbox %d: Vanished(0) = %+v, %v; want inexact, known since %d", mb.id, v, err, mb.high)
		}
	}
}

func TestUIDGaps(t *testing.T) {
	for _, tc := range []struct {
		ranges  []UIDRange
		uidNext uint32
		present []uint32
		want    []UIDRange
	}{
		{nil, 1, nil, nil},
		{nil, 6, nil, []UIDRange{{1, 5}}},
		{nil, 6, []uint32{1, 2, 3, 4, 5}, nil},
		{nil, 8, []uint32{2, 5}, []UIDRange{{1, 1}, {3, 4}, {6, 7}}},
		{[]UIDRange{{4, 0}}, 8, []uint32{5}, []UIDRange{{4, 4}, {6, 7}}},
		{[]UIDRange{{6, 7}, {1, 2}, {2, 3}}, 10, []uint32{2, 7}, []UIDRange{{1, 1}, {3, 3}, {6, 6}}},
		{[]UIDRange{{20, 30}}, 10, nil, nil},
	} {
		if got := uidGaps(tc.ranges, tc.uidNext, tc.present); !slices.Equal(got, tc.want) {
			t.Errorf("uidGaps(%v, %d, %v) = %v, want %v", tc.ranges, tc.uidNext, tc.present, got, tc.want)
		}
	}
}

// SAVEDATE is when the message came into this mailbox: a copy has its own, INTERNALDATE
// is kept. EMAILID is shared by copies; MAILBOXID survives a rename.
func TestSaveDateAndObjectIDs(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := openTest(t, Options{Logger: quietLogger(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	internal := time.Date(2020, 5, 5, 5, 5, 5, 0, time.UTC)
	d := deliver(t, s, a.ID, simpleMessage("one"), DeliverOptions{InternalDate: internal})
	other := deliver(t, s, a.ID, simpleMessage("two"), DeliverOptions{})
	m := messageAt(t, s, in.ID, d.UID)
	if !m.SaveDate.Equal(now) || !m.InternalDate.Equal(internal) {
		t.Errorf("SaveDate %v InternalDate %v, want %v and %v", m.SaveDate, m.InternalDate, now, internal)
	}
	folder, err := s.CreateMailbox(ctx, a.ID, "Folder", "")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	pairs, err := s.Copy(ctx, in.ID, []uint32{d.UID}, folder.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := messageAt(t, s, folder.ID, pairs[0].Dst)
	if !c.SaveDate.Equal(now) || !c.InternalDate.Equal(internal) {
		t.Errorf("copy: SaveDate %v InternalDate %v, want %v and %v", c.SaveDate, c.InternalDate, now, internal)
	}
	if c.EmailID() != m.EmailID() || m.EmailID() == messageAt(t, s, in.ID, other.UID).EmailID() {
		t.Errorf("EMAILIDs: original %s, copy %s, another message %s", m.EmailID(), c.EmailID(), messageAt(t, s, in.ID, other.UID).EmailID())
	}
	if id := m.EmailID(); strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" || len(id) > 255 || id[0] >= '0' && id[0] <= '9' {
		t.Errorf("EMAILID %q is not an RFC 8474 objectid that looks like no number", id)
	}
	if err := s.RenameMailbox(ctx, a.ID, "Folder", "Renamed"); err != nil {
		t.Fatal(err)
	}
	renamed, err := s.MailboxByName(ctx, a.ID, "Renamed")
	if err != nil || renamed.ObjectID() != folder.ObjectID() || renamed.ObjectID() == in.ObjectID() {
		t.Errorf("MAILBOXID %q after rename, %q before (INBOX %q), %v", renamed.ObjectID(), folder.ObjectID(), in.ObjectID(), err)
	}
	if (Message{}).ThreadID() != "" {
		t.Error("a message stored before threading has a THREADID")
	}
}

// Messages and bodies from before the migration: SAVEDATE unknown, preview computed when
// first asked for and kept.
func TestMigratedMessagesHaveNoSaveDateAndALazyPreview(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	d := deliver(t, s, a.ID, simpleMessage("old one"), DeliverOptions{})
	// As the migration leaves rows stored before it.
	if _, err := s.writer.Exec(`UPDATE messages SET save_date = NULL; UPDATE bodies SET preview = NULL`); err != nil {
		t.Fatal(err)
	}
	if m := messageAt(t, s, in.ID, d.UID); !m.SaveDate.IsZero() {
		t.Errorf("SaveDate %v, want zero (NIL)", m.SaveDate)
	}
	md, err := s.MetadataOf(ctx, in.ID, MetadataParts{Preview: true})
	if err != nil || len(md) != 1 || md[0].Preview != "Hello, old one." {
		t.Fatalf("MetadataOf(Preview) = %+v, %v", md, err)
	}
	var kept string
	if err := s.readers.QueryRow(`SELECT preview FROM bodies WHERE id = ?`, md[0].BodyID).Scan(&kept); err != nil || kept != "Hello, old one." {
		t.Errorf("preview kept %q, %v", kept, err)
	}
	if m := messageAt(t, s, in.ID, d.UID); m.ModSeq != d.ModSeq {
		t.Errorf("computing the preview moved the modseq from %d to %d", d.ModSeq, m.ModSeq)
	}
}

// The migration applies to a store at the schema before it, and what was there stays.
func TestCondstoreMigrationKeepsTombstones(t *testing.T) {
	sqliteOnly(t, "SQLite migration 6")
	dir := t.TempDir()
	s := openStore(t, dir)
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	d := deliver(t, s, a.ID, simpleMessage("one"), DeliverOptions{})
	since := status(t, s, in.ID).ModSeq
	if _, err := s.Expunge(ctx, in.ID, []uint32{d.UID}); err != nil {
		t.Fatal(err)
	}
	// Undo the migration's additions that a store before it did not have, and those of
	// the thread migration after it (threads.go), which a store at that schema had not
	// either (the bodies columns it added are gone already: sqlite.MigrationThreadKeys).
	for _, q := range []string{
		`ALTER TABLE messages DROP COLUMN thread_id`,
		`DROP INDEX changes_expunged`, `DROP INDEX changes_expunged_at`, `DROP INDEX messages_modseq`,
		`ALTER TABLE changes DROP COLUMN at`, `ALTER TABLE mailboxes DROP COLUMN expunge_floor`,
		`ALTER TABLE messages DROP COLUMN save_date`, `ALTER TABLE bodies DROP COLUMN preview`,
		`DROP TABLE sort_keys`, // and what the migrations after it added
		`PRAGMA user_version = ` + strconv.Itoa(slices.Index(migrations, sqlite.MigrationCondstore)),
	} {
		if _, err := s.writer.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	s = openStore(t, dir)
	v, err := s.Vanished(ctx, in.ID, since)
	if err != nil || !v.Exact || !slices.Equal(v.UIDs, []UIDRange{{d.UID, d.UID}}) {
		t.Errorf("Vanished after migration = %+v, %v", v, err)
	}
	// Old tombstones count from the migration: a prune of what is older than a day ago
	// leaves them.
	if n, err := s.pruneTombstones(time.Now().Add(-24 * time.Hour)); err != nil || n != 0 {
		t.Errorf("pruneTombstones = %d, %v; want 0", n, err)
	}
}
