package imap

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/letterbox-mail/letterbox/pkg/auth"
	"github.com/letterbox-mail/letterbox/pkg/metrics"
	"github.com/letterbox-mail/letterbox/pkg/sessions"
	"github.com/letterbox-mail/letterbox/store"
)

// session is one IMAP connection's backend state. imapserver calls its methods from the
// connection's goroutine, one command at a time, except Idle, which runs beside the
// goroutine waiting for DONE; every method therefore holds mu while it works. Shutdown
// takes mu too, so it waits for the running command to finish before saying BYE.
type session struct {
	srv    *Server
	st     mailStore
	conn   *imapserver.Conn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closing bool           // Shutdown or Close began: no further command runs
	idling  bool           // Idle is running; it says BYE itself on shutdown
	acct    *store.Account // nil until logged in
	sel     *selected      // nil unless a mailbox is selected
	release func()         // gives back the Options.Sessions slot taken at login, or nil

	guard *guardConn      // the connection's guard (guard.go), or nil
	live  *sessions.Entry // this session in the registry of live sessions, or nil

	shutdownCh chan struct{} // closed when the server shuts down
	byeText    string        // set before shutdownCh is closed; read after it is
	byeOnce    sync.Once
	done       chan struct{} // closed by Close

	stats sessionStats // for the logout line (logout.go)
}

var (
	_ imapserver.SessionIMAP4rev2   = (*session)(nil)
	_ imapserver.SessionSASL        = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
	_ imapserver.SessionNamespace   = (*session)(nil)
	_ imapserver.SessionMove        = (*session)(nil)
)

var errShuttingDown = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeUnavailable,
	Text: "Server shutting down",
}

// newSession is imapserver's NewSession hook: one session per accepted connection.
func (s *Server) newSession(conn *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	ctx, cancel := context.WithCancel(context.Background())
	log := s.log
	if nc := conn.NetConn(); nc != nil && nc.RemoteAddr() != nil {
		log = log.With("remote", nc.RemoteAddr().String())
	}
	sess := &session{srv: s, st: s.st, conn: conn, log: log, ctx: ctx, cancel: cancel,
		shutdownCh: make(chan struct{}), done: make(chan struct{}),
		stats: sessionStats{start: time.Now(), netConn: conn.NetConn()}}
	if g, ok := conn.NetConn().(*guardConn); ok {
		sess.guard, g.sess = g, sess
		if o := g.origin; o != nil { // going on after STARTTLS
			sess.stats.start, sess.stats.commands = o.start, o.commands
		}
	}
	sess.live = sessions.Of(conn.NetConn())
	if !s.register(sess) {
		cancel()
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	log.Debug("connection opened")
	return &counted{session: sess}, nil, nil
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

// Close is called by imapserver when the connection ends, however it ends, before it
// closes the connection: on shutdown this is where a session between commands says BYE.
func (s *session) Close() error {
	s.mu.Lock()
	s.closing = true
	s.sel = nil
	if s.release != nil {
		s.release()
	}
	s.mu.Unlock()
	select {
	case <-s.shutdownCh:
		s.bye(s.byeText)
	default:
	}
	s.cancel()
	close(s.done)
	s.srv.unregister(s)
	s.log.Debug("connection closed")
	return nil
}

// bye says BYE (RFC 3501 §7.1.5) and closes the connection, once.
func (s *session) bye(text string) {
	s.byeOnce.Do(func() {
		if err := s.conn.Bye(text); err != nil {
			s.log.Debug("BYE", "err", err)
		}
	})
}

// shutdown ends the session gracefully. The command running in this package finishes
// first (it holds mu). A session in IDLE says BYE from Idle. Any other is between
// commands, or finishing one inside imapserver: the read that waits for its next command
// is interrupted (again and again, since imapserver sets its own read deadline before
// each command), the connection ends and Close says BYE. So a command that has begun
// always gets its tagged answer before BYE.
func (s *session) shutdown(text string) {
	s.mu.Lock()
	s.closing = true
	s.byeText = text
	close(s.shutdownCh)
	s.mu.Unlock()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		if !s.idling {
			s.conn.NetConn().SetReadDeadline(time.Now())
		}
		s.mu.Unlock()
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
	}
}

// --- not authenticated state ---

// Login checks credentials for LOGIN and for both SASL mechanisms. imapserver has already
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
	var remote net.Addr
	if nc := s.conn.NetConn(); nc != nil {
		remote = nc.RemoteAddr()
	}
	acct, err := s.srv.opts.Auth.LoginFrom(s.ctx, store.ProtocolIMAP, remote, username, password)
	if err != nil {
		s.log.Info("login failed", "user", username, "err", err)
		s.srv.opts.Metrics.LoginFailed(metrics.IMAP, metrics.LoginFailureReason(err))
		switch {
		case errors.Is(err, auth.ErrFailed):
			return imapserver.ErrAuthFailed
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
	if s.guard != nil {
		s.guard.authed.Store(true)
	}
	s.log = s.log.With("user", acct.Address)
	s.log.Info("login")
	s.live.SetUser(acct.Address)
	return nil
}

// AuthenticateMechanisms lists the SASL mechanisms announced as AUTH= (RFC 3501 §6.2.2).
func (s *session) AuthenticateMechanisms() []string {
	return []string{sasl.Plain, auth.LoginMechanism}
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

// AppendLimit is announced as APPENDLIMIT= (RFC 7889); imapserver refuses larger APPEND
// literals with NO [TOOBIG] before sending the continuation request.
func (s *session) AppendLimit() uint32 {
	return uint32(s.srv.opts.AppendLimit)
}

// storeError turns a store error into the IMAP answer for it (RFC 5530 response codes);
// what names the action in the present participle ("renaming the mailbox"). Every store
// error must pass through it: a raw error would be answered with imapserver's "Internal
// server error", which the guard takes for an argument imapserver could not decode
// (guard.clientBug).
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
