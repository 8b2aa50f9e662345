package store

import (
	"slices"
	"strings"
	"testing"
)

// ClaimRecent hands each message's \Recent to one caller: the first to claim it.
func TestClaimRecent(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice@example.com")
	in := inbox(t, s, a.ID)
	deliver(t, s, a.ID, simpleMessage("one"), DeliverOptions{})
	deliver(t, s, a.ID, simpleMessage("two"), DeliverOptions{})
	if st, err := s.Status(ctx, in.ID); err != nil || st.Recent != 2 {
		t.Fatalf("Status before any claim: Recent %d, %v; want 2", st.Recent, err)
	}
	from, err := s.ClaimRecent(ctx, in.ID, 2)
	if err != nil || from != 0 {
		t.Fatalf("first claim: from %d, %v; want 0", from, err)
	}
	if from, err := s.ClaimRecent(ctx, in.ID, 2); err != nil || from != 2 {
		t.Errorf("second claim: from %d, %v; want 2 (nothing left)", from, err)
	}
	if st, _ := s.Status(ctx, in.ID); st.Recent != 0 || st.RecentUID != 2 {
		t.Errorf("Status after the claim: Recent %d RecentUID %d", st.Recent, st.RecentUID)
	}
	deliver(t, s, a.ID, simpleMessage("three"), DeliverOptions{})
	if from, err := s.ClaimRecent(ctx, in.ID, 3); err != nil || from != 2 {
		t.Errorf("claim of the new message: from %d, %v; want 2", from, err)
	}
	if _, err := s.ClaimRecent(ctx, 9999, 1); err == nil {
		t.Error("claim in a missing mailbox succeeded")
	}
}

// RFC 3501 §6.3.6: subscriptions are names apart from mailboxes.
func TestSubscriptionsApartFromMailboxes(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice@example.com")
	if _, err := s.CreateMailbox(ctx, a.ID, "Work", ""); err != nil {
		t.Fatal(err)
	}
	subs, _ := s.Subscriptions(ctx, a.ID)
	if slices.Contains(subs, "Work") {
		t.Errorf("CREATE subscribed: %q", subs)
	}
	for _, n := range []string{"Work", "Later/Maybe"} {
		if err := s.SetSubscribed(ctx, a.ID, n, true); err != nil {
			t.Fatalf("subscribe %s: %v", n, err)
		}
	}
	if err := s.DeleteMailbox(ctx, a.ID, "Work"); err != nil {
		t.Fatal(err)
	}
	subs, _ = s.Subscriptions(ctx, a.ID)
	if !slices.Contains(subs, "Work") || !slices.Contains(subs, "Later/Maybe") {
		t.Errorf("subscriptions after DELETE: %q", subs)
	}
	if err := s.SetSubscribed(ctx, a.ID, "inbox", false); err != nil {
		t.Fatal(err)
	}
	subs, _ = s.Subscriptions(ctx, a.ID)
	if slices.ContainsFunc(subs, func(n string) bool { return strings.EqualFold(n, "INBOX") }) {
		t.Errorf("INBOX still subscribed: %q", subs)
	}
}
