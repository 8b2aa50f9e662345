package store

import (
	"slices"
	"testing"
)

// TestCommitMaildrop: a POP3 session's QUIT, in each of its delete modes: \Seen on the
// retrieved messages, and the deleted ones expunged or flagged; nothing else touched.
func TestCommitMaildrop(t *testing.T) {
	for _, tc := range []struct {
		name, flag string
		left       []uint32 // UIDs left in INBOX
	}{
		{"expunge", "", []uint32{1, 3}},
		{"keep flagged", FlagDeleted, []uint32{1, 2, 3}},
		{"hide", "$POP3Deleted", []uint32{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			a := newAccount(t, s, "alice@example.com")
			in := inbox(t, s, a.ID)
			for _, sub := range []string{"one", "two", "three"} {
				deliver(t, s, a.ID, simpleMessage(sub), DeliverOptions{})
			}
			err := s.CommitMaildrop(ctx, in.ID, MaildropCommit{Seen: []uint32{1}, Deleted: []uint32{2}, DeletedFlag: tc.flag})
			if err != nil {
				t.Fatalf("CommitMaildrop: %v", err)
			}
			msgs, err := s.Messages(ctx, in.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(uids(msgs), tc.left) {
				t.Fatalf("INBOX after the commit: UIDs %v, want %v", uids(msgs), tc.left)
			}
			for _, m := range msgs {
				want := map[uint32][]string{1: {FlagSeen}}[m.UID]
				if m.UID == 2 {
					want = []string{tc.flag}
				}
				if !slices.Equal(m.Flags, want) {
					t.Errorf("UID %d flags %v, want %v", m.UID, m.Flags, want)
				}
			}
		})
	}
	// Nothing deleted never means "every \Deleted message", as Expunge(nil) would.
	s := newStore(t)
	a := newAccount(t, s, "bob@example.com")
	in := inbox(t, s, a.ID)
	d := deliver(t, s, a.ID, simpleMessage("flagged"), DeliverOptions{Flags: []string{FlagDeleted}})
	if err := s.CommitMaildrop(ctx, in.ID, MaildropCommit{Seen: []uint32{d.UID}}); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := s.Messages(ctx, in.ID); len(msgs) != 1 {
		t.Errorf("a commit without deletions left %d messages, want 1 (the \\Deleted one kept)", len(msgs))
	}
}
