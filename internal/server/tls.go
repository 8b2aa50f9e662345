package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/letterbox-mail/letterbox/internal/config"
)

// Self-signed certificate files, under the data directory.
const (
	selfSignedDir  = "tls"
	selfSignedCert = "self-signed.crt"
	selfSignedKey  = "self-signed.key"
	// selfSignedLifetime is how long a generated certificate is valid; it is renewed when
	// less than selfSignedRenew remains.
	selfSignedLifetime = 5 * 365 * 24 * time.Hour
	selfSignedRenew    = 30 * 24 * time.Hour
)

// TLSConfig builds the TLS configuration from cfg: the PEM files tls.cert and tls.key, or
// else (tls.self_signed) a self-signed certificate generated once under the data directory
// and reused. It returns nil, nil when no TLS is configured.
//
// The certificate is served through GetCertificate from an atomically swapped pointer (the
// Certificates list stays empty: with a non-empty list Go would ignore GetCertificate for
// clients that send no SNI), so that (*Server).ReloadTLS can replace it without touching
// sessions that are already established.
func TLSConfig(cfg *config.Config) (*tls.Config, error) {
	c, _, err := newTLS(cfg)
	return c, err
}

// certSource holds the certificate that new TLS handshakes get. Invariant: once built, cur
// is never nil; a failed reload leaves it as it was.
type certSource struct {
	cfg    *config.Config
	reload sync.Mutex // one reload at a time (a self-signed renewal writes files)
	cur    atomic.Pointer[tls.Certificate]
}

func (c *certSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// newTLS builds the configuration and the certificate source behind it; nil, nil, nil when
// no TLS is configured.
func newTLS(cfg *config.Config) (*tls.Config, *certSource, error) {
	cert, err := loadCertificate(cfg)
	if err != nil || cert == nil {
		return nil, nil, err
	}
	src := &certSource{cfg: cfg}
	src.cur.Store(cert)
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: src.getCertificate,
	}, src, nil
}

// loadCertificate reads the configured certificate; nil, nil when no TLS is configured.
func loadCertificate(cfg *config.Config) (*tls.Certificate, error) {
	var cert tls.Certificate
	var err error
	switch {
	case cfg.TLS.Cert != "" || cfg.TLS.Key != "":
		cert, err = tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: loading %s and %s: %w", cfg.TLS.Cert, cfg.TLS.Key, err)
		}
	case cfg.TLS.SelfSigned:
		cert, err = selfSigned(filepath.Join(cfg.Data, selfSignedDir), cfg.Hostname)
		if err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: parsing the certificate: %w", err)
		}
	}
	return &cert, nil
}

// ReloadTLS reads the certificate again (tls.cert and tls.key; with tls.self_signed the
// saved self-signed certificate, renewed if it is about to expire) and serves it to every
// handshake from now on. Sessions already established keep theirs and are not interrupted.
// On error the old certificate stays in use and the error is returned. The outcome is
// logged. `letterbox serve` calls it on SIGHUP.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		s.log.Info("tls reload: no TLS configured, nothing to reload")
		return nil
	}
	s.certs.reload.Lock()
	defer s.certs.reload.Unlock()
	cert, err := loadCertificate(s.certs.cfg)
	if err == nil && cert == nil {
		err = errors.New("tls: no certificate configured")
	}
	if err != nil {
		s.log.Error("tls reload failed; the previous certificate stays in use", "err", err)
		return fmt.Errorf("reloading the TLS certificate: %w", err)
	}
	s.certs.cur.Store(cert)
	attrs := []any{}
	if leaf := cert.Leaf; leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.CommonName, "serial", leaf.SerialNumber.Text(16),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	s.log.Info("tls certificate reloaded", attrs...)
	return nil
}

// selfSigned loads the certificate in dir if it is still good for hostname, else generates
// and saves a new one: ECDSA P-256, for hostname, localhost, 127.0.0.1 and ::1.
func selfSigned(dir, hostname string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, selfSignedCert), filepath.Join(dir, selfSignedKey)
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && stillGood(cert, hostname) {
		return cert, nil
	}
	certPEM, keyPEM, err := generateSelfSigned(hostname, time.Now())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: generating a self-signed certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func stillGood(cert tls.Certificate, hostname string) bool {
	if len(cert.Certificate) == 0 {
		return false
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return false
	}
	return time.Until(leaf.NotAfter) > selfSignedRenew && leaf.VerifyHostname(hostname) == nil
}

func generateSelfSigned(hostname string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	names := []string{"localhost"}
	if hostname != "" && hostname != "localhost" && net.ParseIP(hostname) == nil {
		names = append([]string{hostname}, names...)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"Letterbox self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	if ip := net.ParseIP(hostname); ip != nil && !ip.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// writeAtomic writes a file through a temporary file and a rename, so that a crash never
// leaves half a key behind.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp, perm)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tls: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}
