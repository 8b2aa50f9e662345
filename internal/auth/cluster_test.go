package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// memShared is a shared penalty table in memory, counting as internal/store/loginpenalty.go does,
// for tests of two Authenticators (two nodes) that share it. down makes it fail.
type memShared struct {
	mu   sync.Mutex
	rows map[string]*memRow
	down bool
}

type memRow struct {
	count        int
	first, until time.Time
}

var errDown = errors.New("shared table unreachable")

func (m *memShared) LoginBlockedUntil(_ context.Context, key string, now time.Time) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return time.Time{}, errDown
	}
	if r := m.rows[key]; r != nil && now.Before(r.until) {
		return r.until, nil
	}
	return time.Time{}, nil
}

func (m *memShared) CountLoginFailure(_ context.Context, key string, now time.Time, window time.Duration, maxFailures int, block time.Duration) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return 0, time.Time{}, errDown
	}
	if m.rows == nil {
		m.rows = map[string]*memRow{}
	}
	r := m.rows[key]
	if r == nil {
		r = &memRow{first: now}
		m.rows[key] = r
	}
	if now.Sub(r.first) >= window {
		r.count, r.first = 0, now
	}
	r.count++
	n := r.count
	if maxFailures > 0 && n >= maxFailures && !now.Before(r.until) {
		r.until = now.Add(block)
		r.count, r.first = 0, r.until
		return n, r.until, nil
	}
	return n, time.Time{}, nil
}

// Two nodes sharing one table: the failures from one address on either node add up to a
// block that both enforce, also against the right password; the delays grow with the
// cluster's count; the account's failures on both nodes add up too.
func TestPenaltiesSharedByTwoNodes(t *testing.T) {
	shared := &memShared{}
	p := Penalty{MaxFailures: 4, Window: time.Minute, BlockDuration: 10 * time.Minute}
	a, b := newPenaltyEnv(p), newPenaltyEnv(p)
	a.a.Shared, b.a.Shared = shared, shared
	const attacker = "203.0.113.5"
	// Alternating nodes; the delay doubles with the cluster's failures, not each node's.
	for i, w := range []time.Duration{1, 2, 4} {
		e := []*penaltyEnv{a, b}[i%2]
		err, d := e.login(attacker, fmt.Sprintf("user%d@x", i), "wrong")
		if !errors.Is(err, ErrFailed) || d != w*time.Second {
			t.Fatalf("failure %d on node %c: %v after %v, want ErrFailed after %v", i+1, "ab"[i%2], err, d, w*time.Second)
		}
	}
	// The fourth, on node B (its second of its own): the block, for both nodes.
	if err, _ := b.login(attacker, "user3@x", "wrong"); !errors.Is(err, ErrFailed) {
		t.Fatalf("fourth failure: %v", err)
	}
	for name, e := range map[string]*penaltyEnv{"a": a, "b": b} {
		calls := e.calls
		if err, _ := e.login(attacker, "alice@x", "right"); !errors.Is(err, ErrBlocked) {
			t.Fatalf("node %s, right password from the blocked address: %v, want ErrBlocked", name, err)
		}
		if e.calls != calls {
			t.Fatalf("node %s checked the password of a blocked address", name)
		}
	}
	if !strings.Contains(b.logs.String(), "address blocked after repeated login failures") {
		t.Errorf("node B, whose failure set the block, did not log it:\n%s", b.logs.String())
	}
	// Other addresses are not blocked, and the block ends on both nodes at its time.
	if err, d := a.login("192.0.2.44", "alice@x", "right"); err != nil || d != 0 {
		t.Fatalf("a clean address: %v after %v", err, d)
	}
	a.now = a.now.Add(10 * time.Minute)
	b.now = a.now
	for name, e := range map[string]*penaltyEnv{"a": a, "b": b} {
		if err, _ := e.login(attacker, "alice@x", "right"); err != nil {
			t.Fatalf("node %s after the block: %v", name, err)
		}
	}

	// An account attacked from two addresses through two nodes: its delays add up.
	if _, d := a.login("198.51.100.1", "victim@x", "w1"); d != time.Second {
		t.Fatalf("first failure against the account: waited %v, want 1s", d)
	}
	if _, d := b.login("198.51.100.2", "victim@x", "w2"); d != 2*time.Second {
		t.Fatalf("second failure against the account, another node and address: waited %v, want 2s", d)
	}
}

// A node that cannot reach the shared table goes on with its own memory: logins still
// work, failures are still counted and blocked locally, and it says so in the log.
func TestSharedPenaltiesUnreachable(t *testing.T) {
	shared := &memShared{down: true}
	e := newPenaltyEnv(Penalty{MaxFailures: 2, Window: time.Minute, BlockDuration: time.Minute})
	e.a.Shared = shared
	if err, _ := e.login("203.0.113.9", "alice@x", "right"); err != nil {
		t.Fatalf("right password with the shared table down: %v", err)
	}
	for range 2 {
		if err, _ := e.login("203.0.113.9", "alice@x", "wrong"+fmt.Sprint(e.calls)); !errors.Is(err, ErrFailed) {
			t.Fatalf("failure: %v", err)
		}
	}
	if err, _ := e.login("203.0.113.9", "alice@x", "right"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("after MaxFailures with the shared table down: %v, want the local block", err)
	}
	if !strings.Contains(e.logs.String(), "cluster-wide login penalties") {
		t.Errorf("the trouble with the shared table is not logged:\n%s", e.logs.String())
	}
}

// Two nodes over one PostgreSQL store (two store handles on one database): failures split
// between them block the address on both. Runs under LETTERBOX_TEST_STORE=postgres with a
// server (scripts/pg-test-cluster); skipped otherwise.
func TestPostgresNodesShareABlock(t *testing.T) {
	if !storetest.OnPostgres() {
		t.Skip("PostgreSQL only: LETTERBOX_TEST_STORE=postgres scripts/pg-test-cluster go test ./internal/auth")
	}
	url := storetest.Database(t)
	node := func() *Authenticator {
		st, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler), URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if !st.SharesLoginPenalties() {
			t.Fatal("a PostgreSQL store does not share login penalties")
		}
		return &Authenticator{Store: st, Shared: st, Penalty: Penalty{MaxFailures: 3},
			Sleep: func(context.Context, time.Duration) {}}
	}
	a, b := node(), node()
	ctx := context.Background()
	if _, err := a.Store.(*store.Store).CreateAccount(ctx, store.NewAccount{Address: "alice@example.test", Password: "right"}); err != nil {
		t.Fatal(err)
	}
	remote := net.TCPAddrFromAddrPort(netip.MustParseAddrPort("203.0.113.7:4000"))
	for i, n := range []*Authenticator{a, b, a} {
		if _, err := n.LoginFrom(ctx, store.ProtocolIMAP, remote, "alice@example.test", fmt.Sprint("guess", i)); !errors.Is(err, ErrFailed) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	for name, n := range map[string]*Authenticator{"a": a, "b": b} {
		if _, err := n.LoginFrom(ctx, store.ProtocolIMAP, remote, "alice@example.test", "right"); !errors.Is(err, ErrBlocked) {
			t.Fatalf("node %s, right password from the blocked address: %v, want ErrBlocked", name, err)
		}
	}
	other := net.TCPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.8:4000"))
	if _, err := b.LoginFrom(ctx, store.ProtocolIMAP, other, "alice@example.test", "right"); err != nil {
		t.Fatalf("another address on node b: %v", err)
	}
}
