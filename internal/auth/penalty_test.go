package auth

import (
	"bytes"
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

	"github.com/letterbox-mail/letterbox/internal/proxyproto"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// penaltyEnv is an Authenticator on a fake clock whose delays are recorded, not slept.
type penaltyEnv struct {
	a      *Authenticator
	now    time.Time
	mu     sync.Mutex
	delays []time.Duration
	calls  int // password checks that reached the store
	logs   bytes.Buffer
}

type countingStore struct {
	e     *penaltyEnv
	inner fakeStore
}

func (c countingStore) Authenticate(ctx context.Context, address, password string) (store.Account, error) {
	c.e.calls++
	return c.inner.Authenticate(ctx, address, password)
}

func newPenaltyEnv(p Penalty, trusted ...netip.Prefix) *penaltyEnv {
	e := &penaltyEnv{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e.a = &Authenticator{
		Store:        countingStore{e, fakeStore{"alice@x": {ID: 1}, "victim@x": {ID: 2}}},
		FailureDelay: time.Second,
		Penalty:      p,
		Plaintext:    PlaintextPolicy{Trusted: trusted},
		Logger:       slog.New(slog.NewTextHandler(&e.logs, nil)),
		Now:          func() time.Time { return e.now },
		Sleep: func(_ context.Context, d time.Duration) {
			e.mu.Lock()
			e.delays = append(e.delays, d)
			e.mu.Unlock()
		},
	}
	return e
}

// login logs in from ip and returns the error and the delay it waited (0 if none). An ip
// written "via-proxy:ADDR" is ADDR as a trusted proxy names it (internal/proxyproto).
func (e *penaltyEnv) login(ip, user, pass string) (error, time.Duration) {
	e.delays = nil
	var remote net.Addr
	if named, ok := strings.CutPrefix(ip, "via-proxy:"); ok {
		remote = &proxyproto.Addr{TCPAddr: *net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(named), 40000))}
	} else if ip != "" {
		remote = net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 40000))
	}
	_, err := e.a.LoginFrom(context.Background(), store.ProtocolIMAP, remote, user, pass)
	var d time.Duration
	for _, x := range e.delays {
		d += x
	}
	return err, d
}

func TestFailureDelayGrowsPerAddress(t *testing.T) {
	e := newPenaltyEnv(Penalty{}) // no blocking
	want := []time.Duration{1, 2, 4, 8, 15, 15}
	for i, w := range want {
		// Different accounts: only the address links these failures.
		err, d := e.login("198.51.100.7", fmt.Sprintf("user%d@x", i), "wrong")
		if !errors.Is(err, ErrFailed) || d != w*time.Second {
			t.Fatalf("failure %d: %v after %v, want ErrFailed after %v", i+1, err, d, w*time.Second)
		}
	}
	// A correct login is never delayed, even from that address.
	if err, d := e.login("198.51.100.7", "alice@x", "right"); err != nil || d != 0 {
		t.Fatalf("correct login: %v after %v, want success without delay", err, d)
	}
	// Another address starts from the base delay.
	if _, d := e.login("198.51.100.8", "someone@x", "wrong"); d != time.Second {
		t.Fatalf("fresh address waited %v, want 1s", d)
	}
	// Once the window is over the address starts again from the base delay.
	e.now = e.now.Add(DefaultFailureWindow)
	if _, d := e.login("198.51.100.7", "again@x", "wrong"); d != time.Second {
		t.Fatalf("after the window: waited %v, want 1s", d)
	}
}

func TestBlockAfterRepeatedFailures(t *testing.T) {
	e := newPenaltyEnv(Penalty{MaxFailures: 3, Window: time.Minute, BlockDuration: 10 * time.Minute})
	const attacker = "203.0.113.5"
	for i := range 3 {
		if err, _ := e.login(attacker, "alice@x", "guess"+fmt.Sprint(i)); !errors.Is(err, ErrFailed) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	// Blocked: even the right password is refused, and the store is not asked.
	calls := e.calls
	if err, _ := e.login(attacker, "alice@x", "right"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("blocked address with the right password: %v, want ErrBlocked", err)
	}
	if e.calls != calls {
		t.Fatal("a blocked address still had its password checked")
	}
	// The account itself is not blocked: its owner logs in from elsewhere without delay.
	if err, d := e.login("192.0.2.44", "alice@x", "right"); err != nil || d != 0 {
		t.Fatalf("owner from a clean address: %v after %v", err, d)
	}
	// Still blocked just before the end, free after it.
	e.now = e.now.Add(10*time.Minute - time.Second)
	if err, _ := e.login(attacker, "alice@x", "right"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("before the block ends: %v", err)
	}
	e.now = e.now.Add(time.Second)
	if err, _ := e.login(attacker, "alice@x", "right"); err != nil {
		t.Fatalf("after the block: %v", err)
	}

	logs := e.logs.String()
	for _, want := range []string{"address blocked", "ip=" + attacker, "account=alice@x"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{"guess0", "guess1", "guess2", "right"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a password (%q) reached the log:\n%s", secret, logs)
		}
	}
}

func TestAccountUnderDistributedAttack(t *testing.T) {
	e := newPenaltyEnv(Penalty{MaxFailures: 3})
	var last time.Duration
	for i := range 20 {
		// Each address fails once: none is blocked, but the account's failures add up.
		ip := fmt.Sprintf("198.51.100.%d", i+1)
		err, d := e.login(ip, "victim@x", "guess")
		if !errors.Is(err, ErrFailed) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		last = d
	}
	if last != maxFailureDelay {
		t.Fatalf("20th failure against one account waited %v, want %v", last, maxFailureDelay)
	}
	// The owner, from a clean address, with the right password: at once.
	if err, d := e.login("192.0.2.1", "victim@x", "right"); err != nil || d != 0 {
		t.Fatalf("owner: %v after %v, want success without delay", err, d)
	}
	// A mistyped password of the owner does wait: the account is under attack.
	if _, d := e.login("192.0.2.1", "VICTIM@x", "typo"); d != maxFailureDelay {
		t.Fatalf("owner's typo waited %v, want %v (names are counted case-insensitively)", d, maxFailureDelay)
	}
}

func TestTrustedAddressesAreNotPenalised(t *testing.T) {
	trusted := netip.MustParsePrefix("10.0.0.0/8")
	e := newPenaltyEnv(Penalty{MaxFailures: 2}, trusted)
	// Processes on this host (loopback, not named by a proxy), a trusted network (also when
	// a proxy names it), no address at all.
	for _, ip := range []string{"127.0.0.1", "::1", "10.1.2.3", "via-proxy:10.1.2.4", ""} {
		for i := range 5 {
			err, d := e.login(ip, fmt.Sprintf("u%d-%s@x", i, ip), "wrong")
			if !errors.Is(err, ErrFailed) || d != time.Second {
				t.Fatalf("%q failure %d: %v after %v, want ErrFailed after the base delay", ip, i+1, err, d)
			}
		}
		if err, _ := e.login(ip, "alice@x", "right"); err != nil {
			t.Fatalf("%q was blocked: %v", ip, err)
		}
	}
}

// TestLoopbackNamedByAProxyIsPenalised: a loopback address that a trusted proxy names (a
// client on this host behind it, as in cmd/letterbox's TestHAProxy) is slowed down and
// blocked like any other, by its own address: 127.0.0.2 blocked does not block 127.0.0.3
// behind the same proxy, nor a process connecting from 127.0.0.2 directly.
func TestLoopbackNamedByAProxyIsPenalised(t *testing.T) {
	e := newPenaltyEnv(Penalty{MaxFailures: 2})
	for _, ip := range []string{"via-proxy:127.0.0.2", "via-proxy:::1"} {
		if _, d := e.login(ip, "a-"+ip+"@x", "wrong"); d != time.Second {
			t.Fatalf("%s: first failure waited %v, want the base delay", ip, d)
		}
		if _, d := e.login(ip, "b-"+ip+"@x", "wrong"); d != 2*time.Second {
			t.Fatalf("%s: second failure waited %v, want it doubled by the address's count", ip, d)
		}
		if err, _ := e.login(ip, "alice@x", "right"); !errors.Is(err, ErrBlocked) {
			t.Fatalf("%s after two failures: %v, want ErrBlocked", ip, err)
		}
	}
	for _, ip := range []string{"via-proxy:127.0.0.3", "127.0.0.2", "::1"} {
		if err, d := e.login(ip, "alice@x", "right"); err != nil || d != 0 {
			t.Fatalf("%s while via-proxy:127.0.0.2 is blocked: %v after %v, want in at once", ip, err, d)
		}
	}
}

func TestIPv6CountedPerSlash64(t *testing.T) {
	e := newPenaltyEnv(Penalty{MaxFailures: 2})
	e.login("2001:db8::1", "a@x", "wrong")
	e.login("2001:db8::2", "b@x", "wrong") // same /64: blocks it
	if err, _ := e.login("2001:db8::ffff", "alice@x", "right"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("same /64: %v, want ErrBlocked", err)
	}
	if err, _ := e.login("2001:db8:0:1::1", "alice@x", "right"); err != nil {
		t.Fatalf("next /64: %v", err)
	}
	// An IPv4-mapped address is the IPv4 address.
	e.login("::ffff:198.51.100.9", "a@x", "wrong")
	e.login("198.51.100.9", "b@x", "wrong")
	if err, _ := e.login("198.51.100.9", "alice@x", "right"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("mapped and plain IPv4: %v, want ErrBlocked", err)
	}
}

func TestPenaltyMemoryIsBounded(t *testing.T) {
	e := newPenaltyEnv(Penalty{MaxFailures: 2})
	// One address blocked first (so seen longest ago), then a flood of new ones that
	// fail once each.
	blocked := netip.MustParseAddr("192.0.2.1")
	e.a.recordFailure(blocked, true, false, "a@x", 0, e.now)
	e.a.recordFailure(blocked, true, false, "a@x", 0, e.now)
	for i := range maxPenaltyEntries + 5000 {
		e.now = e.now.Add(time.Millisecond)
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		e.a.recordFailure(addr, true, false, fmt.Sprintf("user%d", i), 0, e.now)
	}
	p := &e.a.penalties
	if len(p.addrs) > maxPenaltyEntries || len(p.accounts) > maxPenaltyEntries {
		t.Fatalf("tables grew to %d addresses, %d accounts; cap %d", len(p.addrs), len(p.accounts), maxPenaltyEntries)
	}
	if until := e.a.blocked(blocked, true, e.now); until.IsZero() {
		t.Fatal("the flood evicted a blocked address")
	}
}

func TestFailureDelayTable(t *testing.T) {
	for _, tt := range []struct {
		base time.Duration
		n    int
		want time.Duration
	}{
		{0, 5, 0},
		{2 * time.Second, 0, 2 * time.Second},
		{2 * time.Second, 1, 2 * time.Second},
		{2 * time.Second, 3, 8 * time.Second},
		{2 * time.Second, 4, 15 * time.Second},
		{2 * time.Second, 1000, 15 * time.Second},
		{20 * time.Second, 3, 20 * time.Second},
	} {
		if got := failureDelay(tt.base, tt.n); got != tt.want {
			t.Errorf("failureDelay(%v, %d) = %v, want %v", tt.base, tt.n, got, tt.want)
		}
	}
}

// gatedStore counts password checks and holds each guess (a password starting with
// "guess") until gate is closed.
type gatedStore struct {
	mu    sync.Mutex
	calls int
	gate  chan struct{}
}

func (g *gatedStore) Authenticate(ctx context.Context, address, password string) (store.Account, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	if strings.HasPrefix(password, "guess") {
		<-g.gate
	}
	return fakeStore{"alice@x": {ID: 1}}.Authenticate(ctx, address, password)
}

func (g *gatedStore) checks() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// TestConcurrentGuessesDoNotOutrunTheBlock: an attacker who opens many connections and
// sends a password on each at once still gets only auth.max_failures passwords checked
// before the block; the others wait for the outcome of those in flight and are then
// refused without being checked. Meanwhile a clean address logs in.
func TestConcurrentGuessesDoNotOutrunTheBlock(t *testing.T) {
	g := &gatedStore{gate: make(chan struct{})}
	a := &Authenticator{Store: g, Penalty: Penalty{MaxFailures: 3}}
	attacker := net.TCPAddrFromAddrPort(netip.MustParseAddrPort("203.0.113.9:40000"))
	login := func(remote net.Addr, password string) error {
		_, err := a.LoginFrom(context.Background(), store.ProtocolIMAP, remote, "alice@x", password)
		return err
	}
	const attempts = 20
	errs := make(chan error, attempts)
	for i := range attempts {
		go func() { errs <- login(attacker, fmt.Sprint("guess", i)) }()
	}
	for i := 0; g.checks() < 3; i++ { // until three guesses are being checked
		if i > 100000 {
			t.Fatal("three password checks never started")
		}
		time.Sleep(100 * time.Microsecond)
	}
	// While they are, the owner logs in from a clean address (without waiting for them).
	if err := login(net.TCPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.10:40000")), "right"); err != nil {
		t.Fatalf("the owner from a clean address: %v", err)
	}
	close(g.gate)
	var failed, blocked int
	for range attempts {
		switch err := <-errs; {
		case errors.Is(err, ErrFailed):
			failed++
		case errors.Is(err, ErrBlocked):
			blocked++
		default:
			t.Errorf("unexpected %v", err)
		}
	}
	if n := g.checks() - 1; n != 3 || failed != 3 || blocked != attempts-3 {
		t.Errorf("%d guesses checked, %d failed, %d blocked; want 3 checked and failed, %d blocked", n, failed, blocked, attempts-3)
	}
	if p := &a.penalties; len(p.inflight) != 0 || p.wake != nil {
		t.Errorf("after every login settled: in flight %v, waiters' channel %v", p.inflight, p.wake)
	}

	// Many correct logins from one address at once all succeed, and so do correct logins
	// after failures below the limit.
	b := &Authenticator{Store: fakeStore{"alice@x": {ID: 1}}, Penalty: Penalty{MaxFailures: 3}}
	clean := net.TCPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.11:40000"))
	for range 2 {
		b.LoginFrom(context.Background(), store.ProtocolIMAP, clean, "alice@x", "wrong")
	}
	for range attempts {
		go func() {
			_, err := b.LoginFrom(context.Background(), store.ProtocolIMAP, clean, "alice@x", "right")
			errs <- err
		}()
	}
	for range attempts {
		if err := <-errs; err != nil {
			t.Errorf("correct login: %v", err)
		}
	}
}

// TestWaitingForASlotEndsWithTheSession: a login waiting behind checks in flight from its
// address gives up when its session ends, as a temporary failure.
func TestWaitingForASlotEndsWithTheSession(t *testing.T) {
	g := &gatedStore{gate: make(chan struct{})}
	defer close(g.gate)
	a := &Authenticator{Store: g, Penalty: Penalty{MaxFailures: 1}}
	remote := net.TCPAddrFromAddrPort(netip.MustParseAddrPort("203.0.113.9:40000"))
	go a.LoginFrom(context.Background(), store.ProtocolIMAP, remote, "alice@x", "guess")
	for i := 0; g.checks() < 1; i++ {
		if i > 100000 {
			t.Fatal("the first check never started")
		}
		time.Sleep(100 * time.Microsecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.LoginFrom(ctx, store.ProtocolIMAP, remote, "alice@x", "right"); !errors.Is(err, ErrTemporary) {
		t.Fatalf("waiting login whose session ended: %v, want ErrTemporary", err)
	}
	if g.checks() != 1 {
		t.Error("the waiting login had its password checked")
	}
}

// TestRepeatedAttemptIsNotCountedAgain: a client retrying the same stale password (a
// phone with an old password, polling) neither blocks its address nor grows the delay;
// distinct guesses from that address still do. Repeats are recognised per address, or per
// account where there is no address, and forgotten with the window.
func TestRepeatedAttemptIsNotCountedAgain(t *testing.T) {
	e := newPenaltyEnv(Penalty{MaxFailures: 3, Window: time.Hour})
	const home = "198.51.100.20"
	for i := range 50 {
		e.now = e.now.Add(time.Minute / 2)
		err, d := e.login(home, "alice@x", "last year's password")
		if !errors.Is(err, ErrFailed) || d != time.Second {
			t.Fatalf("stale password, attempt %d: %v after %v, want ErrFailed after the base delay", i+1, err, d)
		}
	}
	if err, d := e.login(home, "alice@x", "right"); err != nil || d != 0 {
		t.Fatalf("the right password from that address: %v after %v", err, d)
	}
	if !strings.Contains(e.logs.String(), "repeat=true") {
		t.Error("repeats are not marked in the log")
	}
	// Other names with the same password, or other passwords, are new attempts: two more
	// reach the limit of three.
	if err, _ := e.login(home, "ALICE@x", "last year's password"); !errors.Is(err, ErrFailed) {
		t.Fatalf("same attempt, name in capitals: %v", err) // a repeat (names fold case)
	}
	e.login(home, "bob@x", "last year's password")
	if err, d := e.login(home, "alice@x", "another guess"); !errors.Is(err, ErrFailed) || d != 4*time.Second {
		t.Fatalf("third distinct failure: %v after %v, want ErrFailed after 4s", err, d)
	}
	if err, _ := e.login(home, "alice@x", "right"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("after three distinct failures: %v, want ErrBlocked", err)
	}

	// An attacker cycling through more passwords than are remembered gets each counted.
	f := newPenaltyEnv(Penalty{MaxFailures: 2 * (recentAttempts + 1)})
	for range 2 {
		for i := range recentAttempts + 1 {
			f.login("203.0.113.77", "alice@x", fmt.Sprint("cycle", i))
		}
	}
	if err, _ := f.login("203.0.113.77", "alice@x", "right"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("%d attempts cycling through %d passwords: %v, want ErrBlocked", 2*(recentAttempts+1), recentAttempts+1, err)
	}

	// Without an address (a trusted network), repeats are recognised per account; after
	// the window a repeat is counted afresh.
	g := newPenaltyEnv(Penalty{MaxFailures: 3, Window: time.Minute}, netip.MustParsePrefix("10.0.0.0/8"))
	for range 5 {
		if _, d := g.login("10.0.0.1", "alice@x", "stale"); d != time.Second {
			t.Fatalf("stale password from a trusted network waited %v, want the base delay", d)
		}
	}
	g.login("10.0.0.1", "alice@x", "other")
	if _, d := g.login("10.0.0.1", "alice@x", "third"); d != 4*time.Second {
		t.Fatalf("third distinct failure from a trusted network waited %v, want 4s", d)
	}
	g.now = g.now.Add(time.Minute)
	if _, d := g.login("10.0.0.1", "alice@x", "stale"); d != time.Second {
		t.Fatalf("after the window: waited %v, want the base delay", d)
	}
}
