package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/testcert"
)

// testTLSConfig makes a throwaway self-signed certificate for 127.0.0.1.
func testTLSConfig(t *testing.T) *tls.Config { return testcert.Config(t, "pop.test") }

// startTLS upgrades the client after a +OK to STLS.
func (c *client) startTLS() {
	c.t.Helper()
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	c.conn.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func TestStls(t *testing.T) {
	cfg := testTLSConfig(t)
	e := newEnv(t, noPlaintext, withOptions(func(o *Options) { o.TLSConfig = cfg }))
	c := e.dial()
	_, caps := c.multi("CAPA")
	if !slices.Contains(caps, "STLS") || slices.Contains(caps, "USER") {
		t.Errorf("CAPA before STLS = %q, want STLS and no USER", caps)
	}
	if got := c.err("USER " + testUser); !strings.Contains(got, "STLS") {
		t.Errorf("USER before STLS = %q, want a hint to use STLS", got)
	}
	c.ok("STLS")
	c.startTLS()
	// RFC 2595 §4: CAPA reflects the new state.
	_, caps = c.multi("CAPA")
	if slices.Contains(caps, "STLS") || !slices.Contains(caps, "USER") || !slices.Contains(caps, "SASL PLAIN LOGIN") {
		t.Errorf("CAPA after STLS = %q, want USER and SASL, no STLS", caps)
	}
	c.err("STLS")
	c.ok("USER " + testUser)
	c.ok("PASS " + testPassword)
	if got := c.ok("STAT"); got != "+OK 0 0" {
		t.Errorf("STAT over TLS = %q", got)
	}
}

// TestStlsDropsInjectedPlaintext: commands sent in plaintext behind STLS must not run
// inside the TLS session (CVE-2011-0411).
func TestStlsDropsInjectedPlaintext(t *testing.T) {
	cfg := testTLSConfig(t)
	e := newEnv(t, withOptions(func(o *Options) { o.TLSConfig = cfg }))
	c := e.dial()
	if _, err := c.conn.Write([]byte("STLS\r\nQUIT\r\n")); err != nil {
		t.Fatal(err)
	}
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("STLS: %q", l)
	}
	c.startTLS()
	if got := c.cmd("CAPA"); got != "+OK Capability list follows" {
		t.Errorf("first reply over TLS = %q, want the CAPA reply (the injected QUIT must be dropped)", got)
	}
}

func TestStlsPendingUserForgotten(t *testing.T) {
	cfg := testTLSConfig(t)
	e := newEnv(t, withOptions(func(o *Options) { o.TLSConfig = cfg }))
	c := e.dial()
	c.ok("USER " + testUser)
	c.ok("STLS")
	c.startTLS()
	c.err("PASS " + testPassword) // USER must come again over TLS
}

func TestStlsNotAvailable(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	c.err("STLS")
	c.ok("USER " + testUser)
	c.ok("PASS " + testPassword)
	c.err("STLS")
}

func TestImplicitTLS(t *testing.T) {
	cfg := testTLSConfig(t)
	e := newEnv(t, noPlaintext, withOptions(func(o *Options) { o.TLSConfig = cfg }))
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		e.srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve(tls listener): %v", err)
		}
	})
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting %q", g)
	}
	_, caps := c.multi("CAPA")
	if slices.Contains(caps, "STLS") || !slices.Contains(caps, "USER") {
		t.Errorf("CAPA over implicit TLS = %q, want USER and no STLS", caps)
	}
	c.ok("USER " + testUser)
	c.ok("PASS " + testPassword)
}
