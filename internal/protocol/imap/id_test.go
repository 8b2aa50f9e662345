package imap

import (
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/metrics"
)

// RFC 2971: ID in any state, answered with the server's ID; the client's name, version
// and os reach the login and logout lines.
func TestID(t *testing.T) {
	e := newEnv(t)
	c := e.raw()
	if caps := c.ok("CAPABILITY")[0]; !strings.Contains(caps+" ", " ID ") {
		t.Errorf("ID not announced before login: %q", caps)
	}
	untagged := c.ok("ID NIL")
	if len(untagged) != 1 || !strings.HasPrefix(untagged[0], `* ID ("name" "Letterbox" "version" "`) {
		t.Fatalf("ID NIL: %q", untagged)
	}
	c.ok(`ID ("name" "Thunderbird" "version" "115.3" "os" NIL "vendor" {7}` + "\r\nMozilla)")
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	if caps := c.ok("CAPABILITY")[0]; strings.Count(caps+" ", " ID ") != 1 {
		t.Errorf("ID announced other than once after login: %q", caps)
	}
	c.ok("ID ()") // after login too (an empty list, as Dovecot takes it)
	if _, status := c.cmd(`ID ("name")`); !strings.HasPrefix(status, "BAD") {
		t.Errorf("a field without a value: %s", status)
	}
	c.ok("LOGOUT")
	c.waitEOF() // the logout line is written before the connection closes
	logs := e.logs.String()
	for _, line := range []string{lineWith(logs, "msg=login "), lineWith(logs, `msg="imap logout"`)} {
		if !strings.Contains(line, "client=Thunderbird client_version=115.3") {
			t.Errorf("log line without the client's ID: %s", line)
		}
	}
}

func TestKnownClient(t *testing.T) {
	for name, want := range map[string]string{
		"Thunderbird":             "thunderbird",
		"Thunderbird for Android": "thunderbird-android",
		"K-9 Mail":                "thunderbird-android",
		"iPhone Mail":             "apple-ios-mail",
		"Mac OS X Mail":           "apple-mail",
		"isync":                   "mbsync",
		"Microsoft Outlook":       "outlook",
		"Roundcube Webmail":       "roundcube",
		"evil\x00label{}":         "other",
		strings.Repeat("x", 5000): "other",
	} {
		if got := knownClient(name); got != want {
			t.Errorf("knownClient(%.20q) = %q, want %q", name, got, want)
		}
	}
}

// A webmail on loopback (trusted) names its user's address with x-originating-ip: the
// penalty counts that address, and blocks it (even with the right password), while the
// webmail's own other users still log in.
func TestOriginatingIPFromTrustedPeer(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *mailStore) {
		o.Auth.Penalty = auth.Penalty{MaxFailures: 2}
		o.Auth.Plaintext = auth.PlaintextPolicy{Always: true}
	})
	named := func() *rawClient {
		c := e.raw()
		c.ok(`ID ("name" "Roundcube" "x-originating-ip" "203.0.113.7")`)
		return c
	}
	for i := range 2 {
		c := named()
		if _, status := c.cmd(`LOGIN %q "wrong%d"`, testUser, i); !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("wrong password: %s", status)
		}
	}
	if _, status := named().cmd(`LOGIN %q %q`, testUser, testPassword); !strings.HasPrefix(status, "NO [UNAVAILABLE]") {
		t.Fatalf("right password for the blocked named address: %s, want NO [UNAVAILABLE]", status)
	}
	e.rawLogin() // the webmail itself (loopback) is not blocked
	c := e.raw()
	c.ok(`ID ("x-originating-ip" "198.51.100.2")`)
	c.ok(`LOGIN %q %q`, testUser, testPassword) // nor another of its users
	if !strings.Contains(e.logs.String(), "remote=203.0.113.7:0 via=127.0.0.1:") {
		t.Errorf("log lines do not carry the named address:\n%s", e.logs.String())
	}
}

// x-originating-ip from a peer that is not trusted is ignored: its failures count
// against its own address, which is blocked however it names itself.
func TestOriginatingIPFromUntrustedPeerIgnored(t *testing.T) {
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
	for i := range 2 {
		c := far.raw()
		c.ok(`ID ("x-originating-ip" "198.51.100.%d")`, i+1)
		if _, status := c.cmd(`LOGIN %q "wrong%d"`, testUser, i); !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("wrong password: %s", status)
		}
	}
	c := far.raw()
	c.ok(`ID ("x-originating-ip" "198.51.100.3")`)
	if _, status := c.cmd(`LOGIN %q %q`, testUser, testPassword); !strings.HasPrefix(status, "NO [UNAVAILABLE]") {
		t.Fatalf("the blocked address naming another: %s, want NO [UNAVAILABLE]", status)
	}
	if !strings.Contains(e.logs.String(), "x-originating-ip from an untrusted address; ignored") {
		t.Error("no debug line for the ignored x-originating-ip")
	}
}

// A loopback webmail naming a remote user makes the plaintext policy judge that user's
// address: loopback's allowance does not pass to it.
func TestOriginatingIPPlaintextPolicy(t *testing.T) {
	e := newEnv(t) // default policy: plaintext from loopback only
	c := e.raw()
	c.ok(`ID ("x-originating-ip" "203.0.113.7")`)
	if caps := c.ok("CAPABILITY")[0]; !strings.Contains(caps, "LOGINDISABLED") {
		t.Errorf("CAPABILITY for a named remote user: %q", caps)
	}
	if _, status := c.cmd(`LOGIN %q %q`, testUser, testPassword); !strings.HasPrefix(status, "NO [PRIVACYREQUIRED]") {
		t.Errorf("LOGIN for a named remote user without TLS: %s", status)
	}
	// After login x-originating-ip is ignored.
	c2 := e.rawLogin()
	c2.ok(`ID ("x-originating-ip" "203.0.113.8")`)
	c2.ok("SELECT INBOX")
}

func lineWith(logs, s string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// waitEOF reads until the server closes the connection.
func (c *rawClient) waitEOF() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioGuard))
	if _, err := io.Copy(io.Discard, c.br); err != nil {
		c.t.Fatalf("waiting for the end: %v", err)
	}
}

// letterbox_imap_clients counts logged-in sessions by the client their ID named, "none"
// without one, and lets go of them at logout and UNAUTHENTICATE.
func TestIMAPClientsMetric(t *testing.T) {
	rec := metrics.New()
	e := newEnv(t, func(o *Options, _ *mailStore) { o.Metrics = rec })
	scrape := func() string {
		w := httptest.NewRecorder()
		rec.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		return w.Body.String()
	}
	tb := e.raw()
	tb.ok(`ID ("name" "Thunderbird" "version" "128.0")`)
	tb.ok(`LOGIN %q %q`, testUser, testPassword)
	plain := e.rawLogin()
	odd := e.raw()
	odd.ok(`ID ("name" "Nobody's Mailer {}")`)
	odd.ok(`LOGIN %q %q`, testUser, testPassword)
	out := scrape()
	for _, want := range []string{
		`letterbox_imap_clients{name="thunderbird"} 1`,
		`letterbox_imap_clients{name="none"} 1`,
		`letterbox_imap_clients{name="other"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	tb.ok("UNAUTHENTICATE")
	plain.ok("LOGOUT")
	plain.waitEOF()
	out = scrape()
	for _, want := range []string{
		`letterbox_imap_clients{name="thunderbird"} 0`,
		`letterbox_imap_clients{name="none"} 0`,
		`letterbox_imap_clients{name="other"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("after UNAUTHENTICATE and LOGOUT: missing %s", want)
		}
	}
}
