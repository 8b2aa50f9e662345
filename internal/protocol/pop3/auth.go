package pop3

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/sessions"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// loginError is a refused login, with its RFC 2449 / RFC 3206 response code.
type loginError struct {
	code string // AUTH, SYS/TEMP, SYS/PERM, IN-USE, LOGIN-DELAY
	text string
}

func (e *loginError) Error() string { return e.line() }

// line is the -ERR reply for e.
func (e *loginError) line() string { return "-ERR [" + e.code + "] " + e.text }

// saslMechanisms are the SASL mechanisms offered (RFC 5034), both plaintext ones.
var saslMechanisms = []string{sasl.Plain, auth.LoginMechanism}

// plaintextAllowed reports whether plaintext credentials may be used on this connection.
func (s *session) plaintextAllowed() bool {
	return s.srv.opts.Auth.Plaintext.Allowed(s.conn, s.tlsActive)
}

// refusePlaintext answers a plaintext login attempt on a connection where it is not
// allowed (RFC 2595, RFC 8314; the [AUTH] code of RFC 3206 §5).
func (s *session) refusePlaintext() {
	if s.stlsAvailable() {
		s.badReply("-ERR [AUTH] plaintext authentication is not allowed on this connection, use STLS first")
		return
	}
	s.badReply("-ERR [AUTH] plaintext authentication is not allowed on this connection without TLS")
}

// cmdUser handles USER name (RFC 1939 §7).
func (s *session) cmdUser(arg string) error {
	s.user, s.haveUser = "", false
	if !s.plaintextAllowed() {
		s.refusePlaintext()
		return nil
	}
	if msg := s.checkCredential(arg); msg != "" {
		s.badReply("-ERR " + msg)
		return nil
	}
	s.user, s.haveUser = arg, true
	// The reply does not tell whether the user exists.
	s.okReply("send PASS")
	return nil
}

// cmdPass handles PASS string (RFC 1939 §7). The whole rest of the line is the
// password, spaces included.
func (s *session) cmdPass(arg string) error {
	user, ok := s.user, s.haveUser
	s.user, s.haveUser = "", false // RFC 1939 §7: after PASS, USER must come again
	switch {
	case !ok:
		s.badReply("-ERR give USER first")
		return nil
	case !s.plaintextAllowed():
		s.refusePlaintext()
		return nil
	}
	if msg := s.checkCredential(arg); msg != "" {
		s.badReply("-ERR " + msg)
		return nil
	}
	if err := s.login(user, arg); err != nil {
		s.badReply(err.line())
		return nil
	}
	s.okLoggedIn()
	return nil
}

// checkCredential validates a user name or password received as text; it returns why it
// is refused, or "". RFC 6856 §2: after UTF8 they are UTF-8; before it, any octets but
// control characters (tab aside) are taken as they are.
func (s *session) checkCredential(v string) string {
	if v == "" {
		return "missing argument"
	}
	if s.utf8 && !utf8.ValidString(v) {
		return "argument is not valid UTF-8"
	}
	for i := 0; i < len(v); i++ {
		if (v[i] < ' ' && v[i] != '\t') || v[i] == 0x7f {
			return "control characters are not allowed"
		}
	}
	return ""
}

// cmdAuth handles AUTH [mechanism [initial-response]] (RFC 5034). Without a mechanism
// it lists the mechanisms, as RFC 1734 servers did and clients still ask.
func (s *session) cmdAuth(arg string) error {
	mech, ir, hasIR := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	if mech == "" {
		s.okReply("SASL mechanisms follow")
		if s.plaintextAllowed() {
			for _, m := range saslMechanisms {
				s.reply(m)
			}
		}
		s.reply(".")
		return nil
	}

	var (
		server   sasl.Server
		loginErr *loginError
	)
	authenticate := func(username, password string) error {
		if msg := s.checkCredential(username); msg != "" {
			return &loginError{"AUTH", "user name: " + msg}
		}
		loginErr = s.login(username, password)
		if loginErr != nil {
			return loginErr
		}
		return nil
	}
	switch mech {
	case sasl.Plain:
		server = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return &loginError{"AUTH", "authorization identity must be empty or the user name"}
			}
			return authenticate(username, password)
		})
	case auth.LoginMechanism:
		server = auth.NewLoginServer(authenticate)
	default:
		s.badReply("-ERR unsupported SASL mechanism")
		return nil
	}
	if !s.plaintextAllowed() {
		s.refusePlaintext()
		return nil
	}

	// RFC 5034 §4: an initial response "=" is an empty one; none at all is nil.
	var response []byte
	if hasIR {
		var err error
		if response, err = decodeSASL(ir); err != nil {
			s.badReply("-ERR initial response is not valid base64")
			return nil
		}
	}
	for {
		challenge, done, err := server.Next(response)
		if err != nil {
			var le *loginError
			if errors.As(err, &le) {
				s.badReply(le.line())
			} else {
				s.badReply("-ERR [AUTH] authentication failed")
			}
			return nil
		}
		if done {
			if loginErr != nil || s.state != stateTransaction {
				s.badReply("-ERR [AUTH] authentication failed")
				return nil
			}
			s.okLoggedIn()
			return nil
		}
		// RFC 5034 §4: "+" SP base64 challenge; the client answers with one line.
		s.reply("+ " + base64.StdEncoding.EncodeToString(challenge))
		if err := s.w.Flush(); err != nil {
			return fmt.Errorf("write SASL challenge: %w", err)
		}
		line, err := s.readLine(maxSASLLine)
		switch {
		case errors.Is(err, errLineTooLong):
			s.badReply("-ERR SASL response too long")
			return nil
		case err != nil:
			return fmt.Errorf("read SASL response: %w", err)
		}
		if string(line) == "*" {
			// RFC 5034 §4: the client cancels the exchange.
			s.badReply("-ERR authentication cancelled")
			return nil
		}
		if response, err = decodeSASL(string(line)); err != nil {
			s.badReply("-ERR SASL response is not valid base64")
			return nil
		}
	}
}

// decodeSASL decodes a base64 SASL response; "=" is the empty response (RFC 5034 §4).
func decodeSASL(v string) ([]byte, error) {
	if v == "=" {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// cmdApop refuses APOP (RFC 1939 §7): it needs the plaintext password, or an equivalent
// secret, on the server, and the store keeps only hashes. The greeting carries no
// timestamp, so clients do not try it.
func (s *session) cmdApop(string) error {
	s.badReply("-ERR APOP is not supported, use USER/PASS or AUTH")
	return nil
}

// cmdUTF8 handles UTF8 (RFC 6856 §2): from now on user names and passwords are UTF-8.
// Messages are sent as stored either way; Letterbox does not downgrade them.
func (s *session) cmdUTF8(arg string) error {
	if !s.noArgs("UTF8", arg) {
		return nil
	}
	s.utf8 = true
	s.okReply("UTF8 enabled")
	return nil
}

// login checks credentials, takes the maildrop lock and the snapshot, and moves the
// session to the TRANSACTION state (RFC 1939 §4). It returns the refusal otherwise.
func (s *session) login(user, password string) *loginError {
	acct, err := s.srv.opts.Auth.LoginFrom(s.ctx, store.ProtocolPOP3, s.conn.RemoteAddr(), user, password)
	if err != nil {
		s.srv.opts.Metrics.LoginFailed(metrics.POP3, auth.FailureReason(err))
	}
	switch {
	case err == nil:
	case errors.Is(err, auth.ErrBlocked):
		// RFC 3206 §4: SYS/TEMP, not AUTH: the credentials may well be right, the client
		// must not prompt for another password, only try again later.
		s.log.Info("pop3 login failed", "user", user, "reason", "address blocked")
		return &loginError{"SYS/TEMP", "too many failed logins from your address, try again later"}
	case errors.Is(err, auth.ErrFailed):
		s.log.Info("pop3 login failed", "user", user, "reason", "bad credentials")
		return &loginError{"AUTH", "invalid user name or password"}
	case errors.Is(err, auth.ErrProtocolNotAllowed):
		s.log.Info("pop3 login failed", "user", user, "reason", "POP3 not allowed")
		return &loginError{"AUTH", "this account may not use POP3"}
	case errors.Is(err, auth.ErrDisabled):
		s.log.Info("pop3 login failed", "user", user, "reason", "account disabled")
		return &loginError{"AUTH", "account disabled"}
	default:
		s.log.Warn("pop3 login failed", "user", user, "err", err)
		return &loginError{"SYS/TEMP", "authentication is temporarily unavailable, try again later"}
	}

	// RFC 1939 §4: an exclusive lock on the maildrop; RFC 2449 §8.1 [IN-USE].
	if !maildrops.acquire(s.ctx, s.srv.maildropKey(acct.ID), s.srv.lockWait) {
		s.log.Info("pop3 login refused", "user", acct.Address, "reason", "maildrop in use")
		return &loginError{"IN-USE", "maildrop is in use by another POP3 session"}
	}
	s.locked, s.acct = true, acct
	fail := func(e *loginError) *loginError {
		s.releaseMaildrop()
		s.acct = store.Account{}
		return e
	}
	// The same lock across the nodes of a clustered store (PostgreSQL): held until the
	// session ends, or its node does.
	unlock, err := s.srv.st.LockMaildrop(s.ctx, acct.ID)
	switch {
	case errors.Is(err, store.ErrMaildropInUse):
		s.log.Info("pop3 login refused", "user", acct.Address, "reason", "maildrop in use on another node")
		return fail(&loginError{"IN-USE", "maildrop is in use by another POP3 session"})
	case err != nil:
		s.log.Warn("pop3 cannot lock the maildrop", "user", acct.Address, "err", err)
		return fail(&loginError{"SYS/TEMP", "cannot lock the maildrop, try again later"})
	}
	s.unlockCluster = unlock

	// RFC 2449 §6.5, §8.1: LOGIN-DELAY.
	now := time.Now()
	if wait := s.srv.delays.wait(acct.ID, now, s.srv.opts.LoginDelay); wait > 0 {
		s.log.Info("pop3 login refused", "user", acct.Address, "reason", "login delay")
		return fail(&loginError{"LOGIN-DELAY", fmt.Sprintf("wait %d more seconds between logins",
			int((wait+time.Second-1)/time.Second))})
	}

	if err := s.loadMaildrop(); err != nil {
		s.log.Error("pop3 cannot open maildrop", "user", acct.Address, "err", err)
		if errors.Is(err, store.ErrNoSuchMailbox) || errors.Is(err, store.ErrNoSuchAccount) {
			// RFC 3206 §4: SYS/PERM, trying again will not help.
			return fail(&loginError{"SYS/PERM", "the maildrop does not exist"})
		}
		return fail(&loginError{"SYS/TEMP", "cannot open the maildrop, try again later"})
	}
	s.srv.delays.record(acct.ID, now, s.srv.opts.LoginDelay)
	s.state = stateTransaction
	s.log = s.log.With("user", acct.Address)
	s.log.Info("pop3 login", "messages", len(s.drop))
	sessions.Of(s.conn).SetUser(acct.Address)
	return nil
}

// okLoggedIn answers a successful login (RFC 1939 §7 PASS).
func (s *session) okLoggedIn() {
	n, size := s.dropStat()
	s.okReply(fmt.Sprintf("maildrop has %d messages (%d octets)", n, size))
}
