package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
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
//   - A failure that repeats one of the latest distinct failed attempts from the same
//     address (or, without one, against the same account), with the same account name and
//     password, waits the current delay but is not counted again: a mail client retrying
//     a stale password every few minutes tells nobody anything new, and counting it would
//     let one forgotten phone block everybody behind its address (Dovecot's auth penalty
//     does not count such repeats either). Only a fingerprint is kept, an HMAC under a
//     key that exists in memory only, never the password.
//   - Password checks under way count as failures to come: from one address at most
//     MaxFailures minus the failures already counted are checked at once, and a further
//     login waits (for the length of a password check, never of a failure delay) until
//     one of them is settled. Otherwise an attacker sending a password on each of many
//     connections at once would have them all checked before the first failure was
//     counted, and get as many guesses as connections instead of MaxFailures.
//   - The trusted networks (PlaintextPolicy.Trusted) are where webmail, or a proxy that
//     cannot name its clients, connects from on behalf of many users: they are neither
//     blocked nor slowed down by address, only by account. So is a process on this host
//     connecting over loopback (a webmail, a test suite; an attacker with a shell here is
//     outside the threat model, docs/security.md). A client that a trusted proxy names
//     (internal/proxyproto) is counted by the address it is named by, loopback or not: a proxy
//     on this host is no reason to exempt its clients, now that they are known.
//   - Memory is bounded: at most maxPenaltyEntries addresses and as many account names are
//     remembered; expired entries are dropped first, then the oldest.
//   - Across a cluster (Authenticator.Shared: several nodes over one PostgreSQL store),
//     every failure counted is also counted in the shared table, against the address and
//     against the account, and the delay grows with the cluster's counts; the failure that
//     brings the address's shared count to MaxFailures blocks it there, and every node looks
//     a block up there before checking a password (and remembers it, so a blocked address
//     costs one lookup per node). So failures spread over the nodes add up, and a block
//     holds on every node. What stays per node: the fingerprints of repeated attempts (a
//     stale password retried on two nodes counts once on each), and the bound on password
//     checks under way from one address, which counts the cluster's failures known when a
//     check starts but only this node's checks under way. Without an answer from the
//     shared table (a lost connection), a node goes on with its own memory, and says so.

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

// recentAttempts is how many distinct failed attempts an entry remembers as repeats.
const recentAttempts = 8

// failures is one table entry: the failures counted since first, a block, and the
// fingerprints of the latest distinct failed attempts counted.
type failures struct {
	count        int
	first, last  time.Time
	blockedUntil time.Time
	recent       [recentAttempts]uint64
	nrecent      int // fingerprints remembered so far (the latest at (nrecent-1)%recentAttempts)
}

// seen reports whether fp is one of the failed attempts f remembers.
func (f *failures) seen(fp uint64) bool {
	for i := range min(f.nrecent, recentAttempts) {
		if f.recent[i] == fp {
			return true
		}
	}
	return false
}

// remember adds fp to the attempts f remembers, forgetting the oldest.
func (f *failures) remember(fp uint64) {
	f.recent[f.nrecent%recentAttempts] = fp
	f.nrecent++
}

// restart starts a new count at first, forgetting the attempts counted before.
func (f *failures) restart(first time.Time) {
	f.count, f.first, f.nrecent = 0, first, 0
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
// count (unix sockets, unknown peers, trusted networks and local processes have none).
func (a *Authenticator) penaltyKey(remote net.Addr) (netip.Addr, bool) {
	if remote == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return netip.Addr{}, false
	}
	addr := ap.Addr().Unmap()
	if _, named := remote.(proxied); addr.IsLoopback() && !named {
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

// proxied is implemented by an address that a trusted proxy named (internal/proxyproto.Addr).
type proxied interface{ Proxy() net.Addr }

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
	if a.Shared != nil {
		now := a.now()
		until, err := a.Shared.LoginBlockedUntil(ctx, addrKey(addr), now)
		if err != nil {
			a.sharedTrouble("look a block up", err)
		} else if now.Before(until) {
			a.noteShared(addr, 0, until)
			return until, false, nil
		}
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
// until when the address is now blocked (zero if this failure did not block it), and
// whether it was a repeat of a failure counted already (fp is the attempt's fingerprint,
// 0 for none; a repeat is not counted again). With slot, it gives back the slot admit
// took, in the same step as the failure is counted, so that no waiting login sees neither.
func (a *Authenticator) recordFailure(addr netip.Addr, hasAddr bool, slot bool, account string, fp uint64, now time.Time) (delay time.Duration, n int, blockedUntil time.Time, repeat bool) {
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
	live := func(f *failures) bool { return f != nil && now.Sub(f.first) < window }
	acctKey := accountKey(account)
	// Where repeats are recognised: the address's entry, or the account's without one.
	judge := p.accounts[acctKey]
	if hasAddr {
		judge = p.addrs[addr]
	}
	if fp != 0 && live(judge) && judge.seen(fp) {
		if f := p.accounts[acctKey]; live(f) {
			n = f.count
		}
		if f := p.addrs[addr]; hasAddr && live(f) {
			n = max(n, f.count)
		}
		judge.last = now
		return failureDelay(a.FailureDelay, n), n, time.Time{}, true
	}
	af := bump(p.accounts, acctKey, now, window)
	n = af.count
	if fp != 0 {
		af.remember(fp)
	}
	if hasAddr {
		f := bump(p.addrs, addr, now, window)
		if fp != 0 {
			f.remember(fp)
		}
		n = max(n, f.count)
		if m := a.Penalty.MaxFailures; m > 0 && f.count >= m && !now.Before(f.blockedUntil) {
			f.blockedUntil = now.Add(a.blockDuration())
			blockedUntil = f.blockedUntil
			// A new block starts a new count: after it, the address gets MaxFailures again.
			f.restart(f.blockedUntil)
		}
	}
	return failureDelay(a.FailureDelay, n), n, blockedUntil, false
}

func (a *Authenticator) blockDuration() time.Duration {
	if a.Penalty.BlockDuration > 0 {
		return a.Penalty.BlockDuration
	}
	return DefaultBlockDuration
}

// SharedPenalties is where the nodes of a cluster count failed logins and keep the blocks
// of addresses: store.Store on PostgreSQL (internal/store/loginpenalty.go). Keys are "ip:ADDR" and
// "account:NAME" (lower-cased as typed); see the store for the counting.
type SharedPenalties interface {
	// LoginBlockedUntil returns until when key is blocked, or the zero time.
	LoginBlockedUntil(ctx context.Context, key string, now time.Time) (time.Time, error)
	// CountLoginFailure counts a failure against key and returns the failures counted in
	// its window, and until when key is blocked if this failure blocked it (maxFailures
	// 0 never blocks).
	CountLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration, maxFailures int, block time.Duration) (count int, blockedUntil time.Time, err error)
}

func addrKey(addr netip.Addr) string       { return "ip:" + addr.String() }
func accountPenaltyKey(name string) string { return "account:" + accountKey(name) }

// shareFailure counts a failure recordFailure counted (not a repeat) in the shared table,
// against the address (if there is one) and the account, and returns the delay, count
// and new block of the failure with the cluster's counts: the larger count, and the block
// set here or there. The address's shared count and block are remembered locally, so
// that admit's bound and block see them.
func (a *Authenticator) shareFailure(ctx context.Context, addr netip.Addr, hasAddr bool, account string, now time.Time, n int, blockedUntil time.Time) (time.Duration, int, time.Time) {
	window := a.window()
	if hasAddr {
		c, until, err := a.Shared.CountLoginFailure(ctx, addrKey(addr), now, window, a.Penalty.MaxFailures, a.blockDuration())
		if err != nil {
			a.sharedTrouble("count a failed login", err)
		} else {
			n = max(n, c)
			a.noteShared(addr, c, until)
			if until.After(blockedUntil) {
				blockedUntil = until
			}
		}
	}
	if c, _, err := a.Shared.CountLoginFailure(ctx, accountPenaltyKey(account), now, window, 0, 0); err != nil {
		a.sharedTrouble("count a failed login", err)
	} else {
		n = max(n, c)
	}
	return failureDelay(a.FailureDelay, n), n, blockedUntil
}

// noteShared remembers in addr's local entry what the shared table says: count failures
// in the window (if more than counted here) and a block until blockedUntil (if any),
// which starts a new count as a local block does.
func (a *Authenticator) noteShared(addr netip.Addr, count int, blockedUntil time.Time) {
	p := &a.penalties
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.addrs == nil {
		p.addrs = make(map[netip.Addr]*failures)
		p.accounts = make(map[string]*failures)
	}
	now := a.now()
	f := p.addrs[addr]
	if f == nil {
		if len(p.addrs) >= maxPenaltyEntries {
			prune(p.addrs, now, a.window())
		}
		f = &failures{first: now, last: now}
		p.addrs[addr] = f
	}
	if now.Sub(f.first) >= a.window() {
		f.restart(now)
	}
	f.count = max(f.count, count)
	if blockedUntil.After(f.blockedUntil) {
		f.blockedUntil = blockedUntil
		f.restart(blockedUntil)
	}
}

// sharedTrouble logs a failure of the shared table; the node goes on with its own memory.
func (a *Authenticator) sharedTrouble(what string, err error) {
	if a.Logger != nil {
		a.Logger.Warn("auth: cluster-wide login penalties: cannot "+what+"; this node goes on with its own", "err", err)
	}
}

// fingerprint identifies a login attempt (account name and password) among the failures
// remembered, without keeping anything from which the password could be recovered: an
// HMAC-SHA256 under a random key made once per Authenticator, cut to 64 bits.
func (a *Authenticator) fingerprint(account, password string) uint64 {
	a.fpKeyOnce.Do(func() {
		a.fpKey = make([]byte, 32)
		if _, err := rand.Read(a.fpKey); err != nil {
			a.fpKey = nil // no fingerprints: every failure is counted
		}
	})
	if a.fpKey == nil {
		return 0
	}
	h := hmac.New(sha256.New, a.fpKey)
	h.Write([]byte(accountKey(account)))
	h.Write([]byte{0})
	h.Write([]byte(password))
	return binary.BigEndian.Uint64(h.Sum(nil)) | 1 // never 0, which means none
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
		f.restart(now)
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
