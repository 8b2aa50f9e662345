// Package pop3 is Letterbox's POP3 server (RFC 1939) with the extensions a modern client
// expects: CAPA, RESP-CODES, PIPELINING, EXPIRE, LOGIN-DELAY, UIDL, TOP, USER and SASL
// (RFC 2449), AUTH (RFC 5034) with PLAIN (RFC 4616) and LOGIN, STLS (RFC 2595), the
// AUTH response code (RFC 3206) and UTF8 (RFC 6856). It serves one account's INBOX from
// the store; the same messages are reachable over IMAP.
//
// Implementation notes:
//
//   - The maildrop is a snapshot taken at login: the INBOX UIDs and exact sizes as they
//     stood then (RFC 1939 §4). Mail delivered later appears at the next login. Message
//     numbers 1..n index that snapshot for the whole session.
//   - DELE only marks a message in the session; RSET unmarks (what RETR retrieved stays
//     retrieved). QUIT in the TRANSACTION state enters the UPDATE state and commits
//     everything in one store.Update transaction: \Seen for the retrieved messages
//     (Options.MarkSeen; TOP does not count) and the deletions (Options.DeleteMode). Only
//     after that commit returned nil does the client get +OK; if it failed, nothing changed
//     and the client gets -ERR [SYS/TEMP]. A dropped connection, a timeout or a server
//     shutdown without QUIT changes nothing in the store.
//   - Delete modes: "expunge" removes the messages (IMAP sessions see EXPUNGE);
//     "keep-flagged" adds \Deleted, and POP3 snapshots then skip \Deleted messages while
//     that mode is configured; "hide" adds the keyword $POP3Deleted, which snapshots always
//     skip. In the last two IMAP still sees the messages.
//   - Only one POP3 session per account holds the maildrop at a time (RFC 2449 §8.1
//     [IN-USE]); the locks live in this process, shared by every Server on the same store,
//     and a session releases its lock when it ends for any reason. IMAP sessions are
//     never locked out.
//   - RETR and TOP open the message before answering +OK, so a message expunged over IMAP
//     during the session gets a plain -ERR; then they stream it from the store through a
//     dot-stuffing writer, never holding it whole in memory. The stored message is already
//     CRLF-normalised, so LIST and STAT sizes are the stored sizes, the exact octets RETR
//     sends before dot-stuffing.
//   - UIDLs are derived from the INBOX UIDVALIDITY and the message UID with a
//     Dovecot-compatible format (pop3.uidl_format, default "%08Xu%08Xv"), so they are
//     stable for the life of a message, survive restarts, and match what a Dovecot server
//     with the same setting would have given.
//   - APOP is not offered: it needs a plaintext-equivalent secret on the server, and the
//     store keeps only password hashes. The greeting therefore carries no timestamp. Use
//     USER/PASS or AUTH PLAIN over TLS instead.
//   - Plaintext credentials (USER/PASS, AUTH PLAIN, AUTH LOGIN) are offered and accepted
//     only where the authenticator's PlaintextPolicy allows them on this connection; else
//     CAPA omits them and they are refused with -ERR [AUTH], pointing at STLS.
//   - Input is read with a bounded reader: an overlong line (over 1024 octets for a
//     command, 8 KiB for a SASL response) is answered with -ERR and skipped without being
//     held in memory. Bad commands get -ERR and the session goes on; only 10 in a row
//     before login, or 20 after, close it. Each connection recovers its own panics, and
//     replies to pipelined commands are flushed only when no further input is buffered.
//   - Idle sessions are logged out after Options.IdleTimeout (RFC 1939 §3). Shutdown
//     closes sessions that wait for a command at once and lets a command in progress
//     finish first.
//   - Nothing is written to the socket while a store write transaction is open.
package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/letterbox-mail/letterbox/internal/accept"
	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// DefaultIdleTimeout is the autologout timer; RFC 1939 §3 requires at least 10 minutes.
const DefaultIdleTimeout = 10 * time.Minute

// defaultLockWait is how long a login waits for another session of the same account to
// release the maildrop before it is refused with [IN-USE]. It covers a client that
// reconnects right after QUIT or after dropping its connection, before the old session
// has noticed.
const defaultLockWait = 2 * time.Second

// Options configures a Server. Start from DefaultOptions: the zero value of MarkSeen is
// false, which turns off setting \Seen on retrieved messages.
type Options struct {
	Logger *slog.Logger
	// Auth checks every login and says where plaintext credentials are allowed. Required.
	Auth *auth.Authenticator
	// TLSConfig enables STLS (RFC 2595); nil offers none. A listener that hands Serve
	// *tls.Conn connections (implicit TLS, POP3S) makes every session protected already.
	TLSConfig *tls.Config
	// Hostname is named in the greeting; "" means the machine's host name.
	Hostname string
	// UIDLFormat is pop3.uidl_format, expanded as Dovecot does (maildrop.ParseUIDLFormat
	// says how). "" means maildrop.DefaultUIDLFormat.
	UIDLFormat string
	// MarkSeen sets \Seen, when QUIT commits, on the messages RETR sent (pop3.mark_seen).
	// TOP never marks a message seen.
	MarkSeen bool
	// DeleteMode is maildrop.DeleteExpunge, DeleteKeepFlagged or DeleteHide; "" means
	// DeleteExpunge.
	DeleteMode string
	// Expire is the EXPIRE capability's policy (RFC 2449 §6.7): "NEVER" or a number of
	// days. "" means "NEVER". It is announced only; the server itself expires nothing.
	Expire string
	// LoginDelay, when positive, is the minimum time between two logins of an account
	// (RFC 2449 §6.5 LOGIN-DELAY, in whole seconds); a login too soon gets [LOGIN-DELAY].
	LoginDelay time.Duration
	// IdleTimeout is the autologout timer; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Metrics counts commands and login failures; nil counts nothing.
	Metrics *metrics.Recorder
}

// DefaultOptions returns the options Letterbox uses unless configured otherwise
// (MarkSeen true, DeleteExpunge, the default UIDL format, EXPIRE NEVER, DefaultIdleTimeout).
func DefaultOptions() Options {
	return Options{
		UIDLFormat:  maildrop.DefaultUIDLFormat,
		MarkSeen:    true,
		DeleteMode:  maildrop.DeleteExpunge,
		Expire:      "NEVER",
		IdleTimeout: DefaultIdleTimeout,
	}
}

// Validate checks the options that come from configuration: the UIDL format, the delete
// mode and the EXPIRE policy. Serve refuses to start with options that fail it.
func (o Options) Validate() error {
	if o.Auth == nil {
		return errors.New("pop3: Options.Auth is required")
	}
	if _, err := maildrop.ParseUIDLFormat(o.UIDLFormat); err != nil {
		return fmt.Errorf("pop3: %w", err)
	}
	if o.DeleteMode != "" {
		if err := maildrop.CheckDeleteMode(o.DeleteMode); err != nil {
			return fmt.Errorf("pop3: pop3.delete %w", err)
		}
	}
	if e := o.Expire; e != "" && e != "NEVER" {
		if n, err := strconv.Atoi(e); err != nil || n < 0 {
			return fmt.Errorf("pop3: EXPIRE policy %q: want NEVER or a number of days", e)
		}
	}
	if o.LoginDelay < 0 || o.IdleTimeout < 0 {
		return errors.New("pop3: LoginDelay and IdleTimeout must not be negative")
	}
	return nil
}

// Store is what the POP3 server needs of the store: the methods it calls, declared here
// where they are used, so that any store backend can serve it. *store.Store implements it.
type Store interface {
	MailboxByName(ctx context.Context, accountID int64, name string) (store.Mailbox, error)
	Messages(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.Message, error)
	OpenMessage(ctx context.Context, mailboxID int64, uid uint32) (store.Body, error)
	CommitMaildrop(ctx context.Context, mailboxID int64, c store.MaildropCommit) error
	// LockMaildrop is the maildrop lock between the processes (nodes) serving the store,
	// taken after this process's own (lock.go); store.ErrMaildropInUse when another holds it.
	LockMaildrop(ctx context.Context, accountID int64) (release func(), err error)
}

var _ Store = (*store.Store)(nil)

// mailStore is the package's own name for Store.
type mailStore = Store

// Server serves POP3 on any number of listeners. It is safe for concurrent use.
type Server struct {
	st       mailStore
	opts     Options
	log      *slog.Logger
	hostname string
	uidl     maildrop.UIDLFormat
	optErr   error // from Options.Validate; Serve returns it

	lockWait time.Duration
	delays   loginDelays

	// ctx is the parent of every session's context; cancel ends them all (forced shutdown).
	ctx    context.Context
	cancel context.CancelFunc

	sessions accept.Sessions[*session] // listeners, live sessions, their goroutines
}

// NewServer returns a POP3 server for st. Options that fail Validate make Serve return
// that error; check them first with Options.Validate to fail at configuration time.
func NewServer(st Store, opts Options) *Server {
	return newServer(st, opts)
}

func newServer(st mailStore, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.UIDLFormat = orDefault(opts.UIDLFormat, maildrop.DefaultUIDLFormat)
	opts.DeleteMode = orDefault(opts.DeleteMode, maildrop.DeleteExpunge)
	opts.Expire = orDefault(opts.Expire, "NEVER")
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	s := &Server{
		st:       st,
		opts:     opts,
		log:      opts.Logger.With("protocol", "pop3"),
		hostname: greetingHost(opts.Hostname),
		optErr:   opts.Validate(),
		lockWait: defaultLockWait,
	}
	s.uidl, _ = maildrop.ParseUIDLFormat(opts.UIDLFormat) // an error is kept in optErr
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Serve accepts connections on l and serves each in its own goroutine. It blocks until
// l fails or Shutdown is called, and returns nil after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if s.optErr != nil {
		return s.optErr
	}
	return s.sessions.Serve(l, "pop3", s.log, s.startSession)
}

// startSession registers and starts a session for conn; false once shutting down.
func (s *Server) startSession(conn net.Conn) bool {
	sess := newSession(s, conn)
	if !s.sessions.Add(sess) {
		return false
	}
	if !s.sessions.Go(func() {
		defer s.sessions.Remove(sess)
		sess.serve()
	}) {
		s.sessions.Remove(sess)
		return false
	}
	return true
}

// Shutdown stops accepting connections, closes every session that is waiting for a
// command, lets a command in progress finish (its session ends right after), and waits
// for all sessions to end. Sessions that did not QUIT delete nothing. If ctx ends first,
// the remaining connections are closed at once and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, sess := range s.sessions.Close() {
		sess.interruptIdle()
	}

	done := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		for _, sess := range s.sessions.Live() {
			sess.forceClose()
		}
		<-done
		return ctx.Err()
	}
}

// greetingHost is the host name for the greeting, reduced to characters that cannot be
// mistaken for an APOP timestamp or break the line.
func greetingHost(name string) string {
	if name == "" {
		name, _ = os.Hostname()
	}
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name) && len(b) < 100; i++ {
		if c := name[i]; c > ' ' && c < 0x7f && c != '<' && c != '>' {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "localhost"
	}
	return string(b)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
