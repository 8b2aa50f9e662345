package imap

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/auth"
)

// oneSession is a SessionLimiter allowing one session per account and protocol.
type oneSession struct {
	mu    sync.Mutex
	held  map[string]bool
	freed chan struct{}
}

func (o *oneSession) AcquireUser(protocol, account string, remote net.Addr) (func(), error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := protocol + "/" + strings.ToLower(account)
	if o.held[k] {
		return nil, errors.New("too many")
	}
	o.held[k] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			delete(o.held, k)
			o.mu.Unlock()
			o.freed <- struct{}{}
		})
	}, nil
}

// TestUserIPLimit checks limits.max_userip_connections as the IMAP server applies it: a
// login over the account's cap gets NO [LIMIT] (RFC 5530) and stays unauthenticated, and
// the slot comes back when the first session ends.
func TestUserIPLimit(t *testing.T) {
	lim := &oneSession{held: map[string]bool{}, freed: make(chan struct{}, 4)}
	e := newEnv(t, func(o *Options, _ *mailStore) { o.Sessions = lim })
	first := e.rawLogin()

	second := e.raw()
	if _, status := second.cmd(`LOGIN %q %q`, testUser, testPassword); !strings.HasPrefix(status, "NO [LIMIT]") {
		t.Fatalf("second session's LOGIN: %s, want NO [LIMIT]", status)
	}
	if _, status := second.cmd(`SELECT INBOX`); !strings.HasPrefix(status, "NO") && !strings.HasPrefix(status, "BAD") {
		t.Fatalf("the refused session can SELECT: %s", status)
	}

	first.cmd("LOGOUT")
	select {
	case <-lim.freed:
	case <-time.After(ioGuard): // only keeps a broken test from hanging
		t.Fatal("the first session's slot was never given back")
	}
	second.ok(`LOGIN %q %q`, testUser, testPassword)
}

// farListener makes every accepted connection seem to come from addr, so that tests on
// loopback can exercise what applies to remote clients only.
type farListener struct {
	net.Listener
	addr net.Addr
}

type farConn struct {
	net.Conn
	addr net.Addr
}

func (c farConn) RemoteAddr() net.Addr { return c.addr }

func (l farListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return farConn{c, l.addr}, nil
}

// TestBlockedAddressGetsUnavailable checks the IMAP answer to a login from an address the
// authenticator blocked after repeated failures: NO [UNAVAILABLE] (RFC 5530), a temporary
// refusal rather than a verdict on the password, even when the password is right.
func TestBlockedAddressGetsUnavailable(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *mailStore) {
		o.Auth.Penalty = auth.Penalty{MaxFailures: 2}
		o.Auth.Plaintext = auth.PlaintextPolicy{Always: true}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(farListener{ln, &net.TCPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 4000}})
	far := &testEnv{t: t, addr: ln.Addr().String()}

	c := far.raw()
	for i := range 2 { // distinct guesses: a repeated one is not counted again (internal/auth)
		if _, status := c.cmd(`LOGIN %q "wrong%d"`, testUser, i); !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("wrong password: %s", status)
		}
	}
	if _, status := c.cmd(`LOGIN %q %q`, testUser, testPassword); !strings.HasPrefix(status, "NO [UNAVAILABLE]") {
		t.Fatalf("right password from a blocked address: %s, want NO [UNAVAILABLE]", status)
	}
	// From loopback the same account logs in.
	e.rawLogin()
}
