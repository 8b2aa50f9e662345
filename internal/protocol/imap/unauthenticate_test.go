package imap

import (
	"net"
	"strings"
	"sync"
	"testing"
)

// RFC 8437: UNAUTHENTICATE goes back to the not-authenticated state on the same
// connection, compression kept; the login ends with a line of its own, the slot and the
// selection go, and another login may follow.
func TestUnauthenticate(t *testing.T) {
	e := newEnv(t)
	c := e.raw()
	if _, status := c.cmd("UNAUTHENTICATE"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("UNAUTHENTICATE before login: %s", status)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	if caps := c.ok("CAPABILITY")[0]; !strings.Contains(caps+" ", " UNAUTHENTICATE ") {
		t.Errorf("UNAUTHENTICATE not announced: %q", caps)
	}
	c.compress()
	c.ok("ENABLE UTF8=ACCEPT")
	c.ok("SELECT INBOX")
	c.ok("UNAUTHENTICATE")
	if _, status := c.cmd("SELECT INBOX"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("SELECT after UNAUTHENTICATE: %s", status)
	}
	caps := c.ok("CAPABILITY")[0]
	if !strings.Contains(caps, "AUTH=PLAIN") || strings.Contains(caps, "UNAUTHENTICATE") {
		t.Errorf("CAPABILITY after UNAUTHENTICATE: %q", caps)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword) // still over DEFLATE
	if u := c.ok("SELECT INBOX"); len(grep(u, `EXISTS`)) != 1 {
		t.Errorf("SELECT after the second login: %q", u)
	}
	if u := c.ok(`ENABLE UTF8=ACCEPT`); len(u) != 1 || u[0] != "* ENABLED UTF8=ACCEPT" {
		t.Errorf("ENABLE after the second login (the first login's was reset): %q", u)
	}
	logs := e.logs.String()
	line := lineWith(logs, `msg="imap unauthenticate"`)
	if !strings.Contains(line, "user="+testUser) || !strings.Contains(line, "commands=4") { // LOGIN COMPRESS SELECT UNAUTHENTICATE
		t.Errorf("unauthenticate line: %q", line)
	}
	if n := strings.Count(logs, "msg=login "); n != 2 {
		t.Errorf("%d login lines, want 2", n)
	}
}

// The per-account-and-address session cap counts the session once it is logged in, and
// lets go of it at UNAUTHENTICATE.
func TestUnauthenticateReleasesSlot(t *testing.T) {
	lim := &countingLimiter{}
	e := newEnv(t, func(o *Options, _ *mailStore) { o.Sessions = lim })
	c := e.rawLogin()
	if lim.held() != 1 {
		t.Fatalf("%d slots after login", lim.held())
	}
	c.ok("UNAUTHENTICATE")
	if lim.held() != 0 {
		t.Errorf("%d slots after UNAUTHENTICATE", lim.held())
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	if lim.held() != 1 {
		t.Errorf("%d slots after the second login", lim.held())
	}
}

// countingLimiter counts the slots held.
type countingLimiter struct {
	mu sync.Mutex
	n  int
}

func (l *countingLimiter) AcquireUser(protocol, account string, remote net.Addr) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.n--
			l.mu.Unlock()
		})
	}, nil
}

func (l *countingLimiter) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
