package server

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// servedCert is the certificate cfg gives a handshake without SNI.
func servedCert(t *testing.T, cfg *tls.Config) *tls.Certificate {
	t.Helper()
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || cert == nil {
		t.Fatalf("GetCertificate: %v, %v", cert, err)
	}
	return cert
}

// writeCert writes a fresh self-signed certificate for name to certPath and keyPath.
func writeCert(t *testing.T, name, certPath, keyPath string) {
	t.Helper()
	certPEM, keyPEM, err := generateSelfSigned(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tlsSession is a client on an implicit-TLS listener, past the greeting.
type tlsSession struct {
	conn *tls.Conn
	r    *bufio.Reader
}

func dialTLSSession(t *testing.T, addr string) *tlsSession {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	s := &tlsSession{conn: c, r: bufio.NewReader(c)}
	s.line(t) // greeting
	return s
}

func (s *tlsSession) line(t *testing.T) string {
	t.Helper()
	l, err := s.r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading: %v (got %q)", err, l)
	}
	return l
}

// subject is the common name of the certificate the server presented.
func (s *tlsSession) subject() string {
	return s.conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestReloadTLS replaces the certificate files under a running server: after ReloadTLS new
// handshakes (IMAPS and POP3S) get the new certificate, a session opened before goes on
// working, and a broken file is refused with the previous certificate kept.
func TestReloadTLS(t *testing.T) {
	cfg := testConfig(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, "a.test", certPath, keyPath)
	cfg.TLS.SelfSigned = false
	cfg.TLS.Cert, cfg.TLS.Key = certPath, keyPath
	log := &syncBuffer{}
	srv := start(t, cfg, log)

	imapOld := dialTLSSession(t, srv.Addr(IMAPS).String())
	pop3Old := dialTLSSession(t, srv.Addr(POP3S).String())
	for _, s := range []*tlsSession{imapOld, pop3Old} {
		if got := s.subject(); got != "a.test" {
			t.Fatalf("served %q before the reload, want a.test", got)
		}
	}

	writeCert(t, "b.test", certPath, keyPath)
	if err := srv.ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS: %v", err)
	}
	for _, name := range []string{IMAPS, POP3S} {
		if got := dialTLSSession(t, srv.Addr(name).String()).subject(); got != "b.test" {
			t.Errorf("%s served %q after the reload, want b.test", name, got)
		}
	}
	// STARTTLS on the plain IMAP listener uses the same configuration.
	if got := startTLSSubject(t, srv.Addr(IMAP).String()); got != "b.test" {
		t.Errorf("IMAP STARTTLS served %q after the reload, want b.test", got)
	}
	// And STLS on the plain POP3 listener.
	stls, err := handshake(t, srv.Addr(POP3), func(t *testing.T, c net.Conn) { startTLSCommand(t, c, "STLS", "+OK") },
		&tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("POP3 STLS after the reload: %v", err)
	}
	if got := stls.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "b.test" {
		t.Errorf("POP3 STLS served %q after the reload, want b.test", got)
	}
	stls.Close()
	// The sessions opened before the reload were not dropped.
	if _, err := imapOld.conn.Write([]byte("a1 NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	if l := imapOld.line(t); !strings.HasPrefix(l, "a1 OK") {
		t.Errorf("old IMAPS session: NOOP answered %q", l)
	}
	if _, err := pop3Old.conn.Write([]byte("CAPA\r\n")); err != nil {
		t.Fatal(err)
	}
	if l := pop3Old.line(t); !strings.HasPrefix(l, "+OK") {
		t.Errorf("old POP3S session: CAPA answered %q", l)
	}
	if !strings.Contains(log.String(), "tls certificate reloaded") {
		t.Errorf("reload not logged:\n%s", log)
	}

	// A broken certificate file: an error, and b.test goes on being served.
	if err := os.WriteFile(certPath, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.ReloadTLS(); err == nil {
		t.Error("ReloadTLS accepted a broken certificate file")
	}
	if got := dialTLSSession(t, srv.Addr(IMAPS).String()).subject(); got != "b.test" {
		t.Errorf("after a failed reload IMAPS served %q, want b.test (the previous one)", got)
	}
	if !strings.Contains(log.String(), "tls reload failed") {
		t.Errorf("failed reload not logged:\n%s", log)
	}
	// A missing key file, likewise.
	os.Remove(keyPath)
	writeCert(t, "c.test", certPath, filepath.Join(dir, "elsewhere.pem"))
	if err := srv.ReloadTLS(); err == nil {
		t.Error("ReloadTLS accepted a missing key file")
	}
	if got := dialTLSSession(t, srv.Addr(POP3S).String()).subject(); got != "b.test" {
		t.Errorf("after a failed reload POP3S served %q, want b.test", got)
	}
}

// startTLSSubject runs IMAP STARTTLS on addr and returns the certificate's common name.
func startTLSSubject(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("s1 STARTTLS\r\n")); err != nil {
		t.Fatal(err)
	}
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "s1 OK") {
		t.Fatalf("STARTTLS answered %q, %v", l, err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestReloadTLSSelfSigned keeps the saved self-signed certificate, and a server without
// TLS reloads nothing without error.
func TestReloadTLSSelfSigned(t *testing.T) {
	cfg := testConfig(t)
	srv := start(t, cfg, &syncBuffer{})
	before := servedCert(t, srv.TLSConfig()).Certificate[0]
	if err := srv.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if after := servedCert(t, srv.TLSConfig()).Certificate[0]; string(after) != string(before) {
		t.Error("a reload replaced a self-signed certificate that was still good")
	}

	plain := testConfig(t)
	plain.TLS.SelfSigned = false
	plain.IMAPS.Addr, plain.POP3S.Addr = "", ""
	if err := start(t, plain, &syncBuffer{}).ReloadTLS(); err != nil {
		t.Errorf("ReloadTLS without TLS: %v", err)
	}
}
