package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// watchChecks replaces verifyPassword, for the test, with one that counts the checks
// running at once (the highest count in *peak) and holds each until release is closed.
func watchChecks(t *testing.T, running, peak *atomic.Int32, release <-chan struct{}) {
	t.Helper()
	orig := verifyPassword
	t.Cleanup(func() { verifyPassword = orig })
	verifyPassword = func(hash, password string) (bool, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		return orig(hash, password)
	}
}

// TestPasswordChecksAreBounded: a flood of logins, wrong passwords and unknown users
// alike, never runs more password checks at once than maxPasswordChecks, and every one of
// them is still answered once checks are free again.
func TestPasswordChecksAreBounded(t *testing.T) {
	s := newStore(t)
	newAccount(t, s, "dave@example.com")
	limit := int32(maxPasswordChecks())

	var running, peak atomic.Int32
	release := make(chan struct{})
	watchChecks(t, &running, &peak, release)

	logins := 3 * int(limit)
	var wg sync.WaitGroup
	errs := make(chan error, logins)
	for i := range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "dave@example.com"
			if i%2 == 1 {
				user = "nobody@example.com"
			}
			_, err := s.Authenticate(ctx, user, "guess")
			errs <- err
		}()
	}
	for running.Load() < limit {
		time.Sleep(time.Millisecond)
	}
	// Give the logins beyond the bound every chance to start a check of their own.
	time.Sleep(50 * time.Millisecond)
	if p := peak.Load(); p > limit {
		t.Fatalf("%d password checks ran at once, bound %d", p, limit)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("a login waiting for a check: %v, want ErrAuthFailed", err)
		}
	}
	if p := peak.Load(); p > limit {
		t.Fatalf("%d password checks ran at once, bound %d", p, limit)
	}
}

// TestCachedLoginDoesNotWaitForChecks: while every check slot is taken (an attacker's
// hashes), a correct login the login cache knows is answered at once, and a login that
// needs a check gives up when its context ends instead of waiting for ever.
func TestCachedLoginDoesNotWaitForChecks(t *testing.T) {
	s := newStore(t)
	newAccount(t, s, "erin@example.com")
	if _, err := s.Authenticate(ctx, "erin@example.com", "secret"); err != nil {
		t.Fatal(err) // now cached
	}
	for range cap(s.checks) {
		s.checks <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(s.checks) {
			<-s.checks
		}
	})

	if _, err := s.Authenticate(ctx, "erin@example.com", "secret"); err != nil {
		t.Fatalf("cached correct login with every check slot taken: %v", err)
	}
	c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err := s.Authenticate(c, "erin@example.com", "wrong")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("login needing a check with every slot taken: %v, want the context's error", err)
	}
	c2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, err := s.Authenticate(c2, "nobody@example.com", "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unknown user with every slot taken: %v, want the context's error", err)
	}
}
