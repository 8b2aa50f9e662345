// Package trace writes wire traces: with `letterbox serve --trace DIR` (trace.dir) every
// IMAP, POP3 and LMTP session gets one transcript file in DIR, with a header (protocol,
// session ID, addresses, start time), every line in both directions with a timestamp and a
// direction marker (C: client, S: server), events (-- user alice, -- mailbox INBOX, TLS)
// and the end time. The same listener wrapper registers every session in a
// sessions.Registry, traced or not.
//
// Implementation notes:
//
//   - NewListener wraps a protocol's raw listener, beneath any tls.NewListener, so it is the
//     same for every protocol (LMTP's go-smtp server included) and the protocols keep
//     seeing *tls.Conn. Conn records what it reads as C: and what it writes as S:; a
//     write is recorded before it is sent, so a client's answer to it can never be
//     recorded first.
//   - Credentials never reach the file. A small per-protocol filter follows the dialogue
//     line by line and masks them as "****": POP3 PASS, the APOP digest, AUTH initial
//     responses and every SASL response line until the server's verdict; IMAP LOGIN's
//     password (atom, quoted string or literal, the user name stays), AUTHENTICATE's
//     initial response and continuation lines until the tagged answer; LMTP AUTH likewise.
//   - Literals (IMAP {n}, LMTP BDAT) and bodies (POP3 RETR, TOP and other multi-line
//     answers, LMTP DATA) are written up to Options.MaxLiteral bytes each, then summed up
//     as "[... n more bytes]". Lines longer than maxLine are cut the same way.
//   - TLS: after a successful STARTTLS/STLS, and from the start on an implicit-TLS
//     listener, the raw stream is ciphertext and is not written (a TLS record at the start
//     of a read is taken as the sign too, so ciphertext never reaches the file even if a
//     filter missed the switch). A protocol that owns its TLS layer hands the *tls.Conn to
//     Cleartext and the decrypted stream is traced from then on; POP3 and IMAP both do
//     (IMAP does its handshakes itself, in front of imapserver), LMTP has no TLS.
//     Traces are meant for plaintext test setups on loopback.
//   - A trace is flushed after every read and write, so the API and the inspector can show
//     a live session; a failure to write is logged once and ends that trace, never the
//     session.
//   - File names sort by start time and are unique: 20261122T064001.123Z-imap-17.log
//     (created with O_EXCL; a clash gets a suffix). Files are 0600: they hold mail.
package trace

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/letterbox-mail/letterbox/internal/sessions"
)

// DefaultMaxLiteral is how many bytes of each literal or message body a trace shows when
// Options.MaxLiteral is 0.
const DefaultMaxLiteral = 4096

// Options configures NewListener.
type Options struct {
	// Dir is where the transcripts go; "" traces nothing (sessions are still registered).
	// It must exist.
	Dir string
	// MaxLiteral is how many bytes of each literal or message body are written; 0 means
	// DefaultMaxLiteral, a negative value none.
	MaxLiteral int
	// Sessions registers every accepted connection. Required.
	Sessions *sessions.Registry
	Logger   *slog.Logger
	// Now is the clock of the timestamps; nil means time.Now.
	Now func() time.Time
}

// NewListener wraps the raw listener l of protocol ("imap", "pop3" or "lmtp"): every
// connection it accepts is registered in opts.Sessions until closed, and traced into
// opts.Dir if set. implicitTLS says that l will be wrapped by tls.NewListener.
func NewListener(l net.Listener, protocol string, implicitTLS bool, opts Options) net.Listener {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch {
	case opts.MaxLiteral == 0:
		opts.MaxLiteral = DefaultMaxLiteral
	case opts.MaxLiteral < 0:
		opts.MaxLiteral = 0
	}
	return &listener{Listener: l, protocol: protocol, implicitTLS: implicitTLS, opts: opts}
}

type listener struct {
	net.Listener
	protocol    string
	implicitTLS bool
	opts        Options
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	start := l.opts.Now()
	entry := l.opts.Sessions.Add(sessions.Session{Protocol: l.protocol, Remote: addrString(c.RemoteAddr()),
		Start: start, TLS: l.implicitTLS})
	tc := &Conn{Conn: c, entry: entry}
	tc.tls.Store(l.implicitTLS)
	if l.opts.Dir != "" {
		t, err := create(l.opts, l.protocol, entry.ID(), c, start, l.implicitTLS)
		if err != nil {
			l.opts.Logger.Warn("trace: cannot create the transcript; session not traced", "err", err)
		} else {
			tc.t = t
			entry.SetTrace(t.name)
			entry.OnChange(t.event)
		}
	}
	return tc, nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Conn is an accepted connection: registered as a session, and traced if a directory is
// set. It is what NewListener's Accept returns.
type Conn struct {
	net.Conn
	entry *sessions.Entry
	t     *transcript // nil: not traced
	tls   atomic.Bool // the raw stream is TLS now
	once  sync.Once
}

// NetConn is the connection beneath the trace (metrics.Transferred looks through it).
func (c *Conn) NetConn() net.Conn { return c.Conn }

// SessionEntry is the connection's entry in the session registry (sessions.Of finds it).
func (c *Conn) SessionEntry() *sessions.Entry { return c.entry }

// TraceName is the name of the connection's transcript file, "" if it is not traced.
func (c *Conn) TraceName() string {
	if c.t == nil {
		return ""
	}
	return c.t.name
}

func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if n >= 2 && p[0] == tlsHandshakeRecord && p[1] == 3 && !c.tls.Load() && c.t.awaitingCommand() {
			// A TLS ClientHello where a command was due: a STARTTLS the filter did not
			// follow (or no filter, untraced).
			c.tls.Store(true)
			c.entry.SetTLS()
			c.t.startTLS("TLS handshake seen")
		}
		c.t.record(false, fromClient, p[:n])
	}
	return n, err
}

func (c *Conn) Write(p []byte) (int, error) {
	if c.t.record(false, fromServer, p) {
		c.tls.Store(true) // the filter saw STARTTLS accepted
		c.entry.SetTLS()
	}
	return c.Conn.Write(p)
}

// Close removes the session from the registry and ends its transcript, once; then it
// closes the connection.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.entry.Remove()
		c.t.close()
	})
	return c.Conn.Close()
}

// tlsHandshakeRecord is the first byte of a TLS handshake record (RFC 8446 §5.1).
const tlsHandshakeRecord = 0x16

// Cleartext returns tc wrapped so that what is read from and written to it is traced in
// the transcript of the connection beneath it, in place of the ciphertext there. Call it
// once the handshake is done. Without a traced connection beneath, it returns tc itself.
func Cleartext(tc *tls.Conn) net.Conn {
	var c *Conn
	for nc := tc.NetConn(); nc != nil && c == nil; {
		switch v := nc.(type) {
		case *Conn:
			c = v
		case interface{ NetConn() net.Conn }:
			nc = v.NetConn()
		default:
			nc = nil
		}
	}
	if c == nil || c.t == nil {
		return tc
	}
	c.entry.SetTLS()
	c.t.resumeCleartext(tls.VersionName(tc.ConnectionState().Version))
	return &clearConn{Conn: tc, tc: tc, t: c.t}
}

// clearConn traces the decrypted stream of a TLS connection.
type clearConn struct {
	net.Conn
	tc *tls.Conn
	t  *transcript
}

// NetConn is the *tls.Conn (sessions.Of looks through it).
func (c *clearConn) NetConn() net.Conn { return c.tc }

func (c *clearConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.t.record(true, fromClient, p[:n])
	}
	return n, err
}

func (c *clearConn) Write(p []byte) (int, error) {
	c.t.record(true, fromServer, p)
	return c.Conn.Write(p)
}
