package metrics

import (
	"errors"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/letterbox-mail/letterbox/pkg/auth"
	"github.com/letterbox-mail/letterbox/store"
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
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.l.sent.Add(float64(n))
	}
	return n, err
}

func (c *conn) Close() error {
	c.once.Do(func() { c.l.r.ConnClosed(c.l.protocol) })
	return c.Conn.Close()
}

// DeliveryOutcome names the outcome of a store delivery (store.Deliver, DeliverSpooled):
// one of the Outcome* values.
func DeliveryOutcome(err error) string {
	switch {
	case err == nil:
		return OutcomeDelivered
	case errors.Is(err, store.ErrNoSuchAccount):
		return OutcomeNoSuchUser
	case errors.Is(err, store.ErrOverQuota):
		return OutcomeOverQuota
	case errors.Is(err, store.ErrTooBig):
		return OutcomeTooBig
	case errors.Is(err, store.ErrNotMessage):
		return OutcomeNotMessage
	case errors.Is(err, store.ErrNoSuchMailbox):
		return OutcomeNoSuchMbox
	case errors.Is(err, store.ErrTemporary):
		return OutcomeTemporary
	}
	return OutcomeFailed
}

// LoginFailureReason names why pkg/auth refused a login: one of the Reason* values.
func LoginFailureReason(err error) string {
	switch {
	case errors.Is(err, auth.ErrFailed):
		return ReasonCredentials
	case errors.Is(err, auth.ErrProtocolNotAllowed):
		return ReasonProtocol
	case errors.Is(err, auth.ErrDisabled):
		return ReasonDisabled
	case errors.Is(err, auth.ErrBlocked):
		return ReasonBlocked
	}
	return ReasonOther
}
