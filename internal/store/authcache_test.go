package store

import (
	"errors"
	"testing"
	"time"
)

// TestLoginCacheNeverAdmitsWrongPassword: after a cached login, a wrong password is still
// refused, and a password changed by another handle on the same data directory (as
// `letterbox user passwd` does beside `serve`) takes effect at once.
func TestLoginCacheNeverAdmitsWrongPassword(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	newAccount(t, s, "carol@example.com")
	for i := 0; i < 2; i++ { // the second login is served from the cache
		if _, err := s.Authenticate(ctx, "carol@example.com", "secret"); err != nil {
			t.Fatalf("login %d: %v", i+1, err)
		}
	}
	if _, err := s.Authenticate(ctx, "carol@example.com", "Secret"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("wrong password after a cached login: %v", err)
	}

	other := openStore(t, dir)
	if err := other.SetPassword(ctx, "carol@example.com", "changed"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "carol@example.com", "secret"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("old password after another process changed it: %v", err)
	}
	if _, err := s.Authenticate(ctx, "carol@example.com", "changed"); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

func TestLoginCacheExpiresAndStaysBounded(t *testing.T) {
	c := newLoginCache(time.Minute, 2)
	now := time.Unix(1_700_000_000, 0)
	c.remember("hash-a", "pw", now)
	if !c.verified("hash-a", "pw", now.Add(59*time.Second)) {
		t.Fatal("a fresh entry was not found")
	}
	if c.verified("hash-a", "pw", now.Add(61*time.Second)) {
		t.Fatal("an expired entry was still trusted")
	}
	if c.verified("hash-b", "pw", now) {
		t.Fatal("an entry was found under another hash")
	}
	c.remember("hash-b", "pw", now)
	c.remember("hash-c", "pw", now.Add(2*time.Minute)) // evicts the expired ones first
	if len(c.entries) > 2 {
		t.Fatalf("cache holds %d entries, limit 2", len(c.entries))
	}
	if !c.verified("hash-c", "pw", now.Add(2*time.Minute)) {
		t.Fatal("the newest entry was evicted")
	}
}
