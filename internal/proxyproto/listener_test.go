package proxyproto

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/testcert"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// listen starts a Listener on loopback with opts, closed at cleanup.
func listen(t *testing.T, opts Options) *Listener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, opts)
	t.Cleanup(func() { l.Close() })
	return l
}

// dial connects to l and writes out; the connection is closed at cleanup.
func dial(t *testing.T, l net.Listener, out string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if out != "" {
		if _, err := io.WriteString(c, out); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// acceptOne returns the next connection l hands on.
func acceptOne(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll reads c until EOF, failing after 10 s (a hang guard, not a timing assertion).
func readAll(t *testing.T, c net.Conn) (string, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// closed reports whether a read error says the peer closed the connection: EOF, or a
// reset when it closed with bytes of ours unread.
func closed(err error) bool {
	return err == nil || errors.Is(err, syscall.ECONNRESET)
}

func TestListenerTrustedHeaders(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		remote       string
		local        string
	}{
		{"v1", "PROXY TCP4 203.0.113.7 198.51.100.1 56324 993\r\n", "203.0.113.7:56324", "198.51.100.1:993"},
		{"v2", string(v2(0x21, famTCP6, v2Addrs(client6, server6))), "[2001:db8::7]:56324", "[2001:db8::1]:993"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, Options{Trusted: loopback, Required: true})
			client := dial(t, l, tc.header+"a1 CAPABILITY\r\n")
			c := acceptOne(t, l)
			if got := c.RemoteAddr().String(); got != tc.remote {
				t.Errorf("RemoteAddr = %s, want the client's %s", got, tc.remote)
			}
			if got := c.LocalAddr().String(); got != tc.local {
				t.Errorf("LocalAddr = %s, want %s", got, tc.local)
			}
			if a, ok := c.RemoteAddr().(*Addr); !ok || a.Network() != "tcp" || a.Proxy().String() != client.LocalAddr().String() {
				t.Errorf("RemoteAddr is %T %v, want an *Addr naming the proxy %s", c.RemoteAddr(), c.RemoteAddr(), client.LocalAddr())
			}
			if pc, ok := c.(*Conn); !ok || pc.Header().Version == 0 {
				t.Errorf("accepted %T without its header", c)
			}
			client.(*net.TCPConn).CloseWrite()
			if got, err := readAll(t, c); err != nil || got != "a1 CAPABILITY\r\n" {
				t.Errorf("after the header the server read %q, %v; want the client's command", got, err)
			}
		})
	}
}

// TestListenerLocal: a v2 LOCAL header (a health check) keeps the proxy's own address.
func TestListenerLocal(t *testing.T) {
	l := listen(t, Options{Trusted: loopback, Required: true})
	client := dial(t, l, string(v2(0x20, famUnspec, nil)))
	c := acceptOne(t, l)
	if c.RemoteAddr().String() != client.LocalAddr().String() {
		t.Errorf("RemoteAddr = %s, want the proxy's own %s", c.RemoteAddr(), client.LocalAddr())
	}
}

// TestListenerRequired: with Required, a trusted peer that sends something else than a
// header, or nothing within the timeout, is closed and never handed on; the next
// connection, with a header, is.
func TestListenerRequired(t *testing.T) {
	l := listen(t, Options{Trusted: loopback, Required: true, Timeout: 50 * time.Millisecond})
	first := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		first <- c
	}()
	for _, out := range []string{"a1 LOGIN ann secret\r\n", "", "PROXY TCP4 bogus\r\n"} {
		refused := dial(t, l, out)
		if got, err := readAll(t, refused); !closed(err) || got != "" {
			t.Errorf("a trusted peer sending %q: read %q, %v; want the connection closed", out, got, err)
		}
	}
	dial(t, l, "PROXY TCP4 203.0.113.7 198.51.100.1 56324 993\r\n")
	c := <-first
	if c == nil || c.RemoteAddr().String() != "203.0.113.7:56324" {
		t.Fatalf("the first connection handed on is %v, want the one with a header", c)
	}
	c.Close()
}

// TestListenerOptional: without Required, a trusted peer's connection without a header is
// served as it is: a client that speaks first (TLS) at once, with its bytes intact, and a
// silent one once the timeout has passed.
func TestListenerOptional(t *testing.T) {
	l := listen(t, Options{Trusted: loopback, Timeout: 20 * time.Millisecond})
	client := dial(t, l, "\x16\x03\x01hello")
	c := acceptOne(t, l)
	if c.RemoteAddr().String() != client.LocalAddr().String() {
		t.Errorf("RemoteAddr = %s, want the peer's own %s", c.RemoteAddr(), client.LocalAddr())
	}
	client.(*net.TCPConn).CloseWrite()
	if got, err := readAll(t, c); err != nil || got != "\x16\x03\x01hello" {
		t.Errorf("read %q, %v; want the client's bytes intact", got, err)
	}

	silent := dial(t, l, "")
	c = acceptOne(t, l)
	if c.RemoteAddr().String() != silent.LocalAddr().String() {
		t.Errorf("RemoteAddr = %s, want %s", c.RemoteAddr(), silent.LocalAddr())
	}
	// The header deadline is gone: the connection is usable both ways.
	go io.WriteString(c, "* OK greeting\r\n")
	buf := make([]byte, 15)
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(silent, buf); err != nil || string(buf) != "* OK greeting\r\n" {
		t.Errorf("greeting %q, %v", buf, err)
	}
	io.WriteString(silent, "a1 NOOP\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 9)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "a1 NOOP\r\n" {
		t.Errorf("after a header timeout, read %q, %v", got, err)
	}
}

// TestListenerUntrusted: a header from an address outside Trusted closes the connection at
// the first read; other connections from there are served unchanged.
func TestListenerUntrusted(t *testing.T) {
	// A reader may start with a buffer smaller than a signature: IMAP waits for a command
	// with a one-octet read.
	for _, size := range []int{64, 1} {
		for _, trusted := range [][]netip.Prefix{nil, {netip.MustParsePrefix("192.0.2.0/24")}} {
			l := listen(t, Options{Trusted: trusted})
			for _, header := range []string{
				"PROXY TCP4 203.0.113.7 198.51.100.1 56324 993\r\n",
				string(v2(0x21, famTCP4, v2Addrs(client4, server4))),
			} {
				client := dial(t, l, header)
				c := acceptOne(t, l)
				if c.RemoteAddr().String() != client.LocalAddr().String() {
					t.Errorf("RemoteAddr = %s: an untrusted header was honoured", c.RemoteAddr())
				}
				buf := make([]byte, size)
				if n, err := c.Read(buf); !errors.Is(err, ErrUntrusted) {
					t.Errorf("trusted %v, %d-octet read: reading %q: %d, %v; want ErrUntrusted", trusted, size, header, n, err)
				}
				if got, _ := readAll(t, client); got != "" {
					t.Errorf("the client read %q from a refused connection", got)
				}
			}
			const command = "a1 LOGIN ann secret\r\n"
			client := dial(t, l, command)
			c := acceptOne(t, l)
			client.(*net.TCPConn).CloseWrite()
			var got []byte
			buf := make([]byte, size)
			for {
				n, err := c.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					if err != io.EOF {
						t.Errorf("%d-octet reads of an untrusted client's command: %v", size, err)
					}
					break
				}
			}
			if string(got) != command {
				t.Errorf("%d-octet reads of an untrusted client's command: %q", size, got)
			}
		}
	}
}

// TestListenerTLS: beneath tls.NewListener, the header is read before the handshake, the
// *tls.Conn reports the client's address, and the chain of NetConn methods reaches the
// *Conn (internal/metrics, internal/sessions and internal/trace walk it).
func TestListenerTLS(t *testing.T) {
	l := listen(t, Options{Trusted: loopback, Required: true})
	tl := tls.NewListener(l, testcert.Config(t, "localhost"))
	raw := dial(t, l, "PROXY TCP4 203.0.113.7 198.51.100.1 56324 993\r\n")
	errc := make(chan error, 1)
	go func() {
		tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			errc <- err
			return
		}
		_, err := io.WriteString(tc, "hello")
		tc.Close()
		errc <- err
	}()
	c := acceptOne(t, tl)
	tc := c.(*tls.Conn)
	if got, err := readAll(t, tc); err != nil || got != "hello" {
		t.Errorf("over TLS: %q, %v", got, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("client: %v", err)
	}
	if got := tc.RemoteAddr().String(); got != "203.0.113.7:56324" {
		t.Errorf("tls.Conn RemoteAddr = %s", got)
	}
	var found bool
	for nc := net.Conn(tc); nc != nil && !found; {
		switch v := nc.(type) {
		case *Conn:
			found = true
		case interface{ NetConn() net.Conn }:
			nc = v.NetConn()
		default:
			nc = nil
		}
	}
	if !found {
		t.Error("the NetConn chain from the *tls.Conn does not reach the *Conn")
	}
}

// TestListenerClose: Close ends Accept with net.ErrClosed, and a connection whose header is
// still awaited is closed.
func TestListenerClose(t *testing.T) {
	l := listen(t, Options{Trusted: loopback, Required: true, Timeout: time.Hour})
	pending := dial(t, l, "PROXY TCP4 203.0.113.7")
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	l.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if got, err := readAll(t, pending); !closed(err) || got != "" {
		t.Errorf("the connection awaiting its header: read %q, %v; want it closed", got, err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

// syncBuffer is a log destination safe for the listener's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestListenerLogsRefusals: a trusted peer that closes before sending anything (a TCP
// health check) is not warned about; a bad header is, with the peer's address and the
// reason, and refusals in a burst are logged once with their count.
func TestListenerLogsRefusals(t *testing.T) {
	logs := &syncBuffer{}
	l := listen(t, Options{Trusted: loopback, Required: true, Protocol: "imap",
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	go l.Accept() // starts the accept loop; nothing is handed on

	check := dial(t, l, "")
	check.(*net.TCPConn).CloseWrite()
	readAll(t, check)
	if got := logs.String(); got != "" {
		t.Errorf("a health check was logged: %s", got)
	}
	for range 3 {
		readAll(t, dial(t, l, "PROXY TCP4 203.0.113.7 198.51.100.1 056324 993\r\n"))
	}
	got := logs.String()
	if strings.Count(got, "level=WARN") != 1 || !strings.Contains(got, "msg=\"connection refused: PROXY protocol\"") ||
		!strings.Contains(got, "protocol=imap") || !strings.Contains(got, "ip=127.0.0.1:") || !strings.Contains(got, "not a port") {
		t.Errorf("log after three bad headers:\n%s\nwant one warning naming the listener, the peer and the reason", got)
	}
}
