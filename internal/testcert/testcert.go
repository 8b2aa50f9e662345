// Package testcert makes throwaway self-signed certificates for tests: TLS listeners on
// loopback (IMAPS, POP3S, STARTTLS/STLS) and certificate files for `serve` to load.
//
// Implementation notes:
//   - Each call makes a fresh P-256 key and a certificate valid from an hour ago for a
//     day, for the given name and 127.0.0.1, with a serial of the current time, so two
//     certificates made in one test (a reload) differ.
//   - Clients in tests do not verify it (InsecureSkipVerify), or compare the name.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// Config is a server tls.Config with one certificate for name.
func Config(t testing.TB, name string) *tls.Config {
	t.Helper()
	der, key := selfSigned(t, name)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// WriteFiles writes a certificate for name and its key as PEM files (the key 0600), as
// tls.cert and tls.key expect them.
func WriteFiles(t testing.TB, name, certPath, keyPath string) {
	t.Helper()
	der, key := selfSigned(t, name)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// selfSigned makes one self-signed certificate (DER) for name and 127.0.0.1, and its key.
func selfSigned(t testing.TB, name string) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{name},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}
