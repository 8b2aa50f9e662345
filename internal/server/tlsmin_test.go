package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// tls11Client offers TLS 1.0 and 1.1 only.
var tls11Client = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}

// tlsEntries are the four ways into TLS: implicit (IMAPS, POP3S) and upgraded (IMAP
// STARTTLS, POP3 STLS). upgrade runs the protocol's command on a plain connection.
var tlsEntries = []struct {
	listener string
	upgrade  func(*testing.T, net.Conn)
}{
	{IMAPS, nil},
	{POP3S, nil},
	{IMAP, func(t *testing.T, c net.Conn) { startTLSCommand(t, c, "s STARTTLS", "s OK") }},
	{POP3, func(t *testing.T, c net.Conn) { startTLSCommand(t, c, "STLS", "+OK") }},
}

// startTLSCommand reads the greeting, sends cmd and requires a reply starting with ok;
// it reads byte by byte so that nothing of the handshake is consumed.
func startTLSCommand(t *testing.T, c net.Conn, cmd, ok string) {
	t.Helper()
	readLine := func() string {
		var b []byte
		one := make([]byte, 1)
		for {
			if _, err := c.Read(one); err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			b = append(b, one[0])
			if one[0] == '\n' {
				return string(b)
			}
		}
	}
	readLine()
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	if l := readLine(); !strings.HasPrefix(l, ok) {
		t.Fatalf("%s answered %q", cmd, l)
	}
}

// handshake connects to the listener (upgrading it first where it needs a command) and
// runs a TLS handshake with cfg.
func handshake(t *testing.T, addr net.Addr, upgrade func(*testing.T, net.Conn), cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if upgrade != nil {
		upgrade(t, c)
	}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// permissiveServer is a TLS server that accepts TLS 1.0 and up: it shows that a client
// refused by Letterbox really offered TLS 1.1, and was not refused for another reason.
func permissiveServer(t *testing.T, srv *Server) net.Addr {
	t.Helper()
	cfg := srv.TLSConfig().Clone()
	cfg.MinVersion = tls.VersionTLS10
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
				bufio.NewReader(c).ReadByte() // until the client hangs up
			}()
		}
	}()
	return l.Addr()
}

// TestTLS12Minimum checks that every way into TLS (IMAPS, POP3S, IMAP STARTTLS, POP3 STLS)
// refuses a client that offers at most TLS 1.1, with the protocol_version alert, and
// accepts TLS 1.2. The same client completes a TLS 1.1 handshake with a server that allows
// it.
func TestTLS12Minimum(t *testing.T) {
	cfg := testConfig(t)
	srv := start(t, cfg, &syncBuffer{})

	ctl, err := handshake(t, permissiveServer(t, srv), nil, tls11Client)
	if err != nil {
		t.Fatalf("the TLS 1.1 client fails even where TLS 1.1 is allowed: %v", err)
	}
	if v := ctl.ConnectionState().Version; v != tls.VersionTLS11 {
		t.Fatalf("control handshake negotiated %x, want TLS 1.1", v)
	}
	ctl.Close()

	for _, e := range tlsEntries {
		addr := srv.Addr(e.listener)
		old, err := handshake(t, addr, e.upgrade, tls11Client)
		if err == nil {
			old.Close()
			t.Errorf("%s accepted a TLS 1.1 handshake", e.listener)
		} else if !strings.Contains(err.Error(), "remote error: tls: protocol version not supported") {
			t.Errorf("%s refused TLS 1.1 with %v, want the protocol_version alert", e.listener, err)
		}
		c, err := handshake(t, addr, e.upgrade, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Errorf("%s refused TLS 1.2: %v", e.listener, err)
			continue
		}
		if v := c.ConnectionState().Version; v != tls.VersionTLS12 {
			t.Errorf("%s negotiated %x, want TLS 1.2", e.listener, v)
		}
		c.Close()
	}
}

// TestTLS11RefusedToOpenSSL asks OpenSSL's own client for TLS 1.1 (with the security level
// lowered so that OpenSSL itself offers it) on every way into TLS: each handshake fails
// with the protocol_version alert, while the same command succeeds against a server that
// allows TLS 1.1, and TLS 1.2 succeeds.
func TestTLS11RefusedToOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	cfg := testConfig(t)
	srv := start(t, cfg, &syncBuffer{})
	sClient := func(addr net.Addr, starttls string, version string) (string, error) {
		args := []string{"s_client", "-connect", addr.String(), version, "-cipher", "DEFAULT@SECLEVEL=0"}
		if starttls != "" {
			args = append(args, "-starttls", starttls)
		}
		cmd := exec.Command("openssl", args...)
		cmd.Stdin = strings.NewReader("") // hang up after the handshake
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}

	if out, err := sClient(permissiveServer(t, srv), "", "-tls1_1"); err != nil || !strings.Contains(out, "Protocol  : TLSv1.1") {
		t.Fatalf("openssl s_client -tls1_1 fails even where TLS 1.1 is allowed (%v):\n%s", err, out)
	}
	for _, e := range []struct{ listener, starttls string }{
		{IMAPS, ""}, {POP3S, ""}, {IMAP, "imap"}, {POP3, "pop3"},
	} {
		out, err := sClient(srv.Addr(e.listener), e.starttls, "-tls1_1")
		if err == nil || !strings.Contains(out, "alert protocol version") {
			t.Errorf("%s: openssl s_client -tls1_1 (%v):\n%s\nwant a failure with alert protocol version", e.listener, err, out)
		}
		if out, err := sClient(srv.Addr(e.listener), e.starttls, "-tls1_2"); err != nil || !strings.Contains(out, "Protocol  : TLSv1.2") {
			t.Errorf("%s: openssl s_client -tls1_2 failed (%v):\n%s", e.listener, err, out)
		}
	}
}
