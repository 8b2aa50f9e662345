package store

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestOpName(t *testing.T) {
	for in, want := range map[string]string{
		"deliver":                         "deliver",
		"set flags":                       "set flags",
		"set quota for alice@example.com": "set quota",
		"create account bob":              "create account",
		`create mailbox "Work/Q1"`:        "create mailbox",
		`rename mailbox "a" to "b"`:       "rename mailbox",
		"disable account x@y":             "disable account",
	} {
		if got := opName(in); got != want {
			t.Errorf("opName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSetProtocols(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	newAccount(t, s, "p@example.com")
	if err := s.SetProtocols(ctx, "P@example.com", []string{"POP3", " pop3"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.LookupAccount(ctx, "p@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Allows(ProtocolPOP3) || a.Allows(ProtocolIMAP) || len(a.Protocols) != 1 {
		t.Errorf("protocols %q: pop3 %v, imap %v", a.Protocols, a.Allows(ProtocolPOP3), a.Allows(ProtocolIMAP))
	}
	if err := s.SetProtocols(ctx, "p@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if a, _ = s.LookupAccount(ctx, "p@example.com"); !a.Allows(ProtocolIMAP) || len(a.Protocols) != 0 {
		t.Errorf("after clearing: %q", a.Protocols)
	}
	if err := s.SetProtocols(ctx, "p@example.com", []string{"smtp"}); err == nil {
		t.Error("unknown protocol accepted")
	}
	if err := s.SetProtocols(ctx, "nobody@example.com", []string{"imap"}); !errors.Is(err, ErrNoSuchAccount) {
		t.Errorf("unknown account: %v", err)
	}
}

func TestObserveWrites(t *testing.T) {
	s := newStore(t)
	var ops []string
	s.ObserveWrites(func(op string, d time.Duration) {
		if d < 0 {
			t.Errorf("%s: negative duration", op)
		}
		ops = append(ops, op)
	})
	a := newAccount(t, s, "o@example.com")
	deliver(t, s, a.ID, simpleMessage("x"), DeliverOptions{})
	s.ObserveWrites(nil)
	deliver(t, s, a.ID, simpleMessage("y"), DeliverOptions{})
	if want := []string{"create account", "deliver"}; !slices.Equal(ops, want) {
		t.Errorf("observed %q, want %q", ops, want)
	}
}
