package imap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/pkg/auth"
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
	for i := range 2 { // distinct guesses: a repeated one is not counted again (pkg/auth)
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

// TestOverlongCommandLine: imapserver bounds a command (literals aside) to 50 KiB, so a
// client that sends one endless line is cut off after the server has read little more
// than that: its 64 MiB stream ends in a closed connection long before its end, nothing
// of it is accepted, and other sessions go on. (The words are imapserver's: the command
// whose argument overflows gets NO [SERVERBUG], the rest of the line, read as the next
// command, ends the connection; a BAD with BYE would be better, see docs/security.md.)
func TestOverlongCommandLine(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	const flood = 64 << 20
	written := make(chan int64, 1)
	go func() {
		c.conn.SetWriteDeadline(time.Now().Add(ioGuard))
		n, _ := c.conn.Write([]byte("X1 LOGIN "))
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for total := int64(n); ; {
			k, err := c.conn.Write(chunk)
			total += int64(k)
			if err != nil || total >= flood {
				written <- total
				return
			}
		}
	}()
	c.conn.SetReadDeadline(time.Now().Add(ioGuard))
	// The server closes with unread data pending, so the end may come as a reset.
	answers, err := io.ReadAll(c.br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server did not close the connection: %v", err)
	}
	for _, l := range strings.Split(string(answers), "\r\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "OK" {
			t.Errorf("an overlong command line was answered OK: %.80q", l)
		}
	}
	c.conn.Close() // the writer, blocked or not, ends
	if n := <-written; n >= flood {
		t.Errorf("the server read all %d MiB of one command line", n>>20)
	}
	e.rawLogin().ok("NOOP")
}
