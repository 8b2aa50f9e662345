// Package auth decides who may log in, and how, for every protocol Letterbox serves.
//
// Implementation notes:
//
//   - Passwords are checked only by the store (argon2id/bcrypt hashes); this package never
//     sees a hash and never logs a password.
//   - Plaintext mechanisms (IMAP LOGIN, POP3 USER/PASS, SASL PLAIN and LOGIN) are refused on
//     a connection that is neither TLS nor from loopback or a trusted network, unless the
//     configuration allows them everywhere (RFC 2595 §2.3, RFC 8314).
//   - A failed login costs the client a delay before the answer, so guessing is slow; a
//     correct login is never delayed.
package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// Errors Login returns; protocols map them to their own words ([AUTH], AUTHENTICATIONFAILED…).
var (
	ErrFailed             = errors.New("auth: invalid credentials")
	ErrProtocolNotAllowed = errors.New("auth: protocol not allowed for this account")
	ErrDisabled           = errors.New("auth: account disabled")
	ErrTemporary          = errors.New("auth: temporary failure")
)

// AccountStore is what Authenticator needs of the store.
type AccountStore interface {
	Authenticate(ctx context.Context, address, password string) (store.Account, error)
}

// Authenticator checks credentials for one protocol family.
type Authenticator struct {
	Store AccountStore
	// FailureDelay is how long a failed login waits before it is answered.
	FailureDelay time.Duration
	// Plaintext says where plaintext mechanisms are allowed.
	Plaintext PlaintextPolicy
}

// Login checks address and password for protocol (store.ProtocolIMAP, store.ProtocolPOP3).
func (a *Authenticator) Login(ctx context.Context, protocol, address, password string) (store.Account, error) {
	acct, err := a.Store.Authenticate(ctx, address, password)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrAccountDisabled):
		a.fail(ctx)
		return store.Account{}, ErrDisabled
	case errors.Is(err, store.ErrAuthFailed), errors.Is(err, store.ErrNoSuchAccount):
		a.fail(ctx)
		return store.Account{}, ErrFailed
	default:
		return store.Account{}, fmt.Errorf("%w: %w", ErrTemporary, err)
	}
	if !acct.Allows(protocol) {
		a.fail(ctx)
		return store.Account{}, ErrProtocolNotAllowed
	}
	return acct, nil
}

func (a *Authenticator) fail(ctx context.Context) {
	if a.FailureDelay <= 0 {
		return
	}
	t := time.NewTimer(a.FailureDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
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
