package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/letterbox-mail/letterbox/internal/accept"
	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/internal/trace"
)

// state is a POP3 session state (RFC 1939 §3); the values are bits so that a command can
// name every state it is allowed in.
type state uint8

const (
	stateAuthorization state = 1 << iota
	stateTransaction
	stateUpdate
)

func (st state) String() string {
	switch st {
	case stateAuthorization:
		return "AUTHORIZATION"
	case stateTransaction:
		return "TRANSACTION"
	case stateUpdate:
		return "UPDATE"
	}
	return "?"
}

// command is one entry of the command table.
type command struct {
	// run handles the command; arg is everything after the keyword and its space. It
	// writes the reply itself and returns an error only to end the session.
	run func(s *session, arg string) error
	// states are the states the command is allowed in; elsewhere it gets -ERR.
	states state
}

// commands is the command table (RFC 1939 §9, RFC 2449, RFC 2595, RFC 5034, RFC 6856).
// Keywords are matched case-insensitively (RFC 1939 §3).
var commands = map[string]command{
	// AUTHORIZATION state (RFC 1939 §4, §7; RFC 5034; RFC 2595; RFC 6856).
	"USER": {(*session).cmdUser, stateAuthorization},
	"PASS": {(*session).cmdPass, stateAuthorization},
	"AUTH": {(*session).cmdAuth, stateAuthorization},
	"APOP": {(*session).cmdApop, stateAuthorization},
	"STLS": {(*session).cmdStls, stateAuthorization},
	"UTF8": {(*session).cmdUTF8, stateAuthorization},
	// Both states.
	"CAPA": {(*session).cmdCapa, stateAuthorization | stateTransaction},
	"QUIT": {(*session).cmdQuit, stateAuthorization | stateTransaction},
	// TRANSACTION state (RFC 1939 §5, §7).
	"STAT": {(*session).cmdStat, stateTransaction},
	"LIST": {(*session).cmdList, stateTransaction},
	"RETR": {(*session).cmdRetr, stateTransaction},
	"TOP":  {(*session).cmdTop, stateTransaction},
	"DELE": {(*session).cmdDele, stateTransaction},
	"NOOP": {(*session).cmdNoop, stateTransaction},
	"RSET": {(*session).cmdRset, stateTransaction},
	"UIDL": {(*session).cmdUidl, stateTransaction},
}

// Line limits. RFC 2449 §4 allows 255 octets per command line; a little more is accepted
// for clients that exceed it. SASL responses (RFC 5034) may be longer.
const (
	maxCommandLine = 1024
	maxSASLLine    = 8 << 10
	readBufferSize = 4 << 10
	// writeBufferSize batches pipelined replies and streamed messages.
	writeBufferSize = 32 << 10
)

// Consecutive bad commands after which a session is closed.
const (
	maxBadBeforeLogin = 10
	maxBadAfterLogin  = 20
)

var (
	errLineTooLong = errors.New("pop3: line too long")
	// errQuit ends a session normally once its last reply is flushed.
	errQuit = errors.New("pop3: session ends")
	// errShuttingDown ends a session that was waiting for the client when Shutdown came.
	errShuttingDown = errors.New("pop3: server shutting down")
)

// session is one POP3 connection.
type session struct {
	srv    *Server
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	remote string

	// mu guards conn and idle against Shutdown's interruptIdle.
	mu   sync.Mutex
	conn net.Conn
	idle bool // blocked reading from the client

	r  *bufio.Reader
	w  *bufio.Writer
	dw *deadlineWriter // under w

	state     state
	tlsActive bool
	utf8      bool   // RFC 6856 UTF8 command given
	user      string // USER argument waiting for PASS
	haveUser  bool
	bad       int // consecutive bad commands

	// Set by a successful login.
	acct   store.Account
	mbox   store.Mailbox
	drop   []message
	locked bool
	// unlockCluster releases the maildrop lock between nodes (Store.LockMaildrop).
	unlockCluster func()

	// For the logout line (finish).
	start          time.Time
	rawConn        net.Conn // as accepted, beneath any STLS
	retrieved      int      // messages sent whole by RETR
	retrievedBytes int64    // octets RETR sent, before dot-stuffing
	deleted        int      // messages deleted by a committed QUIT
}

func newSession(srv *Server, conn net.Conn) *session {
	ctx, cancel := context.WithCancel(srv.ctx)
	s := &session{
		srv:     srv,
		ctx:     ctx,
		cancel:  cancel,
		conn:    conn,
		rawConn: conn,
		state:   stateAuthorization,
		start:   time.Now(),
	}
	if ra := conn.RemoteAddr(); ra != nil {
		s.remote = ra.String()
	}
	s.log = srv.log.With("remote", s.remote)
	_, s.tlsActive = conn.(*tls.Conn)
	s.setConn(conn)
	return s
}

// setConn (re)builds the buffered reader and writer over conn, dropping anything
// buffered from the previous connection layer (RFC 2595 §4 after STLS).
func (s *session) setConn(conn net.Conn) {
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
	s.r = bufio.NewReaderSize(conn, readBufferSize)
	s.dw = &deadlineWriter{conn: conn, timeout: s.srv.opts.IdleTimeout}
	s.w = bufio.NewWriterSize(s.dw, writeBufferSize)
}

// serve runs the session until QUIT, an error, a timeout or Shutdown.
func (s *session) serve() {
	reason := "closed"
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("pop3 session panic", "panic", v, "stack", string(debug.Stack()))
			reason = "panic"
		}
		s.finish(reason)
	}()
	s.log.Info("pop3 connect")

	if tc, ok := s.conn.(*tls.Conn); ok {
		// Implicit TLS (POP3S): finish the handshake before greeting.
		if err := s.waitClient(tc.Handshake); err != nil {
			s.log.Info("pop3 TLS handshake failed", "err", err)
			reason = "tls handshake failed"
			return
		}
		s.setConn(trace.Cleartext(tc)) // a traced session is traced decrypted from here
	}
	// RFC 1939 §4: the greeting. No <timestamp>: APOP is not offered.
	s.reply("+OK Letterbox POP3 server ready on " + s.srv.hostname)
	reason = s.loop()
}

// loop reads and executes commands; it returns why the session ended.
func (s *session) loop() string {
	for {
		// RFC 2449 §6.6 PIPELINING: answers to commands that are already buffered are
		// sent together, once the client has no further complete command waiting.
		if !s.commandWaiting() {
			if err := s.w.Flush(); err != nil {
				return "write failed"
			}
		}
		line, err := s.readLine(maxCommandLine)
		switch {
		case err == nil:
		case errors.Is(err, errLineTooLong):
			s.badReply("-ERR line too long")
			if s.tooManyBad() {
				return "too many bad commands"
			}
			continue
		case errors.Is(err, errShuttingDown):
			s.sayGoodbye("-ERR [SYS/TEMP] server shutting down")
			return "shutdown"
		case isTimeout(err):
			// RFC 1939 §3: autologout timer; no UPDATE, nothing is deleted.
			s.sayGoodbye("-ERR autologout: idle for too long")
			return "idle timeout"
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			return "connection closed"
		default:
			return "read failed"
		}
		if err := s.execute(line); err != nil {
			s.w.Flush()
			if errors.Is(err, errQuit) {
				return "quit"
			}
			if errors.Is(err, errShuttingDown) {
				return "shutdown"
			}
			s.log.Info("pop3 session ends after an error", "err", err)
			return "error"
		}
	}
}

// execute runs one command line.
func (s *session) execute(line []byte) error {
	name, arg := splitCommand(line)
	cmd, ok := commands[name]
	if ok {
		s.srv.opts.Metrics.Command(metrics.POP3, name)
	} else {
		s.srv.opts.Metrics.Command(metrics.POP3, "unknown")
	}
	switch {
	case name == "":
		s.badReply("-ERR empty command")
	case !ok:
		s.badReply("-ERR unknown command")
	case cmd.states&s.state == 0:
		s.badReply("-ERR " + name + " is not valid in the " + s.state.String() + " state")
	default:
		if err := cmd.run(s, arg); err != nil {
			return err
		}
	}
	if s.tooManyBad() {
		return errQuit
	}
	return nil
}

// tooManyBad reports whether the client sent too many bad commands in a row; if so it
// says goodbye, and the session is to end.
func (s *session) tooManyBad() bool {
	if s.bad < s.maxBad() {
		return false
	}
	s.log.Info("pop3 too many bad commands", "count", s.bad)
	s.sayGoodbye("-ERR too many bad commands, closing connection")
	return true
}

// commandWaiting reports whether a whole command line is already buffered.
func (s *session) commandWaiting() bool {
	n := s.r.Buffered()
	if n == 0 {
		return false
	}
	b, err := s.r.Peek(n)
	return err == nil && bytes.IndexByte(b, '\n') >= 0
}

func (s *session) maxBad() int {
	if s.state == stateAuthorization {
		return maxBadBeforeLogin
	}
	return maxBadAfterLogin
}

// splitCommand splits a command line into its keyword, upper-cased, and the rest after
// the single space that follows it (RFC 1939 §3). A keyword that is not plain ASCII
// letters and digits gives "?", which names no command.
func splitCommand(line []byte) (name, arg string) {
	kw, rest, _ := bytes.Cut(line, []byte{' '})
	if len(kw) == 0 {
		if len(rest) > 0 {
			return "?", ""
		}
		return "", ""
	}
	if len(kw) > 8 {
		return "?", ""
	}
	var up [8]byte
	for i, c := range kw {
		switch {
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			return "?", ""
		}
		up[i] = c
	}
	return string(up[:len(kw)]), string(rest)
}

// readLine reads one line from the client while marking the session idle, so that
// Shutdown can interrupt it. It also arms the autologout timer.
func (s *session) readLine(limit int) ([]byte, error) {
	var line []byte
	err := s.waitClient(func() error {
		var err error
		line, err = readLine(s.r, limit)
		return err
	})
	return line, err
}

// waitClient runs fn, which waits for the client, with the idle deadline armed and the
// session marked idle. It returns errShuttingDown if Shutdown interrupted it.
func (s *session) waitClient(fn func() error) error {
	s.mu.Lock()
	if s.srv.sessions.Closing() {
		s.mu.Unlock()
		return errShuttingDown
	}
	s.idle = true
	s.conn.SetReadDeadline(time.Now().Add(s.srv.opts.IdleTimeout))
	s.mu.Unlock()

	err := fn()

	s.mu.Lock()
	s.idle = false
	s.mu.Unlock()
	if err != nil && s.srv.sessions.Closing() {
		return errShuttingDown
	}
	return err
}

// interruptIdle wakes the session if it is waiting for the client (Shutdown). A session
// busy with a command finishes it and then sees that the server is closing.
func (s *session) interruptIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle {
		s.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// closeConn closes the connection once the session is over. After QUIT's +OK the client may
// still send (a command pipelined after QUIT), which a plain close would answer with a
// reset that can lose the +OK of a QUIT that committed deletions
// (accept.CloseAfterGoodbye); RFC 1939 §6 has the server close after it.
func (s *session) closeConn(quit bool) {
	s.mu.Lock()
	c := s.conn
	if !quit {
		defer s.mu.Unlock()
		c.Close()
		return
	}
	s.mu.Unlock()
	accept.CloseAfterGoodbye(c) // forceClose may close c meanwhile, which ends the wait
}

// forceClose closes the connection under the session's feet (Shutdown ran out of time).
func (s *session) forceClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn.Close()
}

// readLine reads one line of at most limit octets, without its line ending (CRLF, or a
// bare LF from a sloppy client). A longer line is consumed through its LF a buffer at a
// time, never held whole, and errLineTooLong returned.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > limit+2 {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err != nil {
				return nil, err
			}
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	if len(line) > limit {
		return nil, errLineTooLong
	}
	return line, nil
}

// finish releases what the session holds. It runs however the session ended; without
// QUIT nothing was committed, so nothing is deleted.
func (s *session) finish(reason string) {
	s.releaseMaildrop()
	s.cancel()
	defer s.closeConn(reason == "quit") // after the logout line: a client that saw the end finds it
	in, out, _ := metrics.Transferred(s.rawConn)
	attrs := []any{"reason", reason, "duration", time.Since(s.start).Round(time.Millisecond),
		"in", in, "out", out}
	if s.acct.ID == 0 {
		s.log.Info("pop3 disconnect", attrs...)
		return
	}
	// As Dovecot's pop3_logout_format: what was retrieved, what QUIT deleted (RFC 1939
	// §6: nothing unless the UPDATE state committed) and the maildrop as it was at login.
	var dropBytes, deletedBytes int64
	for _, m := range s.drop {
		dropBytes += m.size
		if m.deleted && s.deleted > 0 {
			deletedBytes += m.size
		}
	}
	s.log.Info("pop3 logout", append(attrs,
		"retrieved", s.retrieved, "retrieved_bytes", s.retrievedBytes,
		"deleted", s.deleted, "deleted_bytes", deletedBytes,
		"maildrop", len(s.drop), "maildrop_bytes", dropBytes)...)
}

// --- replies ---

// reply writes one response line. Write errors stick in the writer and end the session
// at the next flush.
func (s *session) reply(line string) {
	s.w.WriteString(line)
	s.w.WriteString("\r\n")
}

// okReply answers +OK and resets the bad-command count.
func (s *session) okReply(text string) {
	s.bad = 0
	if text == "" {
		s.reply("+OK")
		return
	}
	s.reply("+OK " + text)
}

// errReply answers -ERR for trouble that is not the client's fault.
func (s *session) errReply(line string) {
	s.reply(line)
}

// badReply answers -ERR for a bad command (the client's fault), which counts towards
// the limit of bad commands in a row.
func (s *session) badReply(line string) {
	s.bad++
	s.reply(line)
}

// sayGoodbye sends a last line to a client that may no longer listen.
func (s *session) sayGoodbye(line string) {
	s.dw.timeout = time.Second
	s.reply(line)
	s.w.Flush()
}

// noArgs refuses arguments to a command that takes none.
func (s *session) noArgs(name, arg string) bool {
	if strings.TrimSpace(arg) != "" {
		s.badReply("-ERR " + name + " takes no arguments")
		return false
	}
	return true
}

// deadlineWriter pushes the write deadline forward before every write, so a client that
// stops reading is dropped after the idle timeout while a slow but steady one is served.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.conn.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, fmt.Errorf("set write deadline: %w", err)
	}
	return d.conn.Write(p)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
