package accept_test

import (
	"crypto/tls"
	"log/slog"
	"net"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/testcert"
	"github.com/letterbox-mail/letterbox/pkg/accept"
	"github.com/letterbox-mail/letterbox/pkg/connlimit"
	"github.com/letterbox-mail/letterbox/pkg/metrics"
	"github.com/letterbox-mail/letterbox/pkg/sessions"
	"github.com/letterbox-mail/letterbox/pkg/trace"
)

// TestTCPConnThroughTheServersWrappers: a connection accepted through every wrapper
// pkg/server puts around a listener (connection limits, metrics, the session registry and
// traces, implicit TLS) still reaches its TCP socket, whose options the protocols set.
func TestTCPConnThroughTheServersWrappers(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	var l net.Listener = connlimit.NewListener(tcp, &connlimit.Limiter{}, nil, "imap", log)
	l = metrics.New().Listener(l, "imap")
	l = trace.NewListener(l, "imap", true, trace.Options{Sessions: sessions.NewRegistry(), Logger: log})
	l = tls.NewListener(l, testcert.Config(t, "localhost"))
	defer l.Close()

	go func() {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err == nil {
			defer c.Close()
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

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if accept.TCPConn(a) != nil {
		t.Error("a pipe taken for TCP")
	}
}
