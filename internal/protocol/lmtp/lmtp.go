// Package lmtp is Letterbox's LMTP server (RFC 2033): an MTA such as Postfix hands it mail
// for local accounts over TCP or a unix socket, and it answers once per recipient.
//
// Implementation notes:
//
//   - The protocol engine is github.com/emersion/go-smtp in LMTP mode. It parses commands,
//     enforces their order, announces PIPELINING and ENHANCEDSTATUSCODES (RFC 2033 §5) and
//     writes one DATA reply per accepted recipient, in RCPT order (§4.2). This package is the
//     backend: it resolves recipients at RCPT and stores the message at DATA.
//   - BDAT (CHUNKING, RFC 3030) is go-smtp's too: it feeds the chunks to the same LMTPData
//     as one stream and writes the per-recipient replies after BDAT LAST. LMTPData reads
//     the stream to its end even when the store gives up early, so that those replies (and
//     not a reply to a chunk) carry the verdict.
//   - A message is read from the client once (store.Spool) and then stored for each recipient
//     (store.DeliverSpooled), sharing one stored body. A recipient's 250 is written only after
//     the store has committed that recipient's copy: what LMTP acknowledged survives a crash.
//   - A recipient is resolved by the store (store.ResolveRecipient): an account, an alias,
//     or either with a +detail (Options.DetailDelimiter), whose detail may name the folder
//     the copy goes to (Options.DetailToFolder). A folder is never created for a detail;
//     without it (or if it goes before DATA) the copy goes to INBOX.
//   - Each copy gets Return-Path and Delivered-To trace fields prepended (RFC 5321 §4.4,
//     RFC 9228); the message is otherwise stored byte for byte (CRLF line endings).
//   - Store trouble that may pass answers 4xx so the MTA retries: 452 4.2.2 when the store
//     is full or read-only (store.ErrStorageFull), 451 4.3.0 otherwise (database busy).
//     Only definite verdicts (no such user, over quota, too big) answer 5xx.
//   - A message is new mail: the store refuses a header section above limits.header_size or
//     MIME nesting deeper than limits.mime_depth as it spools, reading no further; every
//     recipient gets 552 5.3.4 or 554 5.6.0 and the rest of DATA (or of the chunks up to BDAT
//     LAST) is read and discarded, so the session goes on (errors.go).
//   - Overlong lines end the connection with 500 before more than MaxLineLength octets are
//     buffered; a panic in a session is recovered (go-smtp answers 421) and logged.
//   - Shutdown stops accepting, lets a delivery in progress finish and answer, and closes
//     idle connections; nothing a client was told 250 for is lost.
package lmtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// Defaults for zero Options fields.
const (
	DefaultMaxMessageBytes = 50 << 20
	// DefaultMaxRecipients is Postfix's smtpd_recipient_limit. Postfix's LMTP client sends
	// at most 50 per transaction by default (lmtp_destination_recipient_limit), so only a
	// misbehaving client meets it; RFC 5321 §4.5.3.1.8 asks for at least 100.
	DefaultMaxRecipients = 1000
	// DefaultMaxLineLength bounds command lines and message lines alike (go-smtp applies one
	// limit to both). RFC 5321 §4.5.3.1.6 allows 1000 octets; real mail sometimes carries far
	// longer lines, so the limit is generous while still refusing a 100 KB command line.
	DefaultMaxLineLength = 64 << 10
	DefaultReadTimeout   = 10 * time.Minute
	DefaultWriteTimeout  = 5 * time.Minute
)

// Options configures a Server.
type Options struct {
	Logger *slog.Logger
	// TLSConfig, when set, makes the server offer STARTTLS. LMTP normally runs on loopback or
	// a unix socket where it is not needed.
	TLSConfig *tls.Config
	// Hostname is announced in the greeting.
	Hostname string
	// MaxMessageBytes refuses larger messages with 552 5.3.4 (announced as SIZE).
	MaxMessageBytes int64
	// MaxRecipients bounds RCPT commands per transaction: go-smtp announces it as LIMITS
	// RCPTMAX (RFC 9422) and answers the RCPT beyond it 452 4.5.3 (RFC 5321 §4.5.3.1.10),
	// which makes the MTA send the rest in another transaction. 0 means
	// DefaultMaxRecipients; negative means no limit.
	MaxRecipients int
	// MaxLineLength bounds every line the client sends.
	MaxLineLength int
	// ReadTimeout and WriteTimeout bound each read and write of a connection.
	ReadTimeout, WriteTimeout time.Duration
	// Metrics counts each recipient's delivery outcome; nil counts nothing.
	Metrics *metrics.Recorder
	// DetailDelimiter: each of its characters separates a recipient's local part from its
	// detail, so that user+detail@domain reaches user@domain (store.ResolveRecipient);
	// "" means recipients have no detail.
	DetailDelimiter string
	// DetailToFolder delivers user+detail@domain into the account's folder named detail
	// (matched case-insensitively) when it exists, else INBOX; false: always INBOX.
	DetailToFolder bool
}

// Store is what the LMTP server needs of the store, declared here where it is used;
// *store.Store implements it.
type Store interface {
	ResolveRecipient(ctx context.Context, address, detailDelimiter string) (store.Account, string, error)
	Spool(r io.Reader, opts store.SpoolOptions) (*store.Spooled, error)
	DeliverSpooled(ctx context.Context, accountID int64, sp *store.Spooled, opts store.DeliverOptions) (store.Delivered, error)
}

var _ Store = (*store.Store)(nil)

// Server is an LMTP server over one store.
type Server struct {
	st     Store
	opts   Options
	log    *slog.Logger
	smtp   *smtp.Server
	closed atomic.Bool

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[*trackedConn]struct{}
}

// NewServer returns an LMTP server delivering into st.
func NewServer(st Store, opts Options) *Server {
	return newServer(st, opts)
}

func newServer(st Store, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	switch {
	case opts.MaxRecipients == 0:
		opts.MaxRecipients = DefaultMaxRecipients
	case opts.MaxRecipients < 0:
		opts.MaxRecipients = 0 // go-smtp: no limit
	}
	if opts.MaxLineLength <= 0 {
		opts.MaxLineLength = DefaultMaxLineLength
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	s := &Server{
		st:    st,
		opts:  opts,
		log:   opts.Logger.With("protocol", "lmtp"),
		conns: map[*trackedConn]struct{}{},
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.LMTP = true
	srv.Domain = opts.Hostname
	srv.TLSConfig = opts.TLSConfig
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = opts.MaxRecipients
	srv.MaxLineLength = opts.MaxLineLength
	srv.ReadTimeout = opts.ReadTimeout
	srv.WriteTimeout = opts.WriteTimeout
	srv.ErrorLog = slogPrinter{s.log}
	s.smtp = srv
	return s
}

// Serve accepts LMTP connections on l until Shutdown; it then returns nil.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	err := s.smtp.Serve(&trackingListener{Listener: l, s: s})
	if s.closed.Load() {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, lets every delivery in progress finish and answer,
// closes the idle connections, and returns when all are gone or ctx ends (then it closes
// the rest at once and returns ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed.CompareAndSwap(false, true) {
		s.mu.Unlock()
		return nil
	}
	for _, l := range s.listeners {
		l.Close() // also those go-smtp has not registered yet
	}
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.smtp.Shutdown(ctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				s.smtp.Close()
				return err
			}
			return nil
		case <-tick.C:
		}
	}
}

// closeIdle closes every connection that is not in the middle of a delivery. Its session
// goroutine sees the closed connection and ends.
func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if !c.busy.Load() {
			c.Conn.Close()
		}
	}
}

// trackingListener remembers the connections it accepts so that Shutdown can close the
// idle ones (go-smtp's own Shutdown would wait for clients to QUIT).
type trackingListener struct {
	net.Listener
	s *Server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	l.s.conns[tc] = struct{}{}
	l.s.mu.Unlock()
	if l.s.closed.Load() {
		tc.Close()
	}
	return tc, nil
}

// trackedConn is one accepted connection; busy is set while a delivery is in progress.
type trackedConn struct {
	net.Conn
	s    *Server
	busy atomic.Bool
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// tracked finds the trackedConn beneath a go-smtp connection (unwrapping STARTTLS).
func tracked(c net.Conn) *trackedConn {
	for {
		switch x := c.(type) {
		case *trackedConn:
			return x
		case *tls.Conn:
			c = x.NetConn()
		default:
			return nil
		}
	}
}

// slogPrinter adapts go-smtp's ErrorLog to slog. go-smtp reports recovered panics there
// (an error: a bug) and connections that ended with a network error (a warning).
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) { p.print(fmt.Sprintf(format, v...)) }

func (p slogPrinter) Println(v ...any) { p.print(fmt.Sprintln(v...)) }

func (p slogPrinter) print(msg string) {
	msg = strings.TrimSpace(msg)
	if strings.Contains(msg, "panic") {
		p.log.Error("recovered from a panic", "detail", msg)
		return
	}
	p.log.Warn(msg)
}
