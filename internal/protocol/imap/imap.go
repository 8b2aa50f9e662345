// Package imap serves IMAP4rev1 (RFC 3501) and its common extensions over the Letterbox
// store, with a protocol layer of its own, written from RFC 3501 and RFC 9051: a parser
// (parse.go), a command table (command.go), one session object per connection
// (session.go, conn.go) and a buffered response writer (write.go, responses.go). go-imap
// v2's imap package provides the types (number sets, fetch, search, store, list and
// status options).
//
// Announced: IMAP4rev1 and IMAP4rev2 (RFC 9051, after ENABLE), AUTH=PLAIN, AUTH=LOGIN,
// SASL-IR, STARTTLS (with TLS configured), LITERAL+ (after login), LITERAL-, IDLE,
// UIDPLUS, MOVE, NAMESPACE, UNSELECT, ENABLE, ESEARCH, SEARCHRES, LIST-EXTENDED,
// LIST-STATUS, STATUS=SIZE, BINARY, CHILDREN, SPECIAL-USE, CREATE-SPECIAL-USE,
// APPENDLIMIT=n, UTF8=ACCEPT, CONDSTORE and QRESYNC (RFC 7162; condstore.go, qresync.go),
// QUOTA with QUOTA=RES-STORAGE and QUOTA=RES-MESSAGE (quota.go), SORT, ESORT, SORT=DISPLAY,
// THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (sort.go), MULTIAPPEND (append.go), WITHIN,
// SAVEDATE, PREVIEW, PARTIAL and OBJECTID (searchext.go, fetchext.go, partial.go,
// objectid.go), ID, COMPRESS=DEFLATE (after login) and UNAUTHENTICATE. Not (yet):
// CONTEXT, CATENATE, NOTIFY. MESSAGELIMIT is messagelimit.go.
//
// Commands, the file that implements each and the states it is allowed in (the command
// table enforces them; N = not authenticated, A = authenticated, S = selected):
//
//	CAPABILITY NOOP LOGOUT           N A S  session.go
//	ID                               N A S  id.go (x-originating-ip before login only)
//	STARTTLS                         N      starttls.go (announced with TLS configured, not yet TLS)
//	LOGIN AUTHENTICATE               N      session.go (AUTH=PLAIN, AUTH=LOGIN)
//	ENABLE NAMESPACE                 A S    session.go
//	CREATE DELETE RENAME             A S    mailbox.go
//	SUBSCRIBE UNSUBSCRIBE LIST LSUB  A S    mailbox.go
//	STATUS                           A S    mailbox.go
//	APPEND                           A S    append.go
//	IDLE                             A S    idle.go
//	COMPRESS                         A S    compress.go (DEFLATE; internal/inflate)
//	UNAUTHENTICATE                   A S    unauthenticate.go
//	SELECT EXAMINE                   A S    select.go
//	CHECK                            S      session.go (a NOOP: every write is durable when answered)
//	CLOSE UNSELECT                   S      select.go, expunge.go
//	FETCH UID FETCH                  S      fetch.go
//	STORE UID STORE                  S      store_flags.go
//	COPY UID COPY MOVE UID MOVE      S      copy_move.go
//	EXPUNGE UID EXPUNGE              S      expunge.go
//	SEARCH UID SEARCH                S      search.go
//
// Implementation notes:
//
//   - One goroutine per connection (conn.go) reads a command, runs it and writes its
//     answers, in order; beside it run only the read of IDLE's DONE and the read-ahead.
//     Answers are flushed when no further command waits in the read buffer, and always
//     before the session waits for the network (connReader). A response that outgrows the
//     write buffer starts a goroutine reading on beside the write (readahead.go), so a
//     client that sends every command before reading any answer cannot wedge both sides.
//   - The parser reads straight from the connection's bufio.Reader, octet by octet, as the
//     grammar needs. A synchronizing literal is asked for ("+" and a flush) only when its
//     data is needed and acceptable; APPEND's literal is streamed by the handler into the
//     store and asked for at its first read. The limits are the parser's: 48 KiB per
//     command outside literals (BAD [LIMIT], the rest skipped as it streams; BYE when the
//     tag or name alone is that long), 4096 octets per buffered literal and 64 KiB per
//     command (NO [TOOBIG], before "+"), the append limit for APPEND, 32 levels of lists.
//     After a refusal the reader skips what the client still sends of the command,
//     following the literals it announces. Before login, the fourth command answered BAD
//     ends the connection (as Dovecot does, against other protocols on the port).
//   - The command table says in which states each command runs, which capability brings
//     it, its metric name, and whether the poll after it may announce expunges. CAPABILITY
//     is computed from it: a command exists iff its capability is announced.
//   - The session is the object every handler gets: remote address, TLS state, account,
//     selected view, ENABLEd extensions, registry entry, counters, reader and writer. Its
//     backend methods (Select, Fetch, Search...) hold mu while they work; Shutdown takes mu
//     too, so it waits for the running command to finish before saying BYE.
//   - The writer buffers through a 16 KiB buffer taken from a sync.Pool for the duration
//     of a command and given back at the flush, so a session waiting for a command or in
//     IDLE holds no write buffer. A string with CR, LF, NUL or 8-bit text the client did not
//     enable goes as a literal; decoded binary data as literal8.
//   - The store is the only truth. A selected session keeps a view: the UIDs it has
//     announced, in sequence-number order, the flags it last reported for each, and the
//     modseq up to which it has read the store's change log. Every unilateral update
//     (EXISTS, EXPUNGE, FETCH FLAGS) comes from comparing that view with store.Changes, so
//     changes made by POP3, LMTP, `letterbox deliver` in another process and other IMAP
//     sessions all arrive the same way, and a session can never drift from the store: a
//     sequence number is always an index into the view, which is exactly what the client
//     was told.
//   - Expunges that arrive while they may not be announced (during FETCH, STORE and SEARCH,
//     RFC 3501 §7.4.1) stay in the view as "gone" entries until the next command that may
//     announce them; such messages are skipped by FETCH, STORE, COPY and SEARCH.
//   - The session's own changes (STORE, FETCH setting \Seen, EXPUNGE, MOVE) update the view
//     as they are answered; when the same change later comes back through the change log it
//     matches the view and produces nothing, so no response is ever sent twice.
//   - IDLE registers with store.Watch, synchronises once before waiting (so nothing that
//     happened just before IDLE is held back) and again on every wake-up, each update
//     flushed at once. A wake-up's sync reads as of the notification that woke it
//     (store.ChangesAsOf), so the sessions woken by one delivery share one read; after a
//     command, a session reads the store as it is.
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
//     handleList gives LSUB as LIST (SUBSCRIBED) with a listWriter that writes LSUB (an
//     LSUB shows unsubscribed parents \Noselect, RFC 3501 §6.3.9).
//   - APPEND stores any octets (the parse describes, it does not gate); a ~{n} literal8, which
//     the parser reports (appendMessage.binary), is stored unchanged
//     (store.SpoolOptions.Binary). BODY sections carry 0x80 for NUL (no NUL outside a
//     literal8, RFC 3501 §4.3).
//   - EXAMINE is read-only, enforced here: STORE, EXPUNGE and MOVE answer NO, FETCH BODY[]
//     does not set \Seen, and CLOSE expunges nothing.
//   - TLS handshakes are done by the session: implicit TLS before the greeting, STARTTLS as
//     a command, which drops what the client pipelined after it (CVE-2011-0411) and goes on
//     over TLS without a greeting (RFC 9051 §6.2.1): one session in the registry, the log
//     and the trace (trace.Cleartext: traced decrypted).
//   - Before it waits for more of a command it has begun to read, the session has what
//     arrived acknowledged at once (TCP_QUICKACK, quickack.go): a client with Nagle's
//     algorithm on sends a literal and the CRLF after it in two writes.
//   - A panic in a command is recovered for that connection only (logged with its stack,
//     the connection is closed); the process and other sessions go on.
//   - Shutdown stops accepting and lets every session finish the command it is running,
//     tagged answer included; then the session says BYE and is closed. A session in IDLE
//     says BYE at once; one waiting for its next command has that wait interrupted.
package imap

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/letterbox-mail/letterbox/internal/accept"
	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/store"
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
	// Version is the version ID answers (RFC 2971); "" takes the binary's module version.
	Version string
	// IdleTimeout ends an IDLE that lasted this long with BYE; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// AppendLimit is the largest message APPEND accepts, announced as APPENDLIMIT
	// (RFC 7889); 0 means DefaultAppendLimit. Keep it at or below the store's limit.
	AppendLimit int64
	// MessageLimit is the most messages one FETCH, SEARCH, STORE, COPY, MOVE, UID EXPUNGE
	// or APPEND handles, announced as MESSAGELIMIT (RFC 9738, messagelimit.go); 0 turns
	// the extension off.
	MessageLimit int
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

// Store is what the IMAP server needs of the store: the methods it calls, declared here
// where they are used, so that any store backend can serve it. *store.Store implements it.
type Store interface {
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
	MessageFlags(ctx context.Context, mailboxID int64) ([]store.UIDFlags, error)
	Metadata(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.Metadata, error)
	MetadataOf(ctx context.Context, mailboxID int64, parts store.MetadataParts, ranges ...store.UIDRange) ([]store.Metadata, error)
	SearchData(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.SearchData, error)
	SearchCandidates(ctx context.Context, mailboxID int64, terms []store.SearchTerm) ([]uint32, bool, error)
	SortData(ctx context.Context, mailboxID int64, fields store.SortFields, ranges ...store.UIDRange) ([]store.SortRow, error)
	SortSnapshot(ctx context.Context, mailboxID int64) (*store.SortSnapshot, error)
	LookupAccount(ctx context.Context, address string) (store.Account, error)
	OpenMessage(ctx context.Context, mailboxID int64, uid uint32) (store.Body, error)
	OpenMessages(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.MessageBody, error)
	Deliver(ctx context.Context, accountID int64, r io.Reader, opts store.DeliverOptions) (store.Delivered, error)
	Spool(r io.Reader, opts store.SpoolOptions) (*store.Spooled, error)
	DeliverSpooled(ctx context.Context, accountID int64, sp *store.Spooled, opts store.DeliverOptions) (store.Delivered, error)
	DeliverAll(ctx context.Context, accountID int64, mailbox string, msgs []store.SpooledMessage) ([]store.Delivered, error)
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
	SetFlagsUnchangedSince(ctx context.Context, mailboxID int64, uids []uint32, op store.FlagOp, flags []string, unchangedSince int64) ([]store.FlagUpdate, []uint32, error)
	ChangedSince(ctx context.Context, mailboxID int64, since int64, ranges ...store.UIDRange) ([]store.Message, error)
	Vanished(ctx context.Context, mailboxID int64, since int64, ranges ...store.UIDRange) (store.VanishedUIDs, error)
	Watch(accountID int64) (ch <-chan struct{}, cancel func())
	WatchFunc(accountID int64, wake func()) (cancel func())
}

// mailStore is the package's own name for Store.
type mailStore = Store

var _ Store = (*store.Store)(nil)

// Server serves IMAP over the store. Serve may be called for several listeners (plain and
// implicit TLS); Shutdown stops them all.
type Server struct {
	st   mailStore
	opts Options
	log  *slog.Logger

	ctx      context.Context // ends TLS handshakes at Shutdown
	cancel   context.CancelFunc
	sessions accept.Sessions[*session] // listeners, live sessions, their goroutines
}

// NewServer returns a server over st. It does not listen; call Serve.
func NewServer(st Store, opts Options) *Server {
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
		st:   st,
		opts: opts,
		log:  opts.Logger.With("protocol", "imap"),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Serve accepts connections on l until Shutdown, and returns nil then. A connection that
// is a *tls.Conn (a tls.Listener) is implicit TLS: its handshake is done before the
// greeting, and it is not offered STARTTLS. The accept loop and the bookkeeping of
// listeners and sessions are shared with POP3 (internal/accept).
func (s *Server) Serve(l net.Listener) error {
	return s.sessions.Serve(l, "imap", s.log, s.start)
}

// start serves a new connection on its own goroutine; it returns false once shutting down.
func (s *Server) start(conn net.Conn) bool {
	return s.sessions.Go(func() { s.serveConn(conn) })
}

// Shutdown stops accepting connections, lets every session finish the command it is
// running, says BYE to it (IDLE included) and closes it. It returns when all sessions are
// gone, or closes the rest at once when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	bye := "Server shutting down"
	if s.opts.Hostname != "" {
		bye = s.opts.Hostname + " shutting down"
	}
	for _, sess := range s.sessions.Close() {
		go sess.shutdown(bye)
	}
	err := s.sessions.Drain(ctx)
	// Close whatever is left (nothing, unless ctx ended first); TLS handshakes under way end,
	// and a session they would start is refused (register).
	s.cancel()
	for _, sess := range s.sessions.Live() {
		sess.raw.Close()
	}
	s.sessions.Wait()
	return err
}
