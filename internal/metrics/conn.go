package metrics

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Listener wraps l so that every connection it accepts is counted as a connection of
// protocol (open now, and in total) and every byte written to it as sent over protocol.
// Wrap the raw listener, beneath any tls.NewListener: the protocols still see *tls.Conn
// on implicit-TLS listeners, and the bytes counted are the bytes on the wire (TLS records
// included). With a nil Recorder it returns l itself.
func (r *Recorder) Listener(l net.Listener, protocol string) net.Listener {
	if r == nil {
		return l
	}
	return &listener{Listener: l, r: r, protocol: protocol,
		sent: r.bytesSent.WithLabelValues(protocol)}
}

type listener struct {
	net.Listener
	r        *Recorder
	protocol string
	sent     prometheus.Counter
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.r.ConnOpened(l.protocol)
	return &conn{Conn: c, l: l}, nil
}

type conn struct {
	net.Conn
	l    *listener
	once sync.Once
	// in and out count this connection's bytes for its session's logout line.
	in, out atomic.Int64
}

// NetConn is the connection beneath, for what looks through wrappers (TCP options).
func (c *conn) NetConn() net.Conn { return c.Conn }

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.l.sent.Add(float64(n))
		c.out.Add(int64(n))
	}
	return n, err
}

// Transferred returns the bytes read from and written to the client so far on the
// connection beneath c, as counted by a Recorder's Listener: on the wire, TLS records
// included. It looks through wrappers that expose what they wrap with a NetConn method
// (*tls.Conn does). ok is false when c did not come from such a Listener.
func Transferred(c net.Conn) (in, out int64, ok bool) {
	for c != nil {
		switch x := c.(type) {
		case *conn:
			return x.in.Load(), x.out.Load(), true
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return 0, 0, false
		}
	}
	return 0, 0, false
}

func (c *conn) Close() error {
	c.once.Do(func() { c.l.r.ConnClosed(c.l.protocol) })
	return c.Conn.Close()
}
