// Package auth decides who may log in, and how, for every protocol Letterbox serves.
//
// Implementation notes:
//
//   - Passwords are checked only by the store (argon2id/bcrypt hashes); this package never
//     sees a hash and never logs a password.
//   - Plaintext mechanisms (IMAP LOGIN, POP3 USER/PASS, SASL PLAIN and LOGIN) are refused on
//     a connection that is neither TLS nor from loopback or a trusted network, unless the
//     configuration allows them everywhere (RFC 2595 §2.3, RFC 8314). The address is the
//     client's: behind a proxy that sends the PROXY protocol header (internal/proxyproto) it
//     is the one the header names, so a proxy on loopback does not make its remote
//     clients "loopback". Loopback itself keeps the exemption: credentials that never
//     leave this host cannot be overheard on a network.
//   - A failed login costs the client a delay before the answer, growing with the failures
//     from its address and against the account, and repeated failures block the address
//     for a while (penalty.go); a correct login from an address that is not blocked is
//     never delayed by a failure delay (it may wait for password checks from its own
//     address that are under way, see penalty.go). Failures are logged (address, account, never the password).
package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// Errors Login returns; protocols map them to their own words ([AUTH], AUTHENTICATIONFAILED…).
var (
	ErrFailed             = errors.New("auth: invalid credentials")
	ErrProtocolNotAllowed = errors.New("auth: protocol not allowed for this account")
	ErrDisabled           = errors.New("auth: account disabled")
	ErrTemporary          = errors.New("auth: temporary failure")
	// ErrBlocked refuses every login from an address blocked after repeated failures,
	// whatever the password; the protocols answer it as a temporary failure.
	ErrBlocked = errors.New("auth: too many failed logins from this address, try again later")
)

// AccountStore is what Authenticator needs of the store.
type AccountStore interface {
	Authenticate(ctx context.Context, address, password string) (store.Account, error)
}

// Authenticator checks credentials for one protocol family. It is safe for concurrent use;
// its fields are set before the first login and not changed afterwards.
type Authenticator struct {
	Store AccountStore
	// FailureDelay is how long a failed login waits before it is answered; it doubles with
	// every earlier failure from the same address or against the same account, up to 15 s.
	FailureDelay time.Duration
	// Penalty says when an address is blocked after repeated failures.
	Penalty Penalty
	// Shared is where the nodes of a cluster count failed logins and keep address blocks
	// (the store on PostgreSQL); nil keeps them in this process only (penalty.go).
	Shared SharedPenalties
	// Plaintext says where plaintext mechanisms are allowed. Its trusted networks are
	// also exempt from per-address penalties.
	Plaintext PlaintextPolicy
	// Logger receives a warning for each failed login and each block; nil logs nothing.
	Logger *slog.Logger

	// Now and Sleep replace the clock and the delay in tests; nil means the real ones.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration)

	penalties penalties
	fpKeyOnce sync.Once
	fpKey     []byte // fingerprints of failed attempts (penalty.go)
}

// Login checks address and password for protocol (store.ProtocolIMAP, store.ProtocolPOP3)
// from an unknown client: only per-account penalties apply. Protocols use LoginFrom.
func (a *Authenticator) Login(ctx context.Context, protocol, address, password string) (store.Account, error) {
	return a.LoginFrom(ctx, protocol, nil, address, password)
}

// LoginFrom checks address and password for protocol from the client at remote (a
// *net.TCPAddr, or nil/a unix address when unknown). A client whose address is blocked
// gets ErrBlocked at once, without the password being checked; a failed login is answered
// after the growing delay (see penalty.go).
func (a *Authenticator) LoginFrom(ctx context.Context, protocol string, remote net.Addr, address, password string) (store.Account, error) {
	ip, hasIP := a.penaltyKey(remote)
	until, slot, err := a.admit(ctx, ip, hasIP)
	if err != nil {
		return store.Account{}, fmt.Errorf("%w: %w", ErrTemporary, err)
	}
	if !until.IsZero() {
		a.warn("login refused: address blocked", remote, address, protocol,
			"blocked_for", until.Sub(a.now()).Round(time.Second))
		a.wait(ctx, a.FailureDelay)
		return store.Account{}, ErrBlocked
	}
	if slot {
		defer func() {
			if slot { // not given back by a failure (success, a store error, a panic)
				a.release(ip)
			}
		}()
	}
	fail := func(reason string) {
		s := slot
		slot = false
		a.fail(ctx, remote, ip, hasIP, s, address, a.fingerprint(address, password), protocol, reason)
	}
	acct, err := a.Store.Authenticate(ctx, address, password)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrAccountDisabled):
		fail("account disabled")
		return store.Account{}, ErrDisabled
	case errors.Is(err, store.ErrAuthFailed), errors.Is(err, store.ErrNoSuchAccount):
		fail("bad credentials")
		return store.Account{}, ErrFailed
	default:
		return store.Account{}, fmt.Errorf("%w: %w", ErrTemporary, err)
	}
	if !acct.Allows(protocol) {
		fail("protocol not allowed")
		return store.Account{}, ErrProtocolNotAllowed
	}
	return acct, nil
}

// fail counts a failed login (giving back its admission slot), logs it (and the block it
// may start), and waits its delay.
func (a *Authenticator) fail(ctx context.Context, remote net.Addr, ip netip.Addr, hasIP, slot bool, account string, fp uint64, protocol, reason string) {
	now := a.now()
	delay, count, blockedUntil, repeat := a.recordFailure(ip, hasIP, slot, account, fp, now)
	if a.Shared != nil && !repeat {
		delay, count, blockedUntil = a.shareFailure(ctx, ip, hasIP, account, now, count, blockedUntil)
	}
	a.warn("login failed", remote, account, protocol, "reason", reason, "failures", count, "delay", delay, "repeat", repeat)
	if !blockedUntil.IsZero() {
		a.warn("address blocked after repeated login failures", remote, account, protocol,
			"until", blockedUntil.UTC().Format(time.RFC3339))
	}
	a.wait(ctx, delay)
}

// warn logs a login problem; never with the password.
func (a *Authenticator) warn(msg string, remote net.Addr, account, protocol string, args ...any) {
	if a.Logger == nil {
		return
	}
	ip := ""
	if remote != nil {
		ip = remote.String()
		if ap, err := netip.ParseAddrPort(ip); err == nil {
			ip = ap.Addr().Unmap().String()
		}
	}
	a.Logger.Warn("auth: "+msg, append([]any{"ip", ip, "account", account, "protocol", protocol}, args...)...)
}

// PlaintextPolicy says whether plaintext credentials may cross a connection.
type PlaintextPolicy struct {
	// Always allows plaintext credentials on every connection (auth.allow_plaintext: true).
	Always bool
	// Never refuses them without TLS even from loopback (auth.allow_plaintext: false).
	Never bool
	// Trusted networks where plaintext is allowed besides loopback.
	Trusted []netip.Prefix
}

// Allowed reports whether plaintext credentials may be sent over conn. tlsActive says
// whether the session is protected already (implicit TLS or after STARTTLS/STLS).
func (p PlaintextPolicy) Allowed(conn net.Conn, tlsActive bool) bool {
	if tlsActive || p.Always {
		return true
	}
	if _, ok := conn.(*tls.Conn); ok {
		return true
	}
	if p.Never {
		return false
	}
	addr, ok := remoteAddr(conn)
	if !ok {
		return conn.RemoteAddr() != nil && conn.RemoteAddr().Network() == "unix"
	}
	if addr.IsLoopback() {
		return true
	}
	for _, pfx := range p.Trusted {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

func remoteAddr(conn net.Conn) (netip.Addr, bool) {
	ra := conn.RemoteAddr()
	if ra == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(ra.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
