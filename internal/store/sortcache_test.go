package store

import (
	"slices"
	"strconv"
	"testing"
)

// A kept answer (SortSnapshot.Memo) is handed out again only while the mailbox has the
// same messages: an arrival or an expunge, made by this Store or by another process on
// the same directory, and an expunge plus an arrival that leave the count as it was,
// each make the next snapshot compute again; a flag change does not (no sort key or
// threading key is a flag). The computation is handed the answer kept before, with the
// UIDs it was computed on, after arrivals and after expunges alike.
func TestSortSnapshotMemoFollowsTheMailbox(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	other := openStore(t, dir) // another process, as far as s can tell
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	msg := func(i int) string { return "Subject: m" + strconv.Itoa(i) + "\r\n\r\nx\r\n" }
	computed := 0
	handedN := -1 // the prevN the last computation was handed, -1 for no prev
	// answer is the UIDs of the snapshot's rows, kept under one key.
	answer := func(key string) []uint32 {
		t.Helper()
		sn, err := s.SortSnapshot(ctx, in.ID)
		if err != nil || sn == nil {
			t.Fatalf("SortSnapshot: %v, %v", sn, err)
		}
		return sn.Memo(key, func(prev any, prevN int, prevUID func(int) uint32) any {
			computed++
			handedN = -1
			if prev != nil {
				handedN = prevN
				var uids []uint32
				for i := range prevN {
					uids = append(uids, prevUID(i))
				}
				if kept := prev.([]uint32); !slices.Equal(kept, uids) {
					t.Errorf("handed %v with the UIDs %v", kept, uids)
				}
			}
			return uidsOf(sn.Rows)
		}).([]uint32)
	}
	check := func(step string, want []uint32, wantComputed, wantHanded int) {
		t.Helper()
		handedN = -2
		if got := answer("k"); !slices.Equal(got, want) || computed != wantComputed {
			t.Errorf("%s: %v after %d computations, want %v after %d", step, got, computed, want, wantComputed)
		}
		if handedN != wantHanded {
			t.Errorf("%s: the computation was handed a kept answer for %d rows, want %d (-1 none, -2 no computation)", step, handedN, wantHanded)
		}
	}
	for i := 1; i <= 3; i++ {
		deliver(t, s, a.ID, msg(i), DeliverOptions{})
	}
	check("first", []uint32{1, 2, 3}, 1, -1)
	check("nothing changed", []uint32{1, 2, 3}, 1, -2)
	if got := answer("other key"); !slices.Equal(got, []uint32{1, 2, 3}) || computed != 2 {
		t.Errorf("another key: %v after %d computations, want its own", got, computed)
	}
	if _, err := s.SetFlags(ctx, in.ID, []uint32{2}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	check("a flag change", []uint32{1, 2, 3}, 2, -2)

	deliver(t, other, a.ID, msg(4), DeliverOptions{})
	check("another process's arrival", []uint32{1, 2, 3, 4}, 3, 3)
	if _, err := other.Expunge(ctx, in.ID, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	check("another process's expunge", []uint32{1, 3, 4}, 4, 4)
	// The same count and, but for the arrival, the same highest UID: still a change.
	if _, err := other.Expunge(ctx, in.ID, []uint32{4}); err != nil {
		t.Fatal(err)
	}
	deliver(t, other, a.ID, msg(5), DeliverOptions{})
	check("an expunge and an arrival", []uint32{1, 3, 5}, 5, 3)
	check("nothing changed again", []uint32{1, 3, 5}, 5, -2)

	// A move out of the mailbox is an expunge from it.
	box, err := s.CreateMailbox(ctx, a.ID, "Archive", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Move(ctx, in.ID, []uint32{1}, box.ID); err != nil {
		t.Fatal(err)
	}
	check("a move out", []uint32{3, 5}, 6, 3)
}

func uidsOf(rows []SortRow) []uint32 {
	var uids []uint32
	for _, r := range rows {
		uids = append(uids, r.UID)
	}
	return uids
}
