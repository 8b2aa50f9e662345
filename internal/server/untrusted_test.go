package server

// The promises that hold for clients that are not on loopback, tested with real listeners:
// the test connects from loopback as a trusted proxy (proxy.trusted_networks 127.0.0.1/32)
// and starts each connection with a PROXY protocol header naming a client on the
// internet (203.0.113.0/24, TEST-NET-3), so the server sees a remote client exactly as it
// would see one behind HAProxy. Every machine has these addresses, so the tests always
// run. cmd/letterbox's TestHAProxy does the same with a real HAProxy in front.

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

	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// The remote clients the tests speak for: one untrusted address, and a clean one to
// contrast it with (another client behind the same proxy).
var (
	untrustedIP = netip.MustParseAddr("203.0.113.7")
	cleanIP     = netip.MustParseAddr("203.0.113.8")
)

// untrustedConfig is testConfig with loopback trusted as a proxy.
func untrustedConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.Proxy.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg.Proxy.Required = true
	return cfg
}

// remote is a line-oriented client connected for a remote address.
type remote struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// proxyHeader is a PROXY protocol header for a client at ip connecting to addr: v1 for
// IPv4 clients, v2 for IPv6 ones, so that both are exercised.
func proxyHeader(ip netip.Addr, addr net.Addr) []byte {
	dst := addr.(*net.TCPAddr).AddrPort()
	if ip.Is4() {
		return fmt.Appendf(nil, "PROXY TCP4 %s %s 40000 %d\r\n", ip, dst.Addr(), dst.Port())
	}
	b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24")
	b = append(b, ip.AsSlice()...)
	b = append(b, netip.IPv6Loopback().AsSlice()...)
	return append(b, 0x9c, 0x40, byte(dst.Port()>>8), byte(dst.Port()))
}

// proxyDial connects to addr from loopback, as a proxy, and sends the header for a client
// at ip; with implicitTLS, the TLS handshake follows.
func proxyDial(ip netip.Addr, addr net.Addr, implicitTLS bool) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr.String(), 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(proxyHeader(ip, addr)); err != nil {
		c.Close()
		return nil, err
	}
	if !implicitTLS {
		return c, nil
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// dialFrom connects to addr for a client at ip (plain TCP, or implicit TLS), reading
// nothing yet.
func dialFrom(t *testing.T, ip netip.Addr, addr net.Addr, implicitTLS bool) *remote {
	t.Helper()
	c, err := proxyDial(ip, addr, implicitTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
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
	ip := untrustedIP
	srv := start(t, untrustedConfig(t), &syncBuffer{})
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
	cfg := untrustedConfig(t)
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
	ip := untrustedIP
	cfg := untrustedConfig(t)
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
	if c, err := proxyDial(ip, srv.Addr(POP3S), true); err == nil {
		c.Close()
		t.Error("POP3S completed a handshake over the per-address limit")
	}

	// Another client behind the same proxy is served meanwhile.
	if g := dialFrom(t, cleanIP, srv.Addr(POP3), false).line(); !strings.HasPrefix(g, "+OK") {
		t.Errorf("another address while the remote address is at its limit: %q", g)
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
	ip := untrustedIP
	cfg := untrustedConfig(t)
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
	// From another address the account still logs in.
	lc := dialFrom(t, cleanIP, srv.Addr(IMAPS), true)
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
	ip := untrustedIP
	cfg := untrustedConfig(t)
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
	p := dialFrom(t, cleanIP, srv.Addr(POP3S), true)
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
	ip := untrustedIP
	cfg := untrustedConfig(t)
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
	go func() {
		p, err := proxyDial(cleanIP, srv.Addr(POP3S), true)
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
		m, err := proxyDial(cleanIP, srv.Addr(IMAPS), true)
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
