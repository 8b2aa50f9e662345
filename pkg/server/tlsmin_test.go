package server

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// TestTLS12Minimum checks that the implicit-TLS listeners refuse TLS 1.1 and accept 1.2.
func TestTLS12Minimum(t *testing.T) {
	cfg := testConfig(t)
	srv := start(t, cfg, &syncBuffer{})
	for _, name := range []string{IMAPS, POP3S} {
		addr := srv.Addr(name).String()
		dialer := &net.Dialer{Timeout: 10 * time.Second}
		old, err := tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{
			InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			old.Close()
			t.Errorf("%s accepted a TLS 1.1 handshake", name)
		}
		c, err := tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{
			InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Errorf("%s refused TLS 1.2: %v", name, err)
			continue
		}
		if v := c.ConnectionState().Version; v != tls.VersionTLS12 {
			t.Errorf("%s negotiated %x, want TLS 1.2", name, v)
		}
		c.Close()
	}
}
