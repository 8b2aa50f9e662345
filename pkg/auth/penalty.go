package auth

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Login penalties (the Authenticator's answer to password guessing), in the spirit of
// Dovecot's auth penalty and Stalwart's auto-ban:
//
//   - Every failed login is counted against the client's address and against the account
//     name it tried, in a window of Penalty.Window that starts with the first failure.
//     IPv6 addresses are counted per /64, the block a single host usually controls.
//   - The answer to a failed login waits FailureDelay, doubled for every earlier failure
//     counted against the address or the account (whichever is more), up to
//     maxFailureDelay. A correct login is never delayed, so an account under attack from
//     other addresses still logs in at once from a clean one.
//   - After Penalty.MaxFailures failures in the window, the address is blocked for
//     Penalty.BlockDuration: every login from it is refused with ErrBlocked, even with
//     the right password, without the password being checked. Accounts are never
//     blocked, only slowed down: blocking an account would let anybody lock its owner out.
//   - Password checks under way count as failures to come: from one address at most
//     MaxFailures minus the failures already counted are checked at once, and a further
//     login waits (for the length of a password check, never of a failure delay) until
//     one of them is settled. Otherwise an attacker sending a password on each of many
//     connections at once would have them all checked before the first failure was
//     counted, and get as many guesses as connections instead of MaxFailures.
//   - Loopback and the trusted networks (PlaintextPolicy.Trusted) are where proxies and
//     webmail connect from, on behalf of many users: they are neither blocked nor slowed
//     down by address, only by account.
//   - Memory is bounded: at most maxPenaltyEntries addresses and as many account names are
//     remembered; expired entries are dropped first, then the oldest.

// maxFailureDelay caps the growing delay of a failed login (Dovecot's cap, 15 s); a larger
// FailureDelay is used as it is.
const maxFailureDelay = 15 * time.Second

// maxPenaltyEntries caps each of the two tables (addresses, account names).
const maxPenaltyEntries = 100_000

// Penalty configures the blocking of addresses after repeated failures. The zero value
// blocks nobody (failed logins still wait the growing FailureDelay).
type Penalty struct {
	// MaxFailures is the number of failed logins from one address within Window after
	// which the address is blocked (auth.max_failures); 0 never blocks.
	MaxFailures int
	// Window is how long failures are remembered (auth.failure_window); 0 means 10 minutes.
	Window time.Duration
	// BlockDuration is how long a blocked address stays blocked (auth.block_duration);
	// 0 means 15 minutes.
	BlockDuration time.Duration
}

// Default penalty settings (the configuration's defaults).
const (
	DefaultMaxFailures   = 10
	DefaultFailureWindow = 10 * time.Minute
	DefaultBlockDuration = 15 * time.Minute
)

// failures is one table entry: the failures counted since first, and a block.
type failures struct {
	count        int
	first, last  time.Time
	blockedUntil time.Time
}

// penalties is the Authenticator's memory of failed logins. Its zero value is ready.
type penalties struct {
	mu       sync.Mutex
	addrs    map[netip.Addr]*failures // address (IPv6: the /64's first address)
	accounts map[string]*failures     // lower-cased account name as typed
	inflight map[netip.Addr]int       // password checks under way (with MaxFailures set)
	wake     chan struct{}            // closed when a check is settled; nil when none waits
}

// penaltyKey is the address failures are counted against, and whether there is one to
// count (unix sockets, unknown peers, loopback and trusted networks have none).
func (a *Authenticator) penaltyKey(remote net.Addr) (netip.Addr, bool) {
	if remote == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return netip.Addr{}, false
	}
	addr := ap.Addr().Unmap()
	if addr.IsLoopback() {
		return netip.Addr{}, false
	}
	for _, p := range a.Plaintext.Trusted {
		if p.Contains(addr) {
			return netip.Addr{}, false
		}
	}
	if addr.Is6() {
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return addr, true
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Authenticator) window() time.Duration {
	if a.Penalty.Window > 0 {
		return a.Penalty.Window
	}
	return DefaultFailureWindow
}

// blocked reports until when addr is blocked; zero if it is not.
func (a *Authenticator) blocked(addr netip.Addr, ok bool, now time.Time) time.Time {
	if !ok {
		return time.Time{}
	}
	p := &a.penalties
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.addrs[addr]; f != nil && now.Before(f.blockedUntil) {
		return f.blockedUntil
	}
	return time.Time{}
}

// admit waits until a password check from addr may start and takes a slot for it: with
// MaxFailures set, the checks under way from one address and the failures counted against
// it in the window stay below MaxFailures. It returns until when addr is blocked (zero if
// it is not; then no slot is taken), and whether a slot was taken, which the caller gives
// back through recordFailure or release. It fails only when ctx ends while waiting.
func (a *Authenticator) admit(ctx context.Context, addr netip.Addr, hasAddr bool) (blockedUntil time.Time, slot bool, err error) {
	if !hasAddr {
		return time.Time{}, false, nil
	}
	limit := a.Penalty.MaxFailures
	p := &a.penalties
	for {
		now := a.now()
		p.mu.Lock()
		f := p.addrs[addr]
		if f != nil && now.Before(f.blockedUntil) {
			p.mu.Unlock()
			return f.blockedUntil, false, nil
		}
		if limit <= 0 {
			p.mu.Unlock()
			return time.Time{}, false, nil
		}
		counted := 0
		if f != nil && now.Sub(f.first) < a.window() {
			counted = f.count
		}
		if counted+p.inflight[addr] < limit {
			if p.inflight == nil {
				p.inflight = make(map[netip.Addr]int)
			}
			p.inflight[addr]++
			p.mu.Unlock()
			return time.Time{}, true, nil
		}
		if p.wake == nil {
			p.wake = make(chan struct{})
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return time.Time{}, false, ctx.Err()
		}
	}
}

// release gives back a slot admit took for addr, for a check that did not fail.
func (a *Authenticator) release(addr netip.Addr) {
	p := &a.penalties
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked(addr)
}

// releaseLocked gives back a slot of addr and wakes the logins waiting for one; p.mu is held.
func (p *penalties) releaseLocked(addr netip.Addr) {
	if n := p.inflight[addr]; n > 1 {
		p.inflight[addr] = n - 1
	} else {
		delete(p.inflight, addr)
	}
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
}

// recordFailure counts a failed login of account from addr and returns how long its answer
// waits, the failures it counts for (the address's or the account's, whichever is more),
// and until when the address is now blocked (zero if this failure did not block it). With
// slot, it gives back the slot admit took, in the same step as the failure is counted, so
// that no waiting login sees neither.
func (a *Authenticator) recordFailure(addr netip.Addr, hasAddr bool, slot bool, account string, now time.Time) (delay time.Duration, n int, blockedUntil time.Time) {
	p := &a.penalties
	window := a.window()
	p.mu.Lock()
	defer p.mu.Unlock()
	if slot {
		defer p.releaseLocked(addr)
	}
	if p.accounts == nil {
		p.addrs = make(map[netip.Addr]*failures)
		p.accounts = make(map[string]*failures)
	}
	n = bump(p.accounts, accountKey(account), now, window).count
	if hasAddr {
		f := bump(p.addrs, addr, now, window)
		n = max(n, f.count)
		if m := a.Penalty.MaxFailures; m > 0 && f.count >= m && !now.Before(f.blockedUntil) {
			block := a.Penalty.BlockDuration
			if block <= 0 {
				block = DefaultBlockDuration
			}
			f.blockedUntil = now.Add(block)
			blockedUntil = f.blockedUntil
			// A new block starts a new count: after it, the address gets MaxFailures again.
			f.count, f.first = 0, f.blockedUntil
		}
	}
	return failureDelay(a.FailureDelay, n), n, blockedUntil
}

// maxAccountKey bounds the memory one remembered account name costs: no address is
// longer (RFC 5321 §4.5.3.1.3), and a name typed by an attacker may be 8 KiB.
const maxAccountKey = 256

// accountKey is the name failures are counted against: lower-cased, cut to maxAccountKey.
func accountKey(account string) string {
	if len(account) > maxAccountKey {
		account = account[:maxAccountKey]
	}
	return strings.ToLower(account)
}

// failureDelay is base doubled for every failure before the nth, capped at
// maxFailureDelay (or base, if that is larger).
func failureDelay(base time.Duration, n int) time.Duration {
	if base <= 0 {
		return 0
	}
	d := base
	for i := 1; i < n && d < maxFailureDelay; i++ {
		d *= 2
	}
	return min(d, max(base, maxFailureDelay))
}

// bump counts one failure for key in m, starting a new window if the last one is over,
// and keeps m within maxPenaltyEntries.
func bump[K comparable](m map[K]*failures, key K, now time.Time, window time.Duration) *failures {
	f := m[key]
	if f == nil {
		if len(m) >= maxPenaltyEntries {
			prune(m, now, window)
		}
		f = &failures{first: now}
		m[key] = f
	}
	if now.Sub(f.first) >= window {
		f.count, f.first = 0, now
	}
	f.count++
	f.last = now
	return f
}

// prune drops the entries whose window and block are over; if that frees less than a
// tenth of the table, it also drops the entries seen least recently (not blocked ones
// first), so that a flood of new addresses costs one scan per tenth of the table.
func prune[K comparable](m map[K]*failures, now time.Time, window time.Duration) {
	for k, f := range m {
		if now.Sub(f.last) >= window && !now.Before(f.blockedUntil) {
			delete(m, k)
		}
	}
	target := maxPenaltyEntries - maxPenaltyEntries/10
	if len(m) <= target {
		return
	}
	// Not blocked before blocked, then least recently seen first.
	type aged struct {
		key     K
		last    time.Time
		blocked bool
	}
	all := make([]aged, 0, len(m))
	for k, f := range m {
		all = append(all, aged{k, f.last, now.Before(f.blockedUntil)})
	}
	slices.SortFunc(all, func(x, y aged) int {
		switch {
		case x.blocked != y.blocked && !x.blocked:
			return -1
		case x.blocked != y.blocked:
			return 1
		}
		return x.last.Compare(y.last)
	})
	for _, e := range all[:len(all)-target] {
		delete(m, e.key)
	}
}

// wait sleeps d, or until ctx ends (the session is going away).
func (a *Authenticator) wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	if a.Sleep != nil {
		a.Sleep(ctx, d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
