package proxyproto

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultTimeout bounds the reading of a header when Options.Timeout is 0.
const DefaultTimeout = 5 * time.Second

// Options configures a Listener.
type Options struct {
	// Trusted are the networks whose connections may start with a header
	// (proxy.trusted_networks). Empty: nobody's; every header is refused.
	Trusted []netip.Prefix
	// Required refuses a connection from Trusted that does not start with a header
	// (proxy.required).
	Required bool
	// Timeout bounds the reading of the header from a trusted peer; 0 means
	// DefaultTimeout. Without Required, a trusted peer that sends nothing for this long is
	// taken to send no header: on protocols where the server speaks first (IMAP, POP3,
	// LMTP), such a client waits this long for its greeting.
	Timeout time.Duration
	// Protocol names the listener in the log.
	Protocol string
	// Logger receives a warning for each refused connection, at most one every 10 s with
	// the number refused since; nil logs nothing.
	Logger *slog.Logger
}

// ErrUntrusted ends a connection that sent a header without being a trusted proxy.
var ErrUntrusted = errors.New("proxyproto: PROXY protocol header from an untrusted address")

// Listener reads the PROXY protocol header of the connections it accepts from trusted
// proxies, and hands them on as *Conn, reporting the client's address.
//
// From a trusted peer, Accept returns a connection only once its header has been read
// (or, without Options.Required, found absent), within Options.Timeout; a connection with
// a bad header, or with none when one is required, is closed and not returned. The header
// is read before anything else happens on the connection: before the TLS handshake of an
// implicit-TLS listener (wrap this Listener in the tls one) and before any greeting.
//
// From any other peer, the connection is returned at once (the server speaks first on
// IMAP, POP3 and LMTP: it cannot wait to see what the client sends), and the first bytes
// it reads are checked: a header there closes the connection. That check sees a header
// sent in one piece, as proxies send it; a header split over several reads goes to the
// protocol as the garbage it is there. Either way it is never honoured: only the address
// of the peer decides whose header counts.
type Listener struct {
	inner net.Listener
	opts  Options

	start   sync.Once
	ready   chan accepted // connections ready to serve, and temporary accept errors
	stopped chan struct{} // closed when the accept loop has ended; then err is set
	err     error
	done    chan struct{} // closed by Close
	close   sync.Once

	pendingMu sync.Mutex
	pending   map[net.Conn]struct{} // connections whose header is being read; nil once closed

	logMu   sync.Mutex
	lastLog time.Time
	refused int // since lastLog
}

type accepted struct {
	conn net.Conn
	err  error
}

// NewListener wraps inner.
func NewListener(inner net.Listener, opts Options) *Listener {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Listener{inner: inner, opts: opts, ready: make(chan accepted),
		stopped: make(chan struct{}), done: make(chan struct{})}
}

// Addr is the address of the listener beneath.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close closes the listener beneath; connections whose header is still being read are
// closed too.
func (l *Listener) Close() error {
	l.close.Do(func() {
		close(l.done)
		l.pendingMu.Lock()
		for c := range l.pending {
			c.Close()
		}
		l.pending = nil
		l.pendingMu.Unlock()
	})
	return l.inner.Close()
}

// Accept returns the next connection that is ready to be served.
func (l *Listener) Accept() (net.Conn, error) {
	if len(l.opts.Trusted) == 0 {
		// Nobody may send a header: nothing is read ahead, no goroutine needed.
		c, err := l.inner.Accept()
		if err != nil {
			return nil, err
		}
		return l.untrusted(c), nil
	}
	l.start.Do(func() { go l.run() })
	select {
	case a := <-l.ready:
		return a.conn, a.err
	case <-l.stopped:
		return nil, l.err
	}
}

// run accepts from inner until it fails for good: connections from untrusted peers are
// handed on at once, a trusted peer's after its header, read in a goroutine of its own.
func (l *Listener) run() {
	defer close(l.stopped)
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Temporary (fd exhaustion): the caller logs it and backs off before it asks
				// again, and this loop waits for it to ask.
				select {
				case l.ready <- accepted{err: err}:
					continue
				case <-l.done:
				}
			}
			l.err = err
			return
		}
		if !l.trusts(c.RemoteAddr()) {
			l.handOn(l.untrusted(c))
			continue
		}
		if !l.track(c) {
			c.Close()
			continue // closed meanwhile: the next Accept fails
		}
		go func() {
			pc, err := l.handshake(c)
			l.untrack(c)
			if err != nil {
				select {
				case <-l.done: // closed by Close: nothing to report
				default:
					if errors.Is(err, io.EOF) {
						// Closed before sending a byte: a TCP health check (HAProxy's
						// "check"), not a misconfiguration.
						l.opts.Logger.Debug("proxy connection closed before a header", "protocol", l.opts.Protocol,
							"ip", c.RemoteAddr().String())
					} else {
						l.logRefusal(c.RemoteAddr(), err)
					}
				}
				c.Close() // after the log line: a test sees it once the peer sees the close
				return
			}
			l.handOn(pc)
		}()
	}
}

// track registers c as awaiting its header; false once the listener is closed.
func (l *Listener) track(c net.Conn) bool {
	l.pendingMu.Lock()
	defer l.pendingMu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	if l.pending == nil {
		l.pending = make(map[net.Conn]struct{})
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *Listener) untrack(c net.Conn) {
	l.pendingMu.Lock()
	delete(l.pending, c)
	l.pendingMu.Unlock()
}

// handOn gives c to Accept, or closes it if the listener is closed first.
func (l *Listener) handOn(c net.Conn) {
	select {
	case l.ready <- accepted{conn: c}:
	case <-l.done:
		c.Close()
	}
}

// trusts reports whether remote is in Options.Trusted.
func (l *Listener) trusts(remote net.Addr) bool {
	addr, ok := ipOf(remote)
	if !ok {
		return false // a unix socket: no network to trust
	}
	for _, p := range l.opts.Trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func ipOf(a net.Addr) (netip.Addr, bool) {
	if a == nil {
		return netip.Addr{}, false
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return ap.Addr().Unmap(), ap.Addr().IsValid()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// handshake reads the header of a trusted peer's connection under the deadline.
func (l *Listener) handshake(c net.Conn) (*Conn, error) {
	if err := c.SetReadDeadline(time.Now().Add(l.opts.Timeout)); err != nil {
		return nil, fmt.Errorf("proxyproto: %w", err)
	}
	br := bufio.NewReaderSize(c, 256) // a v1 header, a v2 one with its addresses
	h, err := ReadHeader(br)
	var ne net.Error
	switch {
	case err == nil:
	case errors.Is(err, ErrNoHeader), !l.opts.Required && errors.As(err, &ne) && ne.Timeout() && br.Buffered() == 0:
		// Nothing, or something else than a header, within the deadline.
		if l.opts.Required {
			return nil, errors.New("proxyproto: no PROXY protocol header from a trusted proxy, and proxy.required is set")
		}
		h = Header{}
	default:
		return nil, err
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("proxyproto: %w", err)
	}
	pc := &Conn{Conn: c, header: h}
	if br.Buffered() > 0 {
		pc.br = br
	}
	if h.HasAddresses() {
		pc.remote = &Addr{TCPAddr: *net.TCPAddrFromAddrPort(h.Source), proxy: c.RemoteAddr()}
		pc.local = net.TCPAddrFromAddrPort(h.Destination)
	}
	return pc, nil
}

// untrusted wraps the connection of a peer that may not send a header.
func (l *Listener) untrusted(c net.Conn) net.Conn {
	return &checkedConn{Conn: c, l: l}
}

// logRefusal logs a refused connection, at most once every 10 s.
func (l *Listener) logRefusal(remote net.Addr, err error) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	l.refused++
	now := time.Now()
	if now.Sub(l.lastLog) < 10*time.Second {
		return
	}
	ip := ""
	if remote != nil {
		ip = remote.String()
	}
	l.opts.Logger.Warn("connection refused: PROXY protocol", "protocol", l.opts.Protocol, "ip", ip,
		"err", err, "refused", l.refused)
	l.lastLog, l.refused = now, 0
}

// Addr is a client's address as a trusted proxy's header named it: a TCP address (its
// String is the client's host:port), and the proxy's own. A consumer that must tell a
// client on this host from one a proxy on this host speaks for asks for the method Proxy
// (internal/auth and internal/connlimit do, to keep loopback's exemptions to local processes).
type Addr struct {
	net.TCPAddr
	proxy net.Addr
}

// Proxy is the address of the proxy that named the client.
func (a *Addr) Proxy() net.Addr { return a.proxy }

// Conn is a connection from a trusted proxy. RemoteAddr (an *Addr) and LocalAddr are the
// client's address and the address it connected to on the proxy, as the header names
// them (the connection's own when it names none). Reads start with what followed the header.
type Conn struct {
	net.Conn
	br            *bufio.Reader // bytes read past the header; nil once drained
	header        Header
	remote, local net.Addr // nil: the connection's own
}

// Header is the header the connection started with (the zero Header if it had none).
func (c *Conn) Header() Header { return c.header }

// NetConn is the connection from the proxy (internal/metrics, internal/sessions and internal/trace look
// through it).
func (c *Conn) NetConn() net.Conn { return c.Conn }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// LocalAddr is the address the client connected to.
func (c *Conn) LocalAddr() net.Addr {
	if c.local != nil {
		return c.local
	}
	return c.Conn.LocalAddr()
}

func (c *Conn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br = nil
	}
	return c.Conn.Read(p)
}

// checkedConn is a connection from a peer that may not send a header: the first bytes it
// reads are checked for one.
type checkedConn struct {
	net.Conn
	l       *Listener
	checked bool
	// rest holds what the first read brought beyond a caller's buffer smaller than a
	// signature, handed out before the connection is read again.
	rest []byte
}

// NetConn is the connection beneath.
func (c *checkedConn) NetConn() net.Conn { return c.Conn }

// minCheck is how much the first read asks for, whatever the caller's buffer, so that a
// reader that starts with one octet (IMAP waiting for a command) still shows the check a
// whole signature (v2's is 12 octets, v1's "PROXY " 6), and that a v1 header (at most 107
// octets) and the little a client sends with it are read off before the connection is
// closed: closed over unread data, it would end in a reset instead of a plain close.
const minCheck = 256

func (c *checkedConn) Read(p []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	if c.checked {
		return c.Conn.Read(p)
	}
	buf := p
	if len(p) < minCheck {
		buf = make([]byte, minCheck)
	}
	n, err := c.Conn.Read(buf)
	if n == 0 {
		return n, err
	}
	c.checked = true
	if startsWithHeader(buf[:n]) {
		c.Conn.Close()
		c.l.logRefusal(c.Conn.RemoteAddr(), ErrUntrusted)
		return 0, ErrUntrusted
	}
	if len(p) < minCheck {
		m := copy(p, buf[:n])
		if m < n {
			c.rest = append([]byte(nil), buf[m:n]...)
			return m, nil // an error comes again from the next read of the connection
		}
		return m, err
	}
	return n, err
}

// startsWithHeader reports whether b begins with the signature of a header.
func startsWithHeader(b []byte) bool {
	return bytes.HasPrefix(b, prefixV1) || bytes.HasPrefix(b, signatureV2)
}
