package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/accept"
	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/trace"
)

// readBufferSize is the buffer commands are read through. A session holds one from the
// first octet of a command to the end of its input (park, await), so it is small; literal
// data larger than it is read past it, straight into the handler's buffer.
const readBufferSize = 1 << 10

// readerPool holds the read buffers of the sessions that wait for their client: a session
// that has nothing buffered gives its bufio.Reader back before it blocks in a read, and
// takes one again when an octet has come (await).
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// readBuffersHeld counts the read buffers taken from readerPool and not given back: the
// sessions reading or running a command, not those waiting (tests assert it).
var readBuffersHeld atomic.Int64

// takeReader gives the session a read buffer from the pool, over connReader.
func (s *session) takeReader() {
	s.br = readerPool.Get().(*bufio.Reader)
	s.br.Reset(connReader{s})
	readBuffersHeld.Add(1)
	if s.in != nil {
		s.in.br = s.br
	}
}

// releaseReader gives the session's read buffer back to the pool; nothing may be buffered
// in it that is still to be read.
func (s *session) releaseReader() {
	if s.br == nil {
		return
	}
	s.br.Reset(nil) // the pool keeps no reference to the session
	readerPool.Put(s.br)
	readBuffersHeld.Add(-1)
	s.br = nil
	if s.in != nil {
		s.in.br = nil
	}
}

// hasInput says whether something read waits to be parsed: then the session does not
// wait for its client.
func (s *session) hasInput() bool {
	return s.br.Buffered() > 0 || s.ahead.buffered()
}

// waitFor is what a parked session waits for (park).
type waitFor uint8

const (
	waitNothing waitFor = iota // the greeting is out; the session starts
	waitCommand                // the next command
	waitDone                   // IDLE's DONE (idle.go)
)

// park is how a session waits for its client when nothing read waits to be parsed (between
// commands, or in IDLE): the session's goroutine, whose stack grew while it ran commands,
// hands the wait to a fresh goroutine (await) and ends. The runtime keeps a stack until
// less than a quarter of it is in use, counting its 800-octet guard as in use (shrinkstack,
// Go 1.26); a wait some 2.4 KiB deep at the end of the session's call chain kept an 8 KiB
// stack per idle session, where a goroutine that starts at the wait holds the smallest,
// 2 KiB (docs/performance.md, IDLE fan-out). The session gives its read buffer back to the
// pool first, and its answers are out: the waiting goroutine writes nothing, so its stack
// stays small. It must be the last thing the calling goroutine does with the session: the
// new goroutine owns it from here on.
func (s *session) park(w waitFor) {
	s.releaseReader()
	s.srv.sessions.Handoff(func() { s.await(w) })
}

// await waits for the client's next octet and then serves the session on, on this
// goroutine. The octet is read into the session (held), handed out first by connReader to
// the read buffer the session takes again; a read error is handed to whatever reads next.
// Reading one octet costs one more read system call per command that arrives alone;
// pipelined commands, already buffered, skip the wait. The read goes straight to the
// connection (or the inflater, under COMPRESS), not through connReader: nothing is left to
// flush, nothing is read ahead (the loop stopped it), and no quick ACK is wanted for this
// read, nor for the next (it reads the rest of the segment that brought the octet, there
// already), so the wait is as shallow as it can be.
func (s *session) await(w waitFor) {
	var n int
	var err error
	for n == 0 && err == nil {
		if s.compressed != nil {
			n, err = s.compressed.Read(s.held[:])
		} else {
			n, err = s.conn.Read(s.held[:])
		}
	}
	s.noAck = n > 0
	s.takeReader()
	var waitErr error
	if n > 0 {
		s.heldN, s.heldErr = n, err
	} else {
		waitErr = err
	}
	s.serve(w, waitErr)
}

// serve runs the session on the calling goroutine from w (what it waited for, with the
// error of the wait) until it ends, when it closes it (end), or parks again.
func (s *session) serve(w waitFor, waitErr error) {
	parked := false
	defer func() {
		if parked {
			return // the session goes on on the goroutine park started
		}
		if p := recover(); p != nil {
			s.log.Error("recovered from a panic; connection closed", "panic", p, "stack", string(debug.Stack()))
		}
		s.end()
	}()
	parked = s.loop(w, waitErr)
}

// preAuthTimeout ends a session that sends no command for this long before logging in;
// after login the autologout timer is IdleTimeout (RFC 3501 §5.4: at least 30 minutes).
const preAuthTimeout = 2 * time.Minute

// serveConn serves one connection, from the TLS handshake of implicit TLS to the logout
// line. It runs on its own goroutine until the session first waits for its client; from
// there the session goes on on the goroutine that saw the client's input (park), one
// goroutine at a time, every command in order.
func (s *Server) serveConn(raw net.Conn) {
	conn := raw
	var tlsState *tls.ConnectionState
	if tc, ok := raw.(*tls.Conn); ok {
		// RFC 8314 §3.2: TLS first, then the greeting.
		ctx, cancel := context.WithTimeout(s.ctx, tlsHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			s.log.Info("imap TLS handshake failed", "remote", tc.RemoteAddr().String(), "err", err)
			tc.Close()
			return
		}
		st := tc.ConnectionState()
		tlsState = &st
		conn = trace.Cleartext(tc) // a traced session is traced decrypted
	}
	sess := s.newSession(raw, conn, tlsState)
	if !s.sessions.Add(sess) {
		io.WriteString(conn, "* BYE [UNAVAILABLE] Server shutting down\r\n")
		conn.Close()
		return
	}
	sess.out.status("", imap.StatusResponseTypeOK, imap.ResponseCode("CAPABILITY "+sess.capabilityList()),
		s.opts.Hostname+" IMAP server ready")
	sess.serve(waitNothing, nil)
}

// loop reads and runs commands until the session ends (false) or parks (true). w is what
// the session waited for, with the error of the wait.
func (s *session) loop(w waitFor, waitErr error) bool {
	for {
		ok := true
		switch w {
		case waitNothing:
			// The greeting (serveConn) goes out as answers do.
			if err := s.out.flush(); err != nil {
				s.log.Debug("greeting", "err", err)
				return false
			}
		case waitCommand:
			ok = s.command(waitErr)
		case waitDone:
			ok = s.idleDone(waitErr)
		}
		if !ok {
			return false
		}
		if s.idle != nil { // IDLE waits for DONE (handleIdle)
			s.park(waitDone)
			return true
		}
		if !s.readyForCommand() {
			return false
		}
		if !s.hasInput() {
			s.park(waitCommand)
			return true
		}
		w, waitErr = waitCommand, nil
	}
}

// readyForCommand prepares the read of the next command: the read-ahead stopped, the read
// deadline set. It says BYE and returns false if the session is closing.
func (s *session) readyForCommand() bool {
	s.ahead.stop(s.conn) // what it read stays for the parser
	if !s.ahead.buffered() {
		s.ahead = nil // nothing left in it: an idle session holds none
	}
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.conn.SetReadDeadline(time.Now().Add(s.commandTimeout())) // under mu: see shutdown
	}
	s.mu.Unlock()
	if closing {
		s.bye(s.byeText)
		return false
	}
	s.in.literalMinus = s.acct == nil // LITERAL+ is announced after login only
	return true
}

// commandTimeout is how long the session waits for a command.
func (s *session) commandTimeout() time.Duration {
	if s.acct != nil {
		return s.srv.opts.IdleTimeout
	}
	return preAuthTimeout
}

// command reads and runs one command; waitErr is the error of the wait for it. It returns
// false when the session ends.
func (s *session) command(waitErr error) bool {
	var cmd *command
	err := waitErr
	if err == nil {
		cmd, err = s.in.readCommand()
	}
	var ie *imap.Error
	switch {
	case errors.As(err, &ie):
		return s.refuse(cmd, ie)
	case err != nil:
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			s.bye(s.byeText)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			s.log.Info("autologout: no command in time", "timeout", s.commandTimeout())
			s.bye("Autologout; idle for too long")
		} else {
			s.log.Debug("connection ended", "err", err)
		}
		return false
	}
	// The deadline stays while the command runs: a client that stops in the middle of
	// a literal or a SASL exchange is cut off as one that sends no command (IDLE
	// lifts it: IdleTimeout bounds it).
	if !s.run(cmd) {
		return false
	}
	if s.idle != nil {
		return true // IDLE goes on once DONE has come (idleDone)
	}
	return s.answered()
}

// answered ends a command: its answers go out when nothing more waits to be read (and, at
// the latest, before the next read from the network: connReader); pipelined commands
// share writes. It returns false when the session ends.
func (s *session) answered() bool {
	if s.br.Buffered() == 0 {
		if err := s.out.flush(); err != nil {
			s.log.Debug("writing", "err", err)
			return false
		}
	}
	return s.out.err == nil
}

// refuse answers a command that could not be read: BAD (or NO) by its tag, or untagged
// without one; a BYE ends the session. Before login, too many of them end it too (as
// Dovecot does, against other protocols talking to the port).
func (s *session) refuse(cmd *command, ie *imap.Error) bool {
	tag := ""
	if cmd != nil {
		tag = cmd.tag
	}
	s.log.Info("malformed client input", "detail", ie.Text)
	if ie.Type == imap.StatusResponseTypeBye {
		s.bye(ie)
		return false
	}
	s.out.statusError(tag, ie)
	if s.acct == nil && ie.Type == imap.StatusResponseTypeBad {
		if s.unknown++; s.unknown > maxBadBeforeLogin {
			s.bye(&imap.Error{Type: imap.StatusResponseTypeBye, Text: "Too many invalid commands"})
			return false
		}
	}
	if err := s.out.flush(); err != nil {
		return false
	}
	return true
}

// maxBadBeforeLogin is how many commands a client may get BAD for before it logs in.
const maxBadBeforeLogin = 3

// run runs one command: the table decides whether it may, the handler answers it, and
// its tagged status follows the poll for changes. It returns false when the session ends.
func (s *session) run(cmd *command) bool {
	spec, ie := s.lookupCommand(cmd)
	if ie != nil {
		return s.refuse(cmd, ie)
	}
	if spec.metric != "" {
		s.stats.commands++
		s.srv.opts.Metrics.Command(metrics.IMAP, spec.metric)
	}
	s.cmdDone, s.okResp, s.limited = false, nil, nil
	s.mayReadAhead = !spec.readsConn
	err := spec.handler(s, cmd)
	if s.idle != nil {
		// IDLE waits for DONE; finish follows it (idleDone). The idler's goroutines use
		// the session from here (mayReadAhead among it, false for IDLE): nothing more is
		// written to it before the wait.
		return true
	}
	s.mayReadAhead = false
	return s.finish(cmd, &spec, err)
}

// finish ends a command whose handler returned err: the poll for changes, the rest of the
// command's input skipped, and the tagged status. It returns false when the session ends.
func (s *session) finish(cmd *command, spec *commandSpec, err error) bool {
	if s.ended {
		return false
	}
	if err == nil && !spec.noPoll && s.sel != nil {
		err = s.Poll(&updateWriter{w: s.out}, !spec.noExpunge)
	}
	if err := s.in.finish(); err != nil && !errors.Is(err, io.EOF) {
		s.log.Debug("skipping the rest of a command", "err", err)
	}
	var resp *imap.Error
	switch {
	case err == nil:
		if s.cmdDone {
			return true // the handler wrote its tagged status
		}
		resp = s.okResp
		if resp == nil {
			resp = &imap.Error{Type: imap.StatusResponseTypeOK, Text: cmd.name + " completed"}
		}
		if s.limited != nil {
			resp = s.limitedResponse(resp, cmd.name) // RFC 9738 §3.1
		}
	case errors.As(err, &resp):
	default:
		if s.out.err != nil {
			s.log.Debug("writing", "err", s.out.err)
			return false
		}
		s.log.Error("command failed", "command", cmd.name, "err", err)
		resp = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal server error"}
	}
	s.out.statusError(cmd.tag, resp)
	return s.out.err == nil
}

// ok sets the tagged OK of the running command, with a response code; it follows the
// updates of the poll after the command.
func (s *session) ok(code imap.ResponseCode, text string) {
	s.okResp = &imap.Error{Type: imap.StatusResponseTypeOK, Code: code, Text: text}
}

// bye says BYE (RFC 3501 §7.1.5) and closes the connection, once. text is a string or an
// *imap.Error (a BYE with a code).
func (s *session) bye(reason any) {
	s.byeOnce.Do(func() {
		switch r := reason.(type) {
		case *imap.Error:
			s.out.status("", imap.StatusResponseTypeBye, r.Code, r.Text)
		case string:
			s.out.status("", imap.StatusResponseTypeBye, "", r)
		}
		if err := s.out.flush(); err != nil {
			s.log.Debug("BYE", "err", err)
		}
		s.conn.Close()
		s.ended = true
	})
}

// end runs when the connection is over, however it ended: the session lets go of its
// slot and registry entry, and writes its logout line (as Dovecot's imap_logout_format):
// one Info line per connection, STARTTLS or not, with the user (once logged in), how long
// it lasted, the bytes it moved on the wire (TLS included) and what it did.
func (s *session) end() {
	s.out.flush()
	// After the logout line, so that a client that saw the end finds it. After LOGOUT the
	// client may still send (a pipelined command, a compressor's flush marker), which a
	// plain close would answer with a reset that loses the tagged OK (accept.CloseAfterGoodbye).
	defer func() {
		if s.loggedOut {
			accept.CloseAfterGoodbye(s.conn)
		} else {
			s.conn.Close()
		}
	}()
	s.releaseReader()
	s.Close()
	s.mu.Lock()
	st, loggedIn := s.stats, s.acct != nil
	s.mu.Unlock()
	s.uncountClient()
	in, out, _ := metrics.Transferred(s.raw)
	msg := "imap disconnect"
	if loggedIn {
		msg = "imap logout"
	}
	s.log.Info(msg, "duration", time.Since(st.start).Round(time.Millisecond),
		"in", in, "out", out, "compressed", s.compressed != nil, "commands", st.commands,
		"fetched", st.fetched, "appended", st.appended, "expunged", st.expunged)
}

// connReader is what the session's bufio.Reader reads from: the connection, after the
// answers written so far have gone out (a read may wait for the client, which may be
// waiting for them). Before it waits for more of a command it has begun to read, it has
// what arrived acknowledged at once (quickack.go): a client with Nagle's algorithm on
// (Python's imaplib) sends a literal and the CRLF after it in two writes, the second held
// back until the first is acknowledged, and a delayed ACK would cost every APPEND 40 ms.
// Between commands the answer carries the ACK.
type connReader struct{ s *session }

func (c connReader) Read(p []byte) (int, error) {
	s := c.s
	if s.heldN > 0 && len(p) > 0 { // the octet await read
		p[0], s.heldN = s.held[0], 0
		return 1, nil // and the next read asks for no ACK (noAck stays)
	}
	if err := s.heldErr; err != nil {
		s.heldErr = nil
		return 0, err
	}
	if !s.readingDone && s.out.buffered() > 0 {
		if err := s.out.flush(); err != nil {
			return 0, err
		}
	}
	if s.noAck {
		s.noAck = false
	} else if s.in.midCommand() {
		if ackRequested != nil {
			ackRequested(s.in.literalInLine)
		}
		s.ack.now()
	}
	if s.compressed != nil {
		return s.compressed.Read(p) // COMPRESS=DEFLATE: inflated from rawReader (compress.go)
	}
	if n, err, ok := s.ahead.read(p); ok {
		return n, err
	}
	return s.conn.Read(p)
}

// ackRequested, set by tests only, is told of every ACK asked for, and whether a literal
// has ended in the line being read.
var ackRequested func(afterLiteral bool)

// setConn makes c the session's connection: at the start, and after STARTTLS. Whatever
// was read ahead from the old one is dropped.
func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.ahead = nil // nothing read ahead on the old connection carries over
	s.heldN, s.heldErr = 0, nil
	if s.br == nil {
		s.takeReader()
	}
	s.br.Reset(connReader{s}) // nothing buffered from the old one either
	s.in = newCommandReader(s.br, s.continueLiteral)
	s.in.appendLimit = s.srv.opts.AppendLimit
	s.in.utf8Names = s.utf8()
	if s.out == nil {
		s.out = newResponseWriter(nil)
	}
	s.out.dst = deadlineWriter{s}
	s.out.utf8 = s.utf8()
}

// writeTimeout is how long one write to the client may wait for it to read: a client that
// stops reading is cut off, not waited for (a write carries at most one buffer, 16 KiB).
const writeTimeout = 5 * time.Minute

// deadlineWriter gives every write to the connection writeTimeout. A write in the middle
// of a command that may read ahead (a response larger than the write buffer) starts the
// read-ahead first (readahead.go).
type deadlineWriter struct{ s *session }

func (d deadlineWriter) Write(p []byte) (int, error) {
	s := d.s
	if s.mayReadAhead {
		if s.ahead == nil {
			s.ahead = newReadAhead()
		}
		s.ahead.start(s.conn)
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return s.conn.Write(p)
}

// continueLiteral asks for a synchronizing literal's data (RFC 3501 §7.5).
func (s *session) continueLiteral() error {
	return s.out.continuation("Ready for literal data")
}

// utf8 says the client takes UTF-8 (UTF8=ACCEPT, RFC 6855, or IMAP4rev2, RFC 9051).
func (s *session) utf8() bool {
	return s.enabled.Has(imap.CapUTF8Accept) || s.enabled.Has(imap.CapIMAP4rev2)
}

// plaintextAllowed says whether LOGIN and AUTHENTICATE may carry passwords now.
func (s *session) plaintextAllowed() bool {
	return s.srv.opts.Auth != nil && s.srv.opts.Auth.Plaintext.Allowed(s.policyConn(), s.tlsState != nil)
}

// remoteString is the client's address for logs.
func remoteString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// readLine reads one line the client sends in answer to a continuation request (a SASL
// response, IDLE's DONE), within the command line limit.
func (s *session) readLine() (string, error) {
	var b strings.Builder
	for {
		chunk, err := s.br.ReadSlice('\n')
		if b.Len()+len(chunk) > commandLineLimit {
			// The rest of the line is skipped as it comes (and a literal it announces).
			if err == nil {
				return "", errLineTooLong
			}
			s.in.state = stLine
			if err := s.in.finish(); err != nil {
				return "", err
			}
			return "", errLineTooLong
		}
		b.Write(chunk)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(b.String(), "\r\n"), nil
	}
}
