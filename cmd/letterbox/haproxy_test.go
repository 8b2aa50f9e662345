package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

// TestHAProxy puts Debian's HAProxy in front of `letterbox serve`, as a provider would
// (mode tcp, send-proxy-v2: testdata/e2e/haproxy/haproxy.cfg.tmpl, the configuration
// docs/operations.md shows), with Letterbox trusting it (proxy.trusted_networks
// 127.0.0.9/32, HAProxy's source address, and proxy.required). The clients connect to
// HAProxy from distinct loopback addresses (127.0.0.2, 127.0.0.3, 127.0.0.4: all of 127/8
// is this host's on Linux), so
// Letterbox sees only HAProxy's connections, and must go by the addresses the headers
// name: limits.max_userip_connections counts per client address (over IMAPS, TLS passing
// through HAProxy to Letterbox), the failed-login block of one client does not block
// another behind the same proxy (IMAP and POP3); straight to Letterbox, a connection from
// HAProxy's address without a header is refused, and one from elsewhere on the host is
// served but its header, were it to send one, not honoured. HAProxy runs as its own process in the foreground on free ports,
// with its configuration in a temporary directory; it needs no root.
func TestHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	needCommand(t, "haproxy")
	haproxy, _ := exec.LookPath("haproxy")
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.9"} {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatalf("cannot bind %s (all of 127.0.0.0/8 is loopback on Linux): %v", ip, err)
		}
		l.Close()
	}

	dir := t.TempDir()
	config := filepath.Join(dir, "letterbox.yaml")
	if err := os.WriteFile(config, []byte(`proxy:
  trusted_networks: [127.0.0.9/32]
  required: true
auth:
  failure_delay: 0s
  max_failures: 3
limits:
  max_userip_connections: 2
`), 0o600); err != nil {
		t.Fatal(err)
	}
	letterboxIMAPS := freePort(t)
	srv := startE2E(t, filepath.Join(dir, "data"), "--config", config, "--tls-self-signed",
		"--imaps-addr", letterboxIMAPS)
	srv.addUser("ann@example.test", "ann-pw")
	srv.addUser("ben@example.test", "ben-pw")

	// HAProxy's frontends on free ports of 127.0.0.1 (the clients' source addresses differ,
	// not the address they connect to).
	settings := map[string]string{
		"Bind":           "127.0.0.1",
		"Source":         "127.0.0.9", // HAProxy's own address towards Letterbox
		"IMAP":           port(freePort(t)),
		"IMAPS":          port(freePort(t)),
		"POP3":           port(freePort(t)),
		"LetterboxIMAP":  port(srv.ports["imap"]),
		"LetterboxIMAPS": port(letterboxIMAPS),
		"LetterboxPOP3":  port(srv.ports["pop3"]),
	}
	tmpl, err := template.ParseFiles("../../testdata/e2e/haproxy/haproxy.cfg.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	f, err := os.Create(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := tmpl.Execute(f, settings); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command(haproxy, "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	var hlog bytes.Buffer
	hp := exec.Command(haproxy, "-db", "-f", cfgPath) // -db: in the foreground, no daemon
	hp.Stdout, hp.Stderr = &hlog, &hlog
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hp.Process.Kill()
		hp.Wait()
	})
	for _, p := range []string{settings["IMAP"], settings["IMAPS"], settings["POP3"]} {
		if !listeningNow("127.0.0.1:" + p) {
			hp.Process.Kill()
			hp.Wait()
			t.Fatalf("haproxy does not listen on port %s:\n%s", p, hlog.String())
		}
	}
	imap := "127.0.0.1:" + settings["IMAP"]
	imaps := "127.0.0.1:" + settings["IMAPS"]
	pop3 := "127.0.0.1:" + settings["POP3"]

	// limits.max_userip_connections (2 here), over IMAPS: per client address, not per
	// proxy. Ann's third session from 127.0.0.3 is refused; from 127.0.0.4 she gets in.
	for i := range 2 {
		if st := haproxyLogin(t, "127.0.0.3", imaps, true, "ann@example.test", "ann-pw"); !strings.HasPrefix(st, "OK") {
			t.Fatalf("IMAPS session %d of ann from 127.0.0.3 through HAProxy: %q", i+1, st)
		}
	}
	if st := haproxyLogin(t, "127.0.0.3", imaps, true, "ann@example.test", "ann-pw"); !strings.HasPrefix(st, "NO [LIMIT]") {
		t.Errorf("ann's third session from 127.0.0.3 through HAProxy: %q, want NO [LIMIT]", st)
	}
	if st := haproxyLogin(t, "127.0.0.4", imaps, true, "ann@example.test", "ann-pw"); !strings.HasPrefix(st, "OK") {
		t.Errorf("ann from 127.0.0.4, while 127.0.0.3 is at her limit: %q (HAProxy's clients counted as one?)", st)
	}

	// Penalties: 127.0.0.2 guesses ben's password three times (auth.max_failures) and is
	// blocked, even with the right password, over IMAP and POP3; ben behind the same
	// HAProxy at 127.0.0.4 logs in.
	for i := range 3 {
		if st := haproxyLogin(t, "127.0.0.2", imap, false, "ben@example.test", fmt.Sprint("guess-", i)); !strings.HasPrefix(st, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("wrong password %d from 127.0.0.2: %q", i+1, st)
		}
	}
	if st := haproxyLogin(t, "127.0.0.2", imap, false, "ben@example.test", "ben-pw"); !strings.HasPrefix(st, "NO [UNAVAILABLE]") {
		t.Errorf("the right password from the blocked 127.0.0.2: %q, want NO [UNAVAILABLE]", st)
	}
	if st := haproxyPOP3Login(t, "127.0.0.2", pop3, "ben@example.test", "ben-pw"); !strings.HasPrefix(st, "-ERR [SYS/TEMP]") {
		t.Errorf("POP3 from the blocked 127.0.0.2: %q, want -ERR [SYS/TEMP]", st)
	}
	if st := haproxyLogin(t, "127.0.0.4", imap, false, "ben@example.test", "ben-pw"); !strings.HasPrefix(st, "OK") {
		t.Errorf("ben from 127.0.0.4 behind the same HAProxy: %q, want OK (blocked for 127.0.0.2's failures?)", st)
	}
	if st := haproxyPOP3Login(t, "127.0.0.4", pop3, "ben@example.test", "ben-pw"); !strings.HasPrefix(st, "+OK") {
		t.Errorf("POP3 of ben from 127.0.0.4: %q", st)
	}

	// Straight to Letterbox, bypassing HAProxy. From HAProxy's address without a header:
	// refused (proxy.required). From 127.0.0.1, another process of this host: served as
	// it is, and a header it sends is not honoured but ends the connection.
	direct := func(from, send string) (greeting, rest string) {
		c, r := haproxyDial(t, from, srv.ports["imap"], false)
		fmt.Fprint(c, send)
		greeting, _ = r.ReadString('\n')
		b, _ := io.ReadAll(r)
		return greeting, string(b)
	}
	if g, rest := direct("127.0.0.9", "a LOGOUT\r\n"); g != "" || rest != "" {
		t.Errorf("from HAProxy's address without a header: answered %q %q, want the connection closed", g, rest)
	}
	if g, rest := direct("127.0.0.1", "a LOGOUT\r\n"); !strings.HasPrefix(g, "* OK") || !strings.Contains(rest, "a OK") {
		t.Errorf("a direct client on 127.0.0.1: %q %q, want served", g, rest)
	}
	if g, rest := direct("127.0.0.1", "PROXY TCP4 127.0.0.4 127.0.0.1 1 143\r\na LOGIN ben@example.test ben-pw\r\n"); !strings.HasPrefix(g, "* OK") || rest != "" {
		t.Errorf("a header from 127.0.0.1, not a trusted proxy: %q %q, want the connection closed after the greeting", g, rest)
	}
}

// listeningNow waits (up to 10 s) until addr accepts a connection.
func listeningNow(addr string) bool {
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// haproxyDial connects to addr from the source address from, with TLS if asked; the
// connection is closed at the end of the test (sessions stay open until then).
func haproxyDial(t *testing.T, from, addr string, useTLS bool) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatalf("connecting to %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return c, bufio.NewReader(c)
}

// haproxyLogin opens an IMAP session from from and returns the tagged answer to LOGIN.
func haproxyLogin(t *testing.T, from, addr string, useTLS bool, user, password string) string {
	t.Helper()
	c, r := haproxyDial(t, from, addr, useTLS)
	if g, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(g, "* OK") {
		t.Fatalf("IMAP greeting through HAProxy from %s: %q, %v", from, g, err)
	}
	fmt.Fprintf(c, "l LOGIN %q %q\r\n", user, password)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("IMAP LOGIN from %s: %v", from, err)
		}
		if st, ok := strings.CutPrefix(line, "l "); ok {
			return strings.TrimSpace(st)
		}
	}
}

// haproxyPOP3Login logs in over POP3 from from and returns the answer to PASS.
func haproxyPOP3Login(t *testing.T, from, addr, user, password string) string {
	t.Helper()
	c, r := haproxyDial(t, from, addr, false)
	var answers []string
	fmt.Fprintf(c, "USER %s\r\nPASS %s\r\n", user, password)
	for range 3 { // the greeting, USER's answer, PASS's answer
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("POP3 from %s: %v (%q)", from, err, answers)
		}
		answers = append(answers, strings.TrimSpace(line))
	}
	return answers[2]
}
