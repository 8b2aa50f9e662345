package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/sessions"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// session is one IMAP connection: the object every command handler gets. It holds the
// connection (remote address, TLS state, reader and writer), the account once logged in,
// the selected view, the ENABLEd extensions, the registry entry (which the trace follows)
// and the counters of the logout line. Commands run one at a time on the connection's
// goroutine (conn.go); IDLE's DONE is read beside it. The backend methods hold mu while
// they work; Shutdown takes mu too, so it waits for the running command to finish before
// saying BYE.
type session struct {
	srv *Server
	st  mailStore
	log *slog.Logger
	// ctx is what the store is called with: context.Background(). Nothing of a session runs
	// after the connection has ended (Close runs once its commands and its idler have
	// stopped), so there is nothing to cancel; a cancelable one cost every session a
	// context, its done channel and the map of its children (database/sql and the SQLite
	// driver register on it), some 450 octets, for nothing.
	ctx context.Context

	mu      sync.Mutex
	closing bool           // Shutdown or Close began: no further command runs
	acct    *store.Account // nil until logged in
	sel     *selected      // nil unless a mailbox is selected
	release func()         // gives back the Options.Sessions slot taken at login, or nil

	live *sessions.Entry // this session in the registry of live sessions, or nil

	// The connection (conn.go), used by the session's goroutine only, except raw.
	raw      net.Conn             // as accepted: the socket with its metrics and trace wrappers
	conn     net.Conn             // what commands are read from: raw, or TLS over it
	ack      quickAcker           // the TCP connection beneath, to acknowledge at once
	remote   net.Addr             // the client
	tlsState *tls.ConnectionState // nil until the session is TLS
	// compressed is the DEFLATE layer under COMPRESS (compress.go); nil until then.
	compressed *compression
	br         *bufio.Reader // over connReader; from readerPool, nil while the session is parked (await)
	held       [1]byte       // the octet await read, if heldN is 1
	heldN      int
	heldErr    error // the error of await's read, after its octet
	noAck      bool  // the read after await's octet is due: no quick ACK
	in         *commandReader
	out        *responseWriter
	enabled    imap.CapSet // what the client ENABLEd (RFC 5161)
	cmdDone    bool        // the running command's handler wrote its tagged status
	okResp     *imap.Error // the running command's tagged OK, if not "... completed"
	limited    *limitHit   // the running command was cut to MESSAGELIMIT (messagelimit.go)
	ahead      *readAhead  // reads on while a large response is written (readahead.go)
	// mayReadAhead: the running command does not read the connection itself.
	mayReadAhead bool
	// readingDone: IDLE's DONE is being read; connReader must not flush the writer, which
	// the idler's goroutines are using (idle.go).
	readingDone bool
	// idle and idleCmd: the session is in IDLE and waits for DONE (idle.go), parked.
	idle      *idler
	idleCmd   *command
	ended     bool // BYE was said or the connection closed
	loggedOut bool // the client said LOGOUT and was answered: the connection closes gracefully
	unknown   int  // BAD answers before login

	byeText string // what BYE says when the server shuts down; set by shutdown, under mu
	byeOnce sync.Once

	stats  sessionStats // for the logout line (logout.go)
	client clientID     // what the client's ID said (id.go)

	appendedTo appendTarget // the mailbox the last APPEND stored into (append.go)
}

// errAuthFailed answers wrong credentials (RFC 5530).
var errAuthFailed = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeAuthenticationFailed,
	Text: "Invalid credentials",
}

var errShuttingDown = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeUnavailable,
	Text: "Server shutting down",
}

// newSession makes the session of a new connection; conn is raw, or TLS over it for
// implicit TLS.
func (s *Server) newSession(raw, conn net.Conn, tlsState *tls.ConnectionState) *session {
	sess := &session{srv: s, st: s.st, ctx: context.Background(),
		raw: raw, remote: raw.RemoteAddr(), tlsState: tlsState, ack: newQuickAcker(raw),
		enabled: imap.CapSet{}, live: sessions.Of(raw),
		stats: sessionStats{start: time.Now()}}
	sess.log = s.log.With("remote", remoteString(sess.remote))
	sess.setConn(conn)
	sess.log.Debug("connection opened")
	return sess
}

// lock starts a command: it takes the session mutex, unless the session is closing.
func (s *session) lock() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errShuttingDown
	}
	return nil
}

// lockSelected starts a command of the selected state.
func (s *session) lockSelected() (*selected, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	if s.sel == nil {
		s.mu.Unlock()
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "No mailbox selected"}
	}
	return s.sel, nil
}

// lockAuthenticated starts a command of the authenticated state.
func (s *session) lockAuthenticated() (*store.Account, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	if s.acct == nil {
		s.mu.Unlock()
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Not authenticated"}
	}
	return s.acct, nil
}

// Close ends the backend's part of the session when the connection has ended, however it
// ended.
func (s *session) Close() error {
	s.mu.Lock()
	s.closing = true
	s.sel = nil
	if s.release != nil {
		s.release()
	}
	s.mu.Unlock()
	s.srv.sessions.Remove(s)
	s.log.Debug("connection closed")
	return nil
}

// shutdown ends the session gracefully. A backend method running finishes first (it
// holds mu). The session is between commands, or
// finishing one, or in IDLE: the read that waits for its next command (or for DONE) is
// interrupted once, and the loop (or handleIdle) says BYE; both set their own read deadline
// under mu, after looking at closing, so they cannot undo this one (conn.go, idle.go). A
// command that has begun gets its tagged answer before BYE.
func (s *session) shutdown(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	s.byeText = text
	s.raw.SetReadDeadline(time.Now())
}

// --- not authenticated state ---

// Login checks credentials for LOGIN and for both SASL mechanisms. handleLogin has already
// refused it where the plaintext policy forbids it (LOGINDISABLED, RFC 3501 §6.2.3).
func (s *session) Login(username, password string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.acct != nil {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Already authenticated"}
	}
	if s.srv.opts.Auth == nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
			Text: "Authentication is not configured"}
	}
	remote := s.remote
	acct, err := s.srv.opts.Auth.LoginFrom(s.ctx, store.ProtocolIMAP, remote, username, password)
	if err != nil {
		s.log.Info("login failed", "user", username, "err", err)
		s.srv.opts.Metrics.LoginFailed(metrics.IMAP, auth.FailureReason(err))
		switch {
		case errors.Is(err, auth.ErrFailed):
			return errAuthFailed
		case errors.Is(err, auth.ErrBlocked):
			// RFC 5530 UNAVAILABLE: a temporary refusal, not a verdict on the password.
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
				Text: "Too many failed logins from your address, try again later"}
		case errors.Is(err, auth.ErrProtocolNotAllowed), errors.Is(err, auth.ErrDisabled):
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed,
				Text: "This account may not use IMAP"}
		default:
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
				Text: "Temporary authentication failure, try again later"}
		}
	}
	if lim := s.srv.opts.Sessions; lim != nil {
		release, err := lim.AcquireUser(store.ProtocolIMAP, acct.Address, remote)
		if err != nil {
			s.log.Warn("login refused: too many sessions from this address", "user", acct.Address)
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
				Text: "Too many sessions of this account from your address"}
		}
		s.release = release
	}
	s.acct = &acct
	s.rebuildLog()
	s.log.Info("login")
	s.countClient()
	s.live.SetUser(acct.Address)
	return nil
}

// Authenticate starts a SASL exchange: PLAIN (RFC 4616) or LOGIN.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed,
					Text: "Acting as another user is not supported"}
			}
			return s.Login(username, password)
		}), nil
	case auth.LoginMechanism:
		return auth.NewLoginServer(s.Login), nil
	default:
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported SASL mechanism"}
	}
}

// --- authenticated state ---

// Namespace: one personal namespace, "" with "/" as delimiter (RFC 2342).
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delimiter}}}, nil
}

// storeError turns a store error into the IMAP answer for it (RFC 5530 response codes);
// what names the action in the present participle ("renaming the mailbox"). Every store
// error must pass through it: a raw error would be answered "NO [SERVERBUG] Internal
// server error" with no word of what failed.
func (s *session) storeError(err error, what string) error {
	var imapErr *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &imapErr):
		return err
	case errors.Is(err, store.ErrNoSuchMailbox):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}
	case errors.Is(err, store.ErrMailboxExists):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	case errors.Is(err, store.ErrMailboxProtected):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Not allowed: " + what}
	case errors.Is(err, store.ErrNoSuchMessage):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "EXPUNGEISSUED", Text: "Message was expunged"}
	case errors.Is(err, store.ErrOverQuota):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "Over quota"}
	case errors.Is(err, store.ErrTooBig):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message too big"}
	case errors.Is(err, store.ErrNotMessage):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeParse, Text: "Not an RFC 5322 message"}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
		// The client went away in the middle (of an APPEND literal, say).
		s.log.Debug(what+" interrupted", "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Connection problem while " + what}
	case errors.Is(err, store.ErrTemporary), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.log.Warn(what+" failed", "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Temporary failure, try again"}
	default:
		s.log.Error(what+" failed", "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal error while " + what}
	}
}

// --- the commands of this file (command.go has the table)

// RFC 3501 §6.1.1.
func handleCapability(s *session, cmd *command) error {
	s.out.raw("* CAPABILITY ").raw(s.capabilityList()).crlf()
	return nil
}

// NOOP and CHECK (RFC 3501 §6.1.2, §6.4.1): the poll after every command does their work;
// CHECK has nothing else to do, since every write is durable when answered.
func handleNoop(s *session, cmd *command) error { return nil }

// RFC 3501 §6.1.3: BYE, then the tagged OK, then the connection closes (session.end,
// once the logout line is written).
func handleLogout(s *session, cmd *command) error {
	s.byeOnce.Do(func() {
		s.out.status("", imap.StatusResponseTypeBye, "", "Logging out")
		s.out.status(cmd.tag, imap.StatusResponseTypeOK, "", "LOGOUT completed")
		s.out.flush()
	})
	s.cmdDone, s.ended, s.loggedOut = true, true, true
	return nil
}

var errPrivacyRequired = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodePrivacyRequired,
	Text: "Plaintext passwords are not accepted on this connection; use STARTTLS or TLS",
}

// RFC 3501 §6.2.3; the OK carries the new capabilities (RFC 9051 §6.2.3).
func handleLogin(s *session, cmd *command) error {
	a := cmd.args.(*loginArgs)
	if !s.plaintextAllowed() {
		return errPrivacyRequired
	}
	if err := s.Login(a.username, a.password); err != nil {
		return err
	}
	s.ok(imap.ResponseCode("CAPABILITY "+s.capabilityList()), "Logged in")
	return nil
}

// RFC 3501 §6.2.2 with SASL-IR (RFC 4959): challenges and responses in base64 until the
// mechanism is done; "*" cancels.
func handleAuthenticate(s *session, cmd *command) error {
	a := cmd.args.(*authenticateArgs)
	if !s.plaintextAllowed() {
		return errPrivacyRequired
	}
	known := false
	for _, m := range saslMechanisms {
		known = known || m == a.mechanism
	}
	if !known {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported SASL mechanism"}
	}
	srv, err := s.Authenticate(a.mechanism)
	if err != nil {
		return err
	}
	resp := a.initialResponse
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) {
				return ie
			}
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Authentication failed"}
		}
		if done {
			break
		}
		if err := s.out.continuationData(base64.StdEncoding.EncodeToString(challenge)); err != nil {
			return err
		}
		line, err := s.readLine()
		if err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) {
				return ie
			}
			return err
		}
		data, cancel, err := decodeSASLResponse(line)
		if err != nil {
			return err
		}
		if cancel {
			return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "AUTHENTICATE cancelled"}
		}
		resp = data
	}
	if s.acct == nil {
		return errAuthFailed
	}
	s.ok(imap.ResponseCode("CAPABILITY "+s.capabilityList()), "Authenticated")
	return nil
}

// RFC 5161 §3.1: ENABLED lists what this command turned on.
func handleEnable(s *session, cmd *command) error {
	a := cmd.args.(*enableArgs)
	s.out.raw("* ENABLED")
	for _, c := range a.caps {
		for _, e := range enableable {
			if strings.EqualFold(string(c), string(e)) && !s.enabled.Has(e) {
				s.enabled[e] = struct{}{}
				s.out.sp().atom(string(e))
			}
		}
	}
	s.out.crlf()
	if s.enabled.Has(imap.CapQResync) {
		// RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
		s.enabled[imap.CapCondStore] = struct{}{}
	}
	s.in.utf8Names, s.out.utf8 = s.utf8(), s.utf8()
	s.out.uidOnly = s.uidOnly() // RFC 9586 (uidonly.go)
	return nil
}

// RFC 2342 §5.
func handleNamespace(s *session, cmd *command) error {
	ns, err := s.Namespace()
	if err != nil {
		return err
	}
	s.out.raw("* NAMESPACE ")
	writeNamespaces(s.out, ns.Personal)
	s.out.sp()
	writeNamespaces(s.out, ns.Other)
	s.out.sp()
	writeNamespaces(s.out, ns.Shared)
	s.out.crlf()
	return nil
}

func writeNamespaces(w *responseWriter, list []imap.NamespaceDescriptor) {
	if len(list) == 0 {
		w.raw("NIL")
		return
	}
	w.octet('(')
	for _, d := range list {
		w.octet('(').string(d.Prefix).sp()
		if d.Delim == 0 {
			w.raw("NIL")
		} else {
			w.quoted(string(d.Delim))
		}
		w.octet(')')
	}
	w.octet(')')
}
