package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/sessions"
	"github.com/letterbox-mail/letterbox/internal/trace"
)

// TestProxyHeaderOnEveryListener: on IMAP, IMAPS, POP3, POP3S and LMTP, a connection from
// a trusted proxy that names its client (v1 for an IPv4 client, v2 for an IPv6 one) is
// seen as that client's everywhere downstream: in the session registry (the inspector and
// the API), in the wire trace, with TLS recognised beneath the wrapper on the
// implicit-TLS listeners.
func TestProxyHeaderOnEveryListener(t *testing.T) {
	cfg := untrustedConfig(t)
	cfg.Trace.Dir = t.TempDir()
	srv := start(t, cfg, &syncBuffer{})
	traces := map[string]string{} // trace name -> the client's address
	for _, tc := range []struct {
		name     string
		tls      bool
		greeting string
	}{
		{IMAP, false, "* OK"}, {IMAPS, true, "* OK"},
		{POP3, false, "+OK"}, {POP3S, true, "+OK"},
		{LMTP, false, "220 "},
	} {
		for _, client := range []netip.Addr{untrustedIP, netip.MustParseAddr("2001:db8::7")} {
			want := netip.AddrPortFrom(client, 40000).String()
			r := dialFrom(t, client, srv.Addr(tc.name), tc.tls)
			if g := r.line(); !strings.HasPrefix(g, tc.greeting) {
				t.Fatalf("%s via the proxy for %s: greeting %q", tc.name, client, g)
			}
			var live *sessions.Session
			for _, s := range srv.Sessions().List() {
				if s.Protocol == metricsProtocol[tc.name] && s.Remote == want {
					live = &s
				}
			}
			if live == nil {
				t.Fatalf("%s: no live session from %s: %+v", tc.name, want, srv.Sessions().List())
			}
			if live.TLS != tc.tls {
				t.Errorf("%s: session TLS = %v", tc.name, live.TLS)
			}
			traces[live.Trace] = want
			r.c.Close()
		}
	}
	// The transcripts, complete once the server has stopped, name the client.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := trace.List(cfg.Trace.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range list {
		if want, ok := traces[info.Name]; ok {
			if info.Remote != want {
				t.Errorf("%s trace %s: remote %q, want the client %s", info.Protocol, info.Name, info.Remote, want)
			}
			delete(traces, info.Name)
		}
	}
	if len(traces) != 0 {
		t.Errorf("transcripts missing: %v", traces)
	}
}

// TestProxyHeaderRefused: a header from an address outside proxy.trusted_networks ends
// the connection without an answer to it, on a plain listener (after the greeting, which
// the server sends first) and before the TLS handshake on an implicit-TLS one; and with
// proxy.required, a trusted proxy's connection without a header is closed ungreeted.
func TestProxyHeaderRefused(t *testing.T) {
	logs := &syncBuffer{}
	srv := start(t, testConfig(t), logs) // nobody is a proxy
	for _, name := range []string{POP3, IMAP, LMTP} {
		c := dial(t, srv.Addr(name))
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "PROXY TCP4 %s 127.0.0.1 40000 1\r\nQUIT\r\n", untrustedIP)
		r := bufio.NewReader(c)
		r.ReadString('\n') // the greeting
		if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
			t.Errorf("%s: a header from an untrusted peer was answered: %q, %v", name, rest, err)
		}
		c.Close()
	}
	if _, err := proxyDial(untrustedIP, srv.Addr(IMAPS), true); err == nil {
		t.Error("IMAPS: a TLS handshake after an untrusted header succeeded")
	}
	if !strings.Contains(logs.String(), "PROXY protocol header from an untrusted address") {
		t.Errorf("the refusal was not logged:\n%s", logs)
	}

	srv = start(t, untrustedConfig(t), &syncBuffer{}) // loopback is a proxy, headers required
	for _, name := range []string{POP3, IMAP, LMTP} {
		c := dial(t, srv.Addr(name))
		c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprint(c, "QUIT\r\n")
		if got, err := io.ReadAll(c); len(got) != 0 {
			t.Errorf("%s: a trusted proxy's connection without a header was answered %q (%v)", name, got, err)
		}
		c.Close()
	}
}

// TestUserIPLimitCountsLoopback: limits.max_userip_connections (default 10) counts
// loopback like any address (Dovecot's mail_max_userip_connections): the eleventh IMAP
// session of one account from 127.0.0.1 gets NO [LIMIT], while another account still
// logs in from there.
func TestUserIPLimitCountsLoopback(t *testing.T) {
	cfg := testConfig(t)
	if cfg.Limits.MaxUserIPConnections != 10 {
		t.Fatalf("limits.max_userip_connections defaults to %d, want 10", cfg.Limits.MaxUserIPConnections)
	}
	srv := start(t, cfg, &syncBuffer{})
	const password = "pw"
	createAccount(t, srv, "ann@mail.test", password)
	createAccount(t, srv, "ben@mail.test", password)
	login := func(who string) string {
		c, err := net.Dial("tcp", srv.Addr(IMAP).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second))
		r := &remote{t: t, c: c, br: bufio.NewReader(c)}
		r.line()
		_, st := r.imap("l", fmt.Sprintf("LOGIN %q %q", who, password))
		return st
	}
	for i := range 10 {
		if st := login("ann@mail.test"); !strings.HasPrefix(st, "OK") {
			t.Fatalf("session %d from loopback: %q", i+1, st)
		}
	}
	if st := login("ann@mail.test"); !strings.HasPrefix(st, "NO [LIMIT]") {
		t.Errorf("the eleventh session of one account from loopback: %q, want NO [LIMIT]", st)
	}
	if st := login("ben@mail.test"); !strings.HasPrefix(st, "OK") {
		t.Errorf("another account from loopback: %q", st)
	}
}
