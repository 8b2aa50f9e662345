// Package imap serves IMAP4rev1 (RFC 3501) and its common extensions over the Letterbox
// store, on top of github.com/emersion/go-imap/v2/imapserver, which parses commands and
// writes responses; this package is the backend behind its Session interface.
//
// Announced: IMAP4rev1 and IMAP4rev2 (RFC 9051, after ENABLE), AUTH=PLAIN, AUTH=LOGIN,
// SASL-IR, STARTTLS (with TLS configured), LITERAL+, LITERAL-, IDLE, UIDPLUS, MOVE,
// NAMESPACE, UNSELECT, ENABLE, ESEARCH, SEARCHRES, LIST-EXTENDED, LIST-STATUS,
// STATUS=SIZE, BINARY, CHILDREN, SPECIAL-USE, CREATE-SPECIAL-USE, APPENDLIMIT=n and
// UTF8=ACCEPT. Not (yet): CONDSTORE, QRESYNC, QUOTA, ID, COMPRESS, SORT, THREAD.
//
// Commands, the file that implements each and the states it is allowed in (imapserver
// dispatches them and enforces the states; N = not authenticated, A = authenticated,
// S = selected):
//
//	CAPABILITY NOOP CHECK LOGOUT     N A S  imapserver (CHECK is a NOOP: every write is durable when answered)
//	STARTTLS                         N      starttls.go, guard.go (announced by imapserver with TLSConfig, not yet TLS)
//	LOGIN AUTHENTICATE               N      session.go (AUTH=PLAIN, AUTH=LOGIN)
//	ENABLE NAMESPACE                 A S    imapserver, session.go
//	CREATE DELETE RENAME             A S    mailbox.go
//	SUBSCRIBE UNSUBSCRIBE LIST LSUB  A S    mailbox.go
//	STATUS                           A S    mailbox.go
//	APPEND                           A S    append.go
//	IDLE                             A S    idle.go
//	SELECT EXAMINE                   A S    select.go
//	CLOSE UNSELECT                   S      select.go, expunge.go
//	FETCH UID FETCH                  S      fetch.go
//	STORE UID STORE                  S      store_flags.go
//	COPY UID COPY MOVE UID MOVE      S      copy_move.go
//	EXPUNGE UID EXPUNGE              S      expunge.go
//	SEARCH UID SEARCH                S      search.go
//
// Implementation notes:
//
//   - The store is the only truth. A selected session keeps a view: the UIDs it has
//     announced, in sequence-number order, the flags it last reported for each, and the
//     modseq up to which it has read the store's change log. Every unilateral update
//     (EXISTS, EXPUNGE, FETCH FLAGS) comes from comparing that view with store.Changes, so
//     changes made by POP3, LMTP, `letterbox deliver` in another process and other IMAP
//     sessions all arrive the same way, and a session can never drift from the store: a
//     sequence number is always an index into the view, which is exactly what the client
//     was told. The library's in-process MailboxTracker is not used for that reason.
//   - Expunges that arrive while they may not be announced (during FETCH, STORE and SEARCH,
//     RFC 3501 §7.4.1) stay in the view as "gone" entries until the next command that may
//     announce them; such messages are skipped by FETCH, STORE, COPY and SEARCH.
//   - The session's own changes (STORE, FETCH setting \Seen, EXPUNGE, MOVE) update the view
//     as they are answered; when the same change later comes back through the change log it
//     matches the view and produces nothing, so no response is ever sent twice.
//   - IDLE registers with store.Watch, synchronises once before waiting (so nothing that
//     happened just before IDLE is held back) and again on every wake-up. A wake-up's sync
//     reads as of the notification that woke it (store.ChangesAsOf), so the sessions woken
//     by one delivery share one read; after a command, a session reads the store as it is.
//   - ENVELOPE, BODYSTRUCTURE, sizes and dates come from the metadata the store computed at
//     delivery; body sections are streamed from the stored message using the MIME part
//     offsets in that metadata, never re-parsed. SEARCH HEADER/BODY/TEXT use the raw
//     header and decoded text the store also keeps since delivery, narrowed first by the
//     store's full-text index where it can (store.SearchCandidates), never answered by it.
//   - \Recent (RFC 3501 §2.3.2) is one session's per message: a read-write SELECT, and the
//     session's later EXISTS, claim what no session has had (store.ClaimRecent raises the
//     mailbox's watermark atomically); EXAMINE shows what is above the watermark without
//     claiming it; IMAP4rev2 sessions neither claim nor show it. The view holds the set.
//   - A keyword new to the client goes out in FLAGS before any FETCH shows it (RFC 3501
//     §7.2.6). STORE and FETCH get only a FetchWriter, which cannot write FLAGS: a STORE
//     bringing a new keyword holds its FETCH responses for the Poll after the command, and
//     a FETCH meeting someone else's new keyword shows the flags the client knew and
//     leaves the change to that Poll.
//   - Subscriptions are names of their own (store.Subscriptions, RFC 3501 §6.3.6), not
//     mailbox properties; LIST (SUBSCRIBED) shows one without a mailbox \NonExistent.
//     imapserver gives LSUB as LIST (SUBSCRIBED); the guard's command name tells them
//     apart (an LSUB shows unsubscribed parents \Noselect, RFC 3501 §6.3.9).
//   - APPEND stores any octets (the parse describes, it does not gate); a ~{n} literal8,
//     which imapserver does not report, is seen by the guard and stored unchanged
//     (store.SpoolOptions.Binary). BODY sections carry 0x80 for NUL (no NUL outside a
//     literal8, RFC 3501 §4.3).
//   - EXAMINE is read-only, enforced here: STORE, EXPUNGE and MOVE answer NO, FETCH BODY[]
//     does not set \Seen, and CLOSE expunges nothing.
//   - Three imapserver instances serve the connections, fed through in-memory listeners:
//     plaintext where plaintext credentials are allowed (auth.PlaintextPolicy, per
//     connection), plaintext where they are not (it announces LOGINDISABLED and no AUTH=
//     mechanism), and TLS sessions (no STARTTLS, AUTH= mechanisms). imapserver decides
//     "TLS" by a *tls.Conn type assertion, which no connection it gets passes, so the
//     instance is the decision. The plaintext instances know the TLS configuration only to
//     announce STARTTLS; the guard does it.
//   - Every connection goes through a guard (guard.go) in front of imapserver: a command
//     longer than maxCommandLine (48 KiB, literals aside; imapserver's own bound is 50 KiB
//     and its answer NO [SERVERBUG] and a dead connection) is answered BAD [LIMIT] and the
//     rest of its line is skipped as it streams, never buffered; the session goes on, as
//     with Dovecot. A tag or name that alone is too long gets BYE. Before login the guard
//     answers unknown commands BAD itself (imapserver would close the connection at the
//     first one). Literals pass uncounted; the guard follows "+" and tagged answers, so a
//     refused literal never desynchronises it.
//   - TLS handshakes are done here (starttls.go): implicit TLS before the greeting, and
//     STARTTLS by the guard of the plaintext connection, which drops what the client
//     pipelined after the command (CVE-2011-0411), and hands the TLS connection to the TLS
//     instance as a new imapserver connection without greeting (RFC 9051 §6.2.1); the old
//     one ends without closing the socket, and without a logout line: the session, its
//     registry entry and its trace go on, decrypted.
//   - APPEND literals larger than the append limit are refused with NO [TOOBIG] before the
//     continuation request, so nothing is read (imapserver checks SessionAppendLimit).
//   - A panic in a command is recovered by imapserver for that connection only (logged with
//     its stack, the connection is closed); the process and other sessions go on.
//   - Shutdown stops accepting and lets every session finish the command it is running,
//     tagged answer included; then the session says BYE and is closed. A session in IDLE
//     says BYE at once; one waiting for its next command has that wait interrupted.
package imap

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/letterbox-mail/letterbox/pkg/accept"
	"github.com/letterbox-mail/letterbox/pkg/auth"
	"github.com/letterbox-mail/letterbox/pkg/metrics"
	"github.com/letterbox-mail/letterbox/store"
)

// DefaultIdleTimeout is how long an IDLE command may last before the server ends the
// session (RFC 3501 §5.4: an inactivity timer of at least 30 minutes).
const DefaultIdleTimeout = 30 * time.Minute

// DefaultAppendLimit is the largest message APPEND accepts when Options.AppendLimit is 0;
// it matches the store's default message size limit.
const DefaultAppendLimit = 50 << 20

// Options configures a Server.
type Options struct {
	Logger *slog.Logger
	// Auth checks every login (required for anyone to log in) and decides where plaintext
	// credentials are allowed.
	Auth *auth.Authenticator
	// TLSConfig enables STARTTLS; nil offers no STARTTLS. Connections that are TLS already
	// (implicit TLS, a tls.Listener given to Serve) never offer it. A configuration whose
	// GetCertificate changes its answer (SIGHUP) serves every later handshake the new one.
	TLSConfig *tls.Config
	// Hostname names the server in greetings and BYE responses.
	Hostname string
	// IdleTimeout ends an IDLE that lasted this long with BYE; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// AppendLimit is the largest message APPEND accepts, announced as APPENDLIMIT
	// (RFC 7889); 0 means DefaultAppendLimit. Keep it at or below the store's limit.
	AppendLimit int64
	// Debug, if set, receives a copy of every byte sent and received (credentials included).
	Debug io.Writer
	// Metrics counts login failures, APPENDs and quota refusals; nil counts nothing.
	Metrics *metrics.Recorder
	// Sessions, if set, caps one account's sessions from one address
	// (limits.max_userip_connections); a login over the cap gets NO [LIMIT].
	Sessions SessionLimiter
}

// SessionLimiter counts an account's sessions per address; *connlimit.Limiter is one.
type SessionLimiter interface {
	// AcquireUser takes a slot, or fails if the account has too many sessions of protocol
	// from remote; release (safe to call more than once) gives it back.
	AcquireUser(protocol, account string, remote net.Addr) (release func(), err error)
}

// mailStore is what the IMAP backend needs of the store; *store.Store implements it.
type mailStore interface {
	Mailboxes(ctx context.Context, accountID int64) ([]store.Mailbox, error)
	MailboxByName(ctx context.Context, accountID int64, name string) (store.Mailbox, error)
	MailboxByID(ctx context.Context, mailboxID int64) (store.Mailbox, error)
	CreateMailbox(ctx context.Context, accountID int64, name, specialUse string) (store.Mailbox, error)
	RenameMailbox(ctx context.Context, accountID int64, from, to string) error
	DeleteMailbox(ctx context.Context, accountID int64, name string) error
	SetSubscribed(ctx context.Context, accountID int64, name string, subscribed bool) error
	Subscriptions(ctx context.Context, accountID int64) ([]string, error)
	ClaimRecent(ctx context.Context, mailboxID int64, upTo uint32) (uint32, error)
	Status(ctx context.Context, mailboxID int64) (store.MailboxStatus, error)

	Messages(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.Message, error)
	Metadata(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.Metadata, error)
	MetadataOf(ctx context.Context, mailboxID int64, parts store.MetadataParts, ranges ...store.UIDRange) ([]store.Metadata, error)
	SearchData(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.SearchData, error)
	SearchCandidates(ctx context.Context, mailboxID int64, terms []store.SearchTerm) ([]uint32, bool, error)
	OpenMessage(ctx context.Context, mailboxID int64, uid uint32) (store.Body, error)
	OpenMessages(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.MessageBody, error)
	Deliver(ctx context.Context, accountID int64, r io.Reader, opts store.DeliverOptions) (store.Delivered, error)
	SetFlags(ctx context.Context, mailboxID int64, uids []uint32, op store.FlagOp, flags []string) ([]store.FlagUpdate, error)
	Expunge(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error)
	ExpungeDeleted(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error)
	Copy(ctx context.Context, srcMailboxID int64, uids []uint32, dstMailboxID int64) ([]store.UIDPair, error)
	Move(ctx context.Context, srcMailboxID int64, uids []uint32, dstMailboxID int64) ([]store.UIDPair, error)

	Changes(ctx context.Context, accountID int64, since int64) ([]store.Change, error)
	Notified(accountID int64) uint64
	ChangesAsOf(ctx context.Context, accountID, since int64, n uint64) ([]store.Change, error)
	MessagesAfterAsOf(ctx context.Context, accountID, mailboxID int64, uid uint32, n uint64) ([]store.Message, error)
	HighestModSeq(ctx context.Context, accountID int64) (int64, error)
	Watch(accountID int64) (ch <-chan struct{}, cancel func())
}

var _ mailStore = (*store.Store)(nil)

// Server serves IMAP over the store. Serve may be called for several listeners (plain and
// implicit TLS); Shutdown stops them all.
type Server struct {
	st   mailStore
	opts Options
	log  *slog.Logger

	// plain serves plaintext connections where plaintext credentials are allowed; secure
	// those where they are not (LOGINDISABLED until STARTTLS); tlsSrv TLS sessions, implicit
	// or after STARTTLS (starttls.go). All are fed through in-memory listeners.
	plain, secure, tlsSrv    *imapserver.Server
	plainLn, secureLn, tlsLn *chanListener
	innerDone                sync.WaitGroup

	ctx        context.Context // ends TLS handshakes at Shutdown
	cancel     context.CancelFunc
	handshakes sync.WaitGroup // implicit-TLS handshakes under way

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closing   bool
	drained   chan struct{} // closed when closing and no session is left
}

// NewServer returns a server over st. It does not listen; call Serve.
func NewServer(st *store.Store, opts Options) *Server {
	return newServer(st, opts)
}

func newServer(st mailStore, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.AppendLimit <= 0 || opts.AppendLimit > 1<<32-1 {
		opts.AppendLimit = DefaultAppendLimit
	}
	if opts.Hostname == "" {
		opts.Hostname = "letterbox"
	}
	s := &Server{
		st:        st,
		opts:      opts,
		log:       opts.Logger.With("protocol", "imap"),
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
		drained:   make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	// The plaintext servers have the TLS configuration so that imapserver announces
	// STARTTLS (and computes LOGINDISABLED) itself; the guard does the STARTTLS.
	s.plain, s.plainLn = s.newInner(true, opts.TLSConfig)
	s.secure, s.secureLn = s.newInner(false, opts.TLSConfig)
	s.tlsSrv, s.tlsLn = s.newInner(true, nil)
	return s
}

// capabilities are the extensions announced besides those imapserver adds by itself
// (SASL-IR, LITERAL-, UNSELECT, ENABLE, IDLE, UTF8=ACCEPT, STARTTLS, AUTH=, APPENDLIMIT=).
// Each one is implemented by this package; see docs/imap.md for those not announced.
var capabilities = imap.CapSet{
	imap.CapIMAP4rev1: {},
	imap.CapIMAP4rev2: {}, // RFC 9051, once the client ENABLEs it

	imap.CapNamespace:        {},
	imap.CapUIDPlus:          {},
	imap.CapMove:             {},
	imap.CapESearch:          {},
	imap.CapSearchRes:        {},
	imap.CapListExtended:     {},
	imap.CapListStatus:       {},
	imap.CapStatusSize:       {},
	imap.CapBinary:           {},
	imap.CapChildren:         {},
	imap.CapSpecialUse:       {},
	imap.CapCreateSpecialUse: {},
	imap.CapLiteralPlus:      {},
}

func (s *Server) newInner(insecureAuth bool, tlsConfig *tls.Config) (*imapserver.Server, *chanListener) {
	ln := newChanListener()
	srv := imapserver.New(&imapserver.Options{
		NewSession:   s.newSession,
		Caps:         capabilities,
		Logger:       libLogger{s.log},
		TLSConfig:    tlsConfig,
		InsecureAuth: insecureAuth,
		DebugWriter:  s.opts.Debug,
	})
	s.innerDone.Add(1)
	go func() {
		defer s.innerDone.Done()
		if err := srv.Serve(ln); err != nil {
			s.log.Error("imap server stopped", "err", err)
		}
	}()
	return srv, ln
}

// Serve accepts connections on l until Shutdown, and returns nil then. A connection that
// is a *tls.Conn (a tls.Listener) is implicit TLS: its handshake is done before the
// greeting, and it is not offered STARTTLS.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	return accept.Loop(l, "imap", s.log, s.route)
}

// route hands a new connection, behind its guard (guard.go, cork.go), to the inner server
// for it: a TLS connection, once its handshake is done, to the TLS server; a plaintext one
// to the server that allows plaintext credentials, or to the one that does not, as the
// policy says for this connection. It returns false once shutting down.
func (s *Server) route(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return false
		}
		s.handshakes.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.handshakes.Done()
			s.handshakeTLS(tc)
		}()
		return true
	}
	target := s.secureLn
	if s.opts.Auth != nil && s.opts.Auth.Plaintext.Allowed(conn, false) {
		target = s.plainLn
	}
	return target.push(newGuardConn(s, newCorkConn(conn), conn, false))
}

// Shutdown stops accepting connections, lets every session finish the command it is
// running, says BYE to it (IDLE included) and closes it. It returns when all sessions are
// gone, or closes the rest at once when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closing
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	if first && len(s.sessions) == 0 {
		close(s.drained)
	}
	s.mu.Unlock()

	bye := "Server shutting down"
	if s.opts.Hostname != "" {
		bye = s.opts.Hostname + " shutting down"
	}
	for _, sess := range sessions {
		go sess.shutdown(bye)
	}

	var err error
	select {
	case <-s.drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Close whatever is left (nothing, unless ctx ended first) and stop the inner servers.
	// imapserver's Serve must have begun (it calls Accept once it is ready) before Close,
	// whose WaitGroup must not race with Serve's.
	// TLS handshakes under way end; a session they would start is refused (register).
	s.cancel()
	<-s.plainLn.accepting
	<-s.secureLn.accepting
	<-s.tlsLn.accepting
	s.plain.Close()
	s.secure.Close()
	s.tlsSrv.Close()
	s.handshakes.Wait()
	s.innerDone.Wait()
	return err
}

// register adds a new session, or refuses it when shutting down.
func (s *Server) register(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

func (s *Server) unregister(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess]; !ok {
		return
	}
	delete(s.sessions, sess)
	if s.closing && len(s.sessions) == 0 {
		close(s.drained)
	}
}

// chanListener hands connections accepted by Server.Serve to an imapserver.Server.
type chanListener struct {
	conns         chan net.Conn
	closed        chan struct{}
	closeOnce     sync.Once
	accepting     chan struct{} // closed at the first Accept
	acceptingOnce sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn), closed: make(chan struct{}), accepting: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	l.acceptingOnce.Do(func() { close(l.accepting) })
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return chanAddr{} }

type chanAddr struct{}

func (chanAddr) Network() string { return "letterbox" }
func (chanAddr) String() string  { return "imap" }

// libLogger routes imapserver's messages to slog: panics as errors, connections that went
// away as debug noise, malformed input (a client's fault) as info, anything else as a
// warning.
type libLogger struct{ log *slog.Logger }

// isClientInputError tells imapserver's "handling X command: ..." messages whose cause is
// an argument it could not decode, not a fault of ours: a mailbox name that is not valid
// modified UTF-7 (RFC 3501 §5.1.3), a number out of range, a date that is no date.
// imapserver answers those
// NO [SERVERBUG] (go-imap v2 beta.8), and a client can send as many as it likes, so they
// are not warnings.
func isClientInputError(msg string) bool {
	if !strings.HasPrefix(msg, "handling ") {
		return false
	}
	for _, cause := range []string{"utf7: ", "strconv.", "bad number set value", "in date-time: ", "in date: "} {
		if strings.Contains(msg, cause) {
			return true
		}
	}
	return false
}

func (l libLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	switch {
	case strings.HasPrefix(msg, "panic"):
		l.log.Error("recovered from a panic; connection closed", "detail", msg)
	case isDisconnect(msg):
		l.log.Debug(msg)
	case strings.Contains(msg, "imapwire:"), isClientInputError(msg):
		l.log.Info("malformed client input", "detail", msg)
	default:
		l.log.Warn(msg)
	}
}

func isDisconnect(msg string) bool {
	for _, s := range []string{"use of closed network connection", "EOF", "i/o timeout",
		"connection reset", "broken pipe"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
