package imap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/letterbox-mail/letterbox/pkg/auth"
)

func TestUnknownCommandsBeforeLogin(t *testing.T) {
	e := newEnv(t)
	c := e.raw()
	if _, status := c.cmd("FROBNICATE"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("unknown command: %s", status)
	}
	if _, status := c.cmd("UID FROB 1"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("unknown UID command: %s", status)
	}
	// Pipelined: the answers keep the order of the commands.
	c.send("P1 NOOP\r\nP2 XYZZY\r\nP3 CAPABILITY")
	var tagged []string
	for len(tagged) < 3 {
		if l := c.line(); !strings.HasPrefix(l, "* ") {
			tagged = append(tagged, strings.Join(strings.Fields(l)[:2], " "))
		}
	}
	if got := strings.Join(tagged, ","); got != "P1 OK,P2 BAD,P3 OK" {
		t.Errorf("pipelined answers %s", got)
	}
	// A literal is not mistaken for a command, and LOGIN still works.
	c.send(`L1 LOGIN {%d}`, len(testUser))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("literal: %q", l)
	}
	c.send(`%s {%d}`, testUser, len(testPassword))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("literal: %q", l)
	}
	c.send("%s", testPassword)
	if l := c.line(); !strings.HasPrefix(l, "L1 OK") {
		t.Fatalf("LOGIN with literals: %q", l)
	}
	c.ok("SELECT INBOX")

	// The fourth unknown command before login ends the connection.
	c = e.raw()
	for i := range 3 {
		if _, status := c.cmd("BOGUS%d", i); !strings.HasPrefix(status, "BAD") {
			t.Fatalf("unknown command %d: %s", i, status)
		}
	}
	c.send("X BOGUS")
	c.waitFor(`^\* BYE`)
}

func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestStartTLS(t *testing.T) {
	cfg := testTLSConfig(t)
	e := newEnv(t, func(o *Options, _ *mailStore) {
		o.TLSConfig = cfg
		o.Auth.Plaintext = auth.PlaintextPolicy{Never: true}
	})
	c := e.raw()
	caps := c.ok("CAPABILITY")[0]
	if !strings.Contains(caps, "STARTTLS") || !strings.Contains(caps, "LOGINDISABLED") {
		t.Fatalf("CAPABILITY before STARTTLS: %q", caps)
	}
	c.conn.Close()

	cl, err := imapclient.DialStartTLS(e.addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer cl.Close()
	caps2, err := cl.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if caps2.Has("STARTTLS") || caps2.Has("LOGINDISABLED") || !caps2.Has("AUTH=PLAIN") {
		t.Errorf("CAPABILITY after STARTTLS: %v", caps2)
	}
	if err := cl.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("LOGIN after STARTTLS: %v", err)
	}
	if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestImplicitTLS(t *testing.T) {
	cfg := testTLSConfig(t)
	e := newEnv(t, func(o *Options, _ *mailStore) {
		o.TLSConfig = cfg
		o.Auth.Plaintext = auth.PlaintextPolicy{Never: true}
	})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(ln)
	cl, err := imapclient.DialTLS(ln.Addr().String(), &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	caps, err := cl.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if caps.Has("STARTTLS") || caps.Has("LOGINDISABLED") {
		t.Errorf("CAPABILITY on implicit TLS: %v", caps)
	}
	if err := cl.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("LOGIN on implicit TLS: %v", err)
	}
}
