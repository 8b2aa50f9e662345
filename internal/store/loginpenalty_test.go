package store

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// Two nodes on one PostgreSQL database share login penalties: failures counted on either
// add up against the same key, the failure that reaches the limit blocks the key for
// both, the block ends at its time and starts a new count, and a window that is over
// starts the count again.
func TestPostgresLoginPenaltiesSharedByNodes(t *testing.T) {
	url := pgTestDatabase(t)
	a, b := openNode(t, url), openNode(t, url)
	if !a.SharesLoginPenalties() {
		t.Fatal("a PostgreSQL store does not share login penalties")
	}
	const key = "ip:203.0.113.5"
	const window, block = time.Minute, 10 * time.Minute
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	count := func(s *Store, wantN int, wantBlock bool) {
		t.Helper()
		n, until, err := s.CountLoginFailure(ctx, key, now, window, 3, block)
		if err != nil {
			t.Fatal(err)
		}
		if n != wantN || until.IsZero() == wantBlock {
			t.Fatalf("failure: count %d, blocked until %v; want count %d, block %v", n, until, wantN, wantBlock)
		}
		if wantBlock && !until.Equal(now.Add(block)) {
			t.Fatalf("blocked until %v, want %v", until, now.Add(block))
		}
	}
	blocked := func(s *Store, want bool) {
		t.Helper()
		until, err := s.LoginBlockedUntil(ctx, key, now)
		if err != nil {
			t.Fatal(err)
		}
		if until.IsZero() == want {
			t.Fatalf("blocked until %v at %v, want blocked %v", until, now, want)
		}
	}

	blocked(a, false)
	count(a, 1, false)
	count(b, 2, false) // node B adds to node A's count
	blocked(b, false)
	count(a, 3, true) // the limit, reached across the nodes: blocked
	blocked(a, true)
	blocked(b, true) // node B refuses the address node A blocked
	now = now.Add(block - time.Millisecond)
	blocked(b, true)
	now = now.Add(time.Millisecond)
	blocked(a, false)
	blocked(b, false)
	// After the block the address has its failures again: a new count.
	count(b, 1, false)
	// Another key is counted apart.
	if n, _, err := a.CountLoginFailure(ctx, "account:alice@x", now, window, 3, block); err != nil || n != 1 {
		t.Fatalf("another key: count %d (%v), want 1", n, err)
	}
	// A window that is over starts again.
	now = now.Add(window)
	count(a, 1, false)
	count(a, 2, false)
}

// Failures counted at once on two nodes are all counted, and exactly one of them sets the
// block: the count is one row's atomic upsert, the block a conditional update.
func TestPostgresLoginPenaltiesConcurrent(t *testing.T) {
	url := pgTestDatabase(t)
	nodes := []*Store{openNode(t, url), openNode(t, url)}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const each = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	blocks, highest := 0, 0
	for _, s := range nodes {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					n, until, err := s.CountLoginFailure(ctx, "ip:198.51.100.1", now, time.Hour, 4*each, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					highest = max(highest, n)
					if !until.IsZero() {
						blocks++
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if highest != 4*each || blocks != 1 {
		t.Fatalf("%d failures at once on two nodes: highest count %d, %d blocks; want %d and 1", 4*each, highest, blocks, 4*each)
	}
	if until, err := nodes[1].LoginBlockedUntil(ctx, "ip:198.51.100.1", now); err != nil || until.IsZero() {
		t.Fatalf("after the limit: blocked until %v (%v), want a block", until, err)
	}
}

// Expired rows are pruned: a key whose window and block are over is forgotten, one still
// blocked is kept.
func TestPostgresLoginPenaltiesPruned(t *testing.T) {
	s := openNode(t, pgTestDatabase(t))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := s.CountLoginFailure(ctx, "ip:192.0.2.1", now, time.Minute, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, until, err := s.CountLoginFailure(ctx, "ip:192.0.2.2", now, time.Minute, 1, time.Hour); err != nil || until.IsZero() {
		t.Fatalf("block: %v (%v)", until, err)
	}
	s.prunePenalties(ctx, now.Add(2*time.Minute), time.Minute)
	var keys []string
	rows, err := s.penalties.QueryContext(ctx, `SELECT key FROM login_penalties ORDER BY key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(k))
	}
	if len(keys) != 1 || keys[0] != "ip:192.0.2.2" {
		t.Fatalf("after pruning: %q, want only the blocked key", keys)
	}
}

// On SQLite the store keeps no penalties: internal/auth's memory is the whole story.
func TestLoginPenaltiesNotSharedOnSQLite(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.SharesLoginPenalties() {
		t.Fatal("an SQLite store says it shares login penalties")
	}
	if _, _, err := s.CountLoginFailure(ctx, "ip:192.0.2.1", time.Now(), time.Minute, 1, time.Minute); !errors.Is(err, ErrPenaltiesNotShared) {
		t.Fatalf("CountLoginFailure on SQLite: %v, want ErrPenaltiesNotShared", err)
	}
}
