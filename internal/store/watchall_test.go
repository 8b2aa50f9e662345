package store

import (
	"strings"
	"testing"
	"time"
)

func TestWatchAll(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	all, cancel := s.WatchAll()
	one, cancelOne := s.Watch(a.ID)
	defer cancelOne()
	waitWatcher(t, s)
	drain(all)
	drain(one)

	writes := []struct {
		name  string
		write func() error
	}{
		{"deliver to alice", func() error {
			_, err := s.Deliver(ctx, a.ID, strings.NewReader(simpleMessage("hi")), DeliverOptions{})
			return err
		}},
		{"create bob", func() error { _, err := s.CreateAccount(ctx, NewAccount{Address: "bob", Password: "pw"}); return err }},
		{"delete bob", func() error { return s.DeleteAccount(ctx, "bob") }},
	}
	for _, w := range writes {
		drain(all)
		if err := w.write(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-all:
		default:
			t.Errorf("%s did not wake WatchAll", w.name)
		}
	}
	// An account's own waiters still see only their account.
	waitWatcher(t, s) // its echo of alice's delivery must not count below
	drain(one)
	if _, err := s.CreateAccount(ctx, NewAccount{Address: "carol", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-one:
		t.Error("alice's waiter woken by carol's creation")
	case <-time.After(50 * time.Millisecond):
	}

	cancel()
	waitWatcher(t, s)
	drain(all)
	deliver(t, s, a.ID, simpleMessage("after cancel"), DeliverOptions{})
	select {
	case <-all:
		t.Error("woken after cancel")
	default:
	}
}
