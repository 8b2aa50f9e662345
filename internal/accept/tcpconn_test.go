package accept_test

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/accept"
	"github.com/letterbox-mail/letterbox/internal/connlimit"
	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/proxyproto"
	"github.com/letterbox-mail/letterbox/internal/sessions"
	"github.com/letterbox-mail/letterbox/internal/testcert"
	"github.com/letterbox-mail/letterbox/internal/trace"
)

// TestTCPConnThroughTheServersWrappers: a connection accepted through every wrapper
// internal/server puts around a listener (the PROXY protocol, connection limits, metrics, the
// session registry and traces, implicit TLS) still reaches its TCP socket, whose options
// the protocols set.
func TestTCPConnThroughTheServersWrappers(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	// A trusted proxy's header, read beneath everything else, is where the real address
	// comes from: its wrapper is the one nearest the socket.
	var l net.Listener = proxyproto.NewListener(tcp, proxyproto.Options{
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Protocol: "imap", Logger: log})
	l = connlimit.NewListener(l, &connlimit.Limiter{}, nil, "imap", log)
	l = metrics.New().Listener(l, "imap")
	l = trace.NewListener(l, "imap", true, trace.Options{Sessions: sessions.NewRegistry(), Logger: log})
	l = tls.NewListener(l, testcert.Config(t, "localhost"))
	defer l.Close()

	go func() {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err == nil {
			defer c.Close()
			c.Write([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 143\r\n"))
			var b [1]byte
			c.Read(b[:])
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if accept.TCPConn(c) == nil {
		t.Errorf("no TCP connection found beneath %T", c)
	}
	if got := c.RemoteAddr().String(); got != "203.0.113.7:40000" {
		t.Errorf("RemoteAddr %s, want the address the proxy named", got)
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if accept.TCPConn(a) != nil {
		t.Error("a pipe taken for TCP")
	}
}
