package server

// The promises that hold for clients that are not on loopback, tested with a real one: the
// server listens on an address of this machine that is not loopback, and the test dials
// from that address, so the server sees a remote client exactly as it would see one from
// the internet (loopback is trusted for plaintext and exempt from the per-address caps and
// penalties, so tests from 127.0.0.1 cannot prove these). Where the machine has no such
// address the tests are skipped and say so.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/pkg/config"
	"github.com/letterbox-mail/letterbox/store"
)

// untrustedIP is an address of one of this machine's interfaces that is neither loopback
// nor link-local, and that can be bound; the test is skipped if there is none.
func untrustedIP(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("listing interface addresses: %v", err)
	}
	var v6 netip.Addr
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipnet.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		l, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			continue
		}
		l.Close()
		if ip.Is4() {
			return ip
		}
		if !v6.IsValid() {
			v6 = ip
		}
	}
	if v6.IsValid() {
		return v6
	}
	t.Skip("this machine has no address other than loopback to test a remote client from")
	return netip.Addr{}
}

// loopbackFor is the clean address the tests contrast with the untrusted ip: loopback of
// the same family. It is exempt from the per-address caps and penalties, not from the
// per-account ones.
func loopbackFor(ip netip.Addr) netip.Addr {
	if ip.Is4() {
		return netip.MustParseAddr("127.0.0.1")
	}
	return netip.IPv6Loopback()
}

// untrustedConfig is testConfig with every listener on ip instead of loopback.
func untrustedConfig(t *testing.T, ip netip.Addr) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	for _, a := range []*string{&cfg.IMAP.Addr, &cfg.IMAPS.Addr, &cfg.POP3.Addr, &cfg.POP3S.Addr, &cfg.LMTP.Addr} {
		*a = netip.AddrPortFrom(ip, 0).String()
	}
	return cfg // HTTP (metrics) stays on loopback
}

// remote is a line-oriented client connected from the untrusted address.
type remote struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// dialFrom connects to addr from ip (plain TCP, or implicit TLS), reading nothing yet.
func dialFrom(t *testing.T, ip netip.Addr, addr net.Addr, implicitTLS bool) *remote {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))}
	var c net.Conn
	var err error
	if implicitTLS {
		c, err = tls.DialWithDialer(d, "tcp", addr.String(), &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = d.Dial("tcp", addr.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != ip {
		t.Fatalf("dialled from %v, want %v", got, ip)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return &remote{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *remote) line() string {
	r.t.Helper()
	l, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (%q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// send writes one command line.
func (r *remote) send(format string, args ...any) {
	r.t.Helper()
	if _, err := fmt.Fprintf(r.c, format+"\r\n", args...); err != nil {
		r.t.Fatal(err)
	}
}

// pop3 sends cmd and returns the status line.
func (r *remote) pop3(cmd string) string {
	r.t.Helper()
	r.send("%s", cmd)
	return r.line()
}

// pop3Multi sends cmd and returns the status line and the lines of a multi-line answer.
func (r *remote) pop3Multi(cmd string) (string, []string) {
	r.t.Helper()
	status := r.pop3(cmd)
	if !strings.HasPrefix(status, "+OK") {
		return status, nil
	}
	var lines []string
	for l := r.line(); l != "."; l = r.line() {
		lines = append(lines, l)
	}
	return status, lines
}

// imap sends a tagged command and returns the untagged lines and the tagged status.
func (r *remote) imap(tag, cmd string) ([]string, string) {
	r.t.Helper()
	r.send("%s %s", tag, cmd)
	var untagged []string
	for {
		l := r.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// startTLS upgrades the connection after STLS/STARTTLS was answered.
func (r *remote) startTLS() {
	r.t.Helper()
	tc := tls.Client(r.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		r.t.Fatal(err)
	}
	r.c, r.br = tc, bufio.NewReader(tc)
}

func createAccount(t *testing.T, srv *Server, address, password string) {
	t.Helper()
	if _, err := srv.st.CreateAccount(context.Background(), store.NewAccount{Address: address, Password: password}); err != nil {
		t.Fatal(err)
	}
}

func saslPlain(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// TestPlaintextFromUntrustedAddress: from an address that is neither loopback nor trusted,
// with the default configuration, POP3 leaves USER and SASL out of CAPA and refuses USER
// and AUTH PLAIN with -ERR [AUTH], IMAP announces LOGINDISABLED and refuses LOGIN and
// AUTHENTICATE PLAIN; after STLS/STARTTLS, and on the implicit-TLS listeners, the same
// credentials log in. With the address in auth.trusted_networks, plaintext is allowed.
func TestPlaintextFromUntrustedAddress(t *testing.T) {
	ip := untrustedIP(t)
	srv := start(t, untrustedConfig(t, ip), &syncBuffer{})
	const user, password = "ann@mail.test", "correct horse"
	createAccount(t, srv, user, password)

	// POP3 without TLS.
	p := dialFrom(t, ip, srv.Addr(POP3), false)
	if g := p.line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("POP3 greeting %q", g)
	}
	_, caps := p.pop3Multi("CAPA")
	for _, c := range caps {
		if c == "USER" || strings.HasPrefix(c, "SASL") {
			t.Errorf("POP3 CAPA offers %q to an untrusted address without TLS: %q", c, caps)
		}
	}
	if !contains(caps, "STLS") {
		t.Errorf("POP3 CAPA lacks STLS: %q", caps)
	}
	if _, mechs := p.pop3Multi("AUTH"); len(mechs) != 0 {
		t.Errorf("POP3 AUTH lists %q without TLS", mechs)
	}
	for _, cmd := range []string{"USER " + user, "AUTH PLAIN " + saslPlain(user, password), "AUTH LOGIN"} {
		if got := p.pop3(cmd); !strings.HasPrefix(got, "-ERR [AUTH] ") {
			t.Errorf("POP3 %s without TLS: %q, want -ERR [AUTH] (RFC 3206)", strings.Fields(cmd)[0], got)
		}
	}
	if got := p.pop3("PASS " + password); !strings.HasPrefix(got, "-ERR") {
		t.Errorf("POP3 PASS without TLS: %q", got)
	}
	// STLS, then the same credentials work.
	if got := p.pop3("STLS"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("STLS: %q", got)
	}
	p.startTLS()
	_, caps = p.pop3Multi("CAPA")
	if !contains(caps, "USER") || !contains(caps, "SASL PLAIN LOGIN") || contains(caps, "STLS") {
		t.Errorf("POP3 CAPA after STLS: %q, want USER and SASL PLAIN LOGIN, no STLS", caps)
	}
	if got := p.pop3("AUTH PLAIN " + saslPlain(user, password)); !strings.HasPrefix(got, "+OK") {
		t.Errorf("AUTH PLAIN after STLS: %q", got)
	}
	p.pop3("QUIT")

	// IMAP without TLS.
	m := dialFrom(t, ip, srv.Addr(IMAP), false)
	if g := m.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("IMAP greeting %q", g)
	}
	u, _ := m.imap("c1", "CAPABILITY")
	capLine := strings.Join(u, " ")
	if !strings.Contains(capLine, " LOGINDISABLED") || !strings.Contains(capLine, " STARTTLS") || strings.Contains(capLine, "AUTH=") {
		t.Errorf("IMAP CAPABILITY to an untrusted address without TLS: %q, want LOGINDISABLED, STARTTLS and no AUTH=", capLine)
	}
	if _, st := m.imap("l1", fmt.Sprintf("LOGIN %q %q", user, password)); !strings.HasPrefix(st, "NO") {
		t.Errorf("IMAP LOGIN without TLS: %q, want NO", st)
	}
	if _, st := m.imap("a1", "AUTHENTICATE PLAIN "+saslPlain(user, password)); !strings.HasPrefix(st, "NO") && !strings.HasPrefix(st, "BAD") {
		t.Errorf("IMAP AUTHENTICATE PLAIN without TLS: %q, want NO", st)
	}
	if _, st := m.imap("s1", "STARTTLS"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("STARTTLS: %q", st)
	}
	m.startTLS()
	u, _ = m.imap("c2", "CAPABILITY")
	if capLine := strings.Join(u, " "); strings.Contains(capLine, "LOGINDISABLED") || !strings.Contains(capLine, "AUTH=PLAIN") {
		t.Errorf("IMAP CAPABILITY after STARTTLS: %q", capLine)
	}
	if _, st := m.imap("l2", fmt.Sprintf("LOGIN %q %q", user, password)); !strings.HasPrefix(st, "OK") {
		t.Errorf("IMAP LOGIN after STARTTLS: %q", st)
	}
	m.imap("z", "LOGOUT")

	// Implicit TLS: both log in at once.
	ps := dialFrom(t, ip, srv.Addr(POP3S), true)
	ps.line()
	if got := ps.pop3("USER " + user); !strings.HasPrefix(got, "+OK") {
		t.Errorf("POP3S USER: %q", got)
	}
	if got := ps.pop3("PASS " + password); !strings.HasPrefix(got, "+OK") {
		t.Errorf("POP3S PASS: %q", got)
	}
	ps.pop3("QUIT")
	ms := dialFrom(t, ip, srv.Addr(IMAPS), true)
	ms.line()
	if _, st := ms.imap("l", fmt.Sprintf("LOGIN %q %q", user, password)); !strings.HasPrefix(st, "OK") {
		t.Errorf("IMAPS LOGIN: %q", st)
	}
	ms.imap("z", "LOGOUT")

	// The same address in auth.trusted_networks: plaintext is allowed.
	cfg := untrustedConfig(t, ip)
	cfg.Auth.TrustedNetworks = []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}
	trusted := start(t, cfg, &syncBuffer{})
	createAccount(t, trusted, user, password)
	tp := dialFrom(t, ip, trusted.Addr(POP3), false)
	tp.line()
	if _, caps := tp.pop3Multi("CAPA"); !contains(caps, "USER") {
		t.Errorf("POP3 CAPA to a trusted network: %q, want USER", caps)
	}
	tp.pop3("USER " + user)
	if got := tp.pop3("PASS " + password); !strings.HasPrefix(got, "+OK") {
		t.Errorf("POP3 PASS from a trusted network: %q", got)
	}
	tm := dialFrom(t, ip, trusted.Addr(IMAP), false)
	tm.line()
	if _, st := tm.imap("l", fmt.Sprintf("LOGIN %q %q", user, password)); !strings.HasPrefix(st, "OK") {
		t.Errorf("IMAP LOGIN from a trusted network: %q", st)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestPerIPLimitFromUntrustedAddress: limits.max_connections_per_ip counts the connections
// of a remote address; the one over it is refused in each protocol's words and closed, a
// connection from loopback is still served, and closing one frees its slot.
func TestPerIPLimitFromUntrustedAddress(t *testing.T) {
	ip := untrustedIP(t)
	cfg := untrustedConfig(t, ip)
	cfg.Limits.MaxConnectionsPerIP = 2
	srv := start(t, cfg, &syncBuffer{})

	first := dialFrom(t, ip, srv.Addr(POP3), false)
	first.line()
	second := dialFrom(t, ip, srv.Addr(IMAP), false)
	second.line()
	for _, tc := range []struct{ name, want string }{
		{POP3, "-ERR [SYS/TEMP] "},
		{IMAP, "* BYE "},
		{LMTP, "421 4.7.0 "},
	} {
		c := dialFrom(t, ip, srv.Addr(tc.name), false)
		if g := c.line(); !strings.HasPrefix(g, tc.want) {
			t.Errorf("%s, third connection from %v: %q, want %q...", tc.name, ip, g, tc.want)
		}
		if _, err := c.br.ReadByte(); err == nil {
			t.Errorf("%s: the refused connection was not closed", tc.name)
		}
	}
	// Implicit TLS has no session to answer in: the connection is closed.
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))}
	if c, err := tls.DialWithDialer(d, "tcp", srv.Addr(POP3S).String(), &tls.Config{InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Error("POP3S completed a handshake over the per-address limit")
	}

	// Another address (loopback) is served meanwhile.
	if g := dialFrom(t, loopbackFor(ip), srv.Addr(POP3), false).line(); !strings.HasPrefix(g, "+OK") {
		t.Errorf("loopback while the remote address is at its limit: %q", g)
	}

	// Ending one session frees its slot.
	first.pop3("QUIT")
	first.c.Close()
	var g string
	for range 100 { // the server closes its side just after QUIT's +OK
		c := dialFrom(t, ip, srv.Addr(POP3), false)
		if g = c.line(); strings.HasPrefix(g, "+OK") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(g, "+OK") {
		t.Errorf("after one session ended: %q, want the greeting", g)
	}
}

// TestUserIPLimitFromUntrustedAddress: limits.max_userip_connections IMAP sessions of one
// account from one remote address, NO [LIMIT] beyond, while the same account still logs in
// from another address; POP3 allows one session per account ([IN-USE]).
func TestUserIPLimitFromUntrustedAddress(t *testing.T) {
	ip := untrustedIP(t)
	cfg := untrustedConfig(t, ip)
	cfg.Limits.MaxUserIPConnections = 2
	srv := start(t, cfg, &syncBuffer{})
	const user, password = "ann@mail.test", "pw"
	createAccount(t, srv, user, password)
	createAccount(t, srv, "ben@mail.test", password)

	login := func(who string) string {
		c := dialFrom(t, ip, srv.Addr(IMAPS), true)
		c.line()
		_, st := c.imap("l", fmt.Sprintf("LOGIN %q %q", who, password))
		return st
	}
	for i := range 2 {
		if st := login(user); !strings.HasPrefix(st, "OK") {
			t.Fatalf("session %d: %q", i+1, st)
		}
	}
	if st := login(user); !strings.HasPrefix(st, "NO [LIMIT]") {
		t.Errorf("third session of one account from one address: %q, want NO [LIMIT]", st)
	}
	if st := login("ben@mail.test"); !strings.HasPrefix(st, "OK") {
		t.Errorf("another account from the same address: %q", st)
	}
	// From loopback the account still logs in.
	lc := dialFrom(t, loopbackFor(ip), srv.Addr(IMAPS), true)
	lc.line()
	if _, st := lc.imap("l", fmt.Sprintf("LOGIN %q %q", user, password)); !strings.HasPrefix(st, "OK") {
		t.Errorf("the account from another address: %q", st)
	}

	// POP3: one session per account, the second gets [IN-USE].
	pop := func() *remote {
		c := dialFrom(t, ip, srv.Addr(POP3S), true)
		c.line()
		c.pop3("USER " + user)
		return c
	}
	held := pop()
	if got := held.pop3("PASS " + password); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("first POP3 session: %q", got)
	}
	if got := pop().pop3("PASS " + password); !strings.HasPrefix(got, "-ERR [IN-USE]") {
		t.Errorf("second POP3 session of one account: %q, want -ERR [IN-USE]", got)
	}
}

// TestLoginPenaltyFromUntrustedAddress drives the failed-login penalty through the real
// listeners: after auth.max_failures wrong passwords a remote address is refused even with
// the right password (POP3 -ERR [SYS/TEMP], IMAP NO [UNAVAILABLE]), the block is logged
// without the password and counted in metrics with reason "blocked", and the owner of the
// account under attack logs in from a clean address at once.
func TestLoginPenaltyFromUntrustedAddress(t *testing.T) {
	ip := untrustedIP(t)
	cfg := untrustedConfig(t, ip)
	cfg.Auth.MaxFailures = 3
	log := &syncBuffer{}
	srv := start(t, cfg, log)
	const user, password = "ann@mail.test", "the right one"
	createAccount(t, srv, user, password)

	for i := range 3 {
		c := dialFrom(t, ip, srv.Addr(POP3S), true)
		c.line()
		c.pop3("USER " + user)
		if got := c.pop3(fmt.Sprintf("PASS guess-%d", i)); !strings.HasPrefix(got, "-ERR [AUTH] ") {
			t.Fatalf("wrong password %d: %q", i+1, got)
		}
	}
	c := dialFrom(t, ip, srv.Addr(POP3S), true)
	c.line()
	c.pop3("USER " + user)
	if got := c.pop3("PASS " + password); !strings.HasPrefix(got, "-ERR [SYS/TEMP] ") {
		t.Errorf("the right password from the blocked address: %q, want -ERR [SYS/TEMP] (RFC 3206)", got)
	}
	m := dialFrom(t, ip, srv.Addr(IMAPS), true)
	m.line()
	if _, st := m.imap("l", fmt.Sprintf("LOGIN %q %q", user, password)); !strings.HasPrefix(st, "NO [UNAVAILABLE]") {
		t.Errorf("IMAP LOGIN from the blocked address: %q, want NO [UNAVAILABLE]", st)
	}

	// The owner, from a clean address, gets in.
	p := dialFrom(t, loopbackFor(ip), srv.Addr(POP3), false)
	p.line()
	p.pop3("USER " + user)
	if got := p.pop3("PASS " + password); !strings.HasPrefix(got, "+OK") {
		t.Errorf("the owner from a clean address: %q", got)
	}
	p.pop3("QUIT")

	logs := log.String()
	for _, want := range []string{"auth: address blocked after repeated login failures", "ip=" + ip.String(), "account=" + user} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	for _, secret := range []string{"guess-0", "guess-1", "guess-2", password} {
		if strings.Contains(logs, secret) {
			t.Errorf("a password (%q) reached the log", secret)
		}
	}
	got := scrape(t, srv)
	for k, v := range map[string]float64{
		`letterbox_login_failures_total{protocol="pop3",reason="credentials"}`: 3,
		`letterbox_login_failures_total{protocol="pop3",reason="blocked"}`:     1,
		`letterbox_login_failures_total{protocol="imap",reason="blocked"}`:     1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// TestCorrectLoginNotSlowedByAttack: while wrong passwords for an account from a remote
// address are being held for auth.failure_delay (an hour here), the account's owner logs
// in with the right password from another address at once, by POP3 and by IMAP. Were the
// per-account penalty applied to correct logins, the owner would wait that hour.
func TestCorrectLoginNotSlowedByAttack(t *testing.T) {
	ip := untrustedIP(t)
	cfg := untrustedConfig(t, ip)
	cfg.Auth.FailureDelay = time.Hour
	cfg.Auth.MaxFailures = 100
	log := &syncBuffer{}
	srv := start(t, cfg, log)
	const user, password = "ann@mail.test", "the right one"
	createAccount(t, srv, user, password)

	// Three attackers, each held in its failure delay.
	for i := range 3 {
		a := dialFrom(t, ip, srv.Addr(POP3S), true)
		a.line()
		a.pop3("USER " + user)
		a.send("PASS guess-%d", i)
	}
	defer func() { // a short shutdown cuts the attackers' delays off
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	for range 1000 { // until the three failures are counted (logged before the delay)
		if strings.Count(log.String(), "auth: login failed") >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(log.String(), "auth: login failed"); n < 3 {
		t.Fatalf("%d failures counted, want 3", n)
	}

	done := make(chan string, 2)
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(loopbackFor(ip), 0))}
	go func() {
		p, err := d.Dial("tcp", srv.Addr(POP3).String())
		if err != nil {
			done <- err.Error()
			return
		}
		defer p.Close()
		br := bufio.NewReader(p)
		br.ReadString('\n')
		fmt.Fprintf(p, "USER %s\r\nPASS %s\r\n", user, password)
		br.ReadString('\n')
		l, _ := br.ReadString('\n')
		done <- "pop3 " + l
	}()
	go func() {
		m, err := d.Dial("tcp", srv.Addr(IMAP).String())
		if err != nil {
			done <- err.Error()
			return
		}
		defer m.Close()
		br := bufio.NewReader(m)
		br.ReadString('\n')
		fmt.Fprintf(m, "l LOGIN %q %q\r\n", user, password)
		for {
			l, err := br.ReadString('\n')
			if err != nil || strings.HasPrefix(l, "l ") {
				done <- "imap " + l
				return
			}
		}
	}()
	for range 2 {
		select {
		case got := <-done:
			if !strings.HasPrefix(got, "pop3 +OK") && !strings.HasPrefix(got, "imap l OK") {
				t.Errorf("the owner's login from a clean address: %q", got)
			}
		case <-time.After(2 * time.Minute): // a hang guard: the delay under test is an hour
			t.Fatal("the owner's correct login was held back by the attack on the account")
		}
	}
}
