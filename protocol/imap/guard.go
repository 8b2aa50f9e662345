package imap

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/emersion/go-imap/v2"
)

// maxCommandLine is the longest command the guard hands to imapserver: the octets of one
// command across its lines, literal data aside (as imapwire counts them for its MaxSize).
// RFC 2683 §3.2.1.5 asks servers to take at least 8000 octets; imapserver's own bound is
// 50 KiB (maxCommandSize), and this stays below it so that the guard, not imapserver,
// decides what happens to a longer command.
const maxCommandLine = 48 << 10

// maxUnknownBeforeLogin is how many unknown commands a client may send before it logs in;
// the next one ends the connection (as Dovecot does: a guard against other protocols
// talking to the IMAP port).
const maxUnknownBeforeLogin = 3

// errCommandTooLong answers an overlong command. RFC 5530 §3: LIMIT, "the operation ran
// up against an implementation limit of some kind"; BAD, since it is the command itself
// that cannot be taken (Dovecot answers BAD "Too long argument" likewise).
var errCommandTooLong = &imap.Error{
	Type: imap.StatusResponseTypeBad,
	Code: imap.ResponseCodeLimit,
	Text: fmt.Sprintf("Command line too long (the limit is %d octets, literals aside)", maxCommandLine),
}

// errLiteralRefused answers a command whose synchronizing literal imapserver refuses
// without saying so: it buffers literals of other commands than APPEND up to 4096 octets,
// and for a larger one sends no "+" and no answer, but reads on for the rest of the
// command, which the client, waiting for "+", never sends. The words are imapserver's own
// for a refused literal it does answer.
var errLiteralRefused = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeTooBig,
	Text: "Literals are limited to 4096 bytes for this command",
}

// maxBufferedLiteral is the largest literal imapserver takes in a command other than
// APPEND (checkBufferedLiteral); APPEND streams its message literal to the session.
const maxBufferedLiteral = 4096

// imapserver knows these commands; with UID, the second list.
var (
	knownCommands = map[string]bool{
		"NOOP": true, "CHECK": true, "LOGOUT": true, "CAPABILITY": true, "STARTTLS": true,
		"AUTHENTICATE": true, "UNAUTHENTICATE": true, "LOGIN": true, "ENABLE": true,
		"CREATE": true, "DELETE": true, "RENAME": true, "SUBSCRIBE": true, "UNSUBSCRIBE": true,
		"STATUS": true, "LIST": true, "LSUB": true, "NAMESPACE": true, "IDLE": true,
		"SELECT": true, "EXAMINE": true, "CLOSE": true, "UNSELECT": true, "APPEND": true,
		"FETCH": true, "EXPUNGE": true, "STORE": true, "COPY": true, "MOVE": true, "SEARCH": true,
	}
	knownUIDCommands = map[string]bool{
		"FETCH": true, "STORE": true, "COPY": true, "MOVE": true, "SEARCH": true, "EXPUNGE": true,
	}
)

// phase is where the guard is in the client's stream.
type phase uint8

const (
	phNew            phase = iota // a command starts: its tag and name are read and held
	phLine                        // inside a line of a command, handing it on
	phLineDone                    // a line ended without a literal: the command may be over
	phAwaitSync                   // a line ended with {n}: "+" or the tagged answer decides
	phLiteral                     // handing on literal data
	phOverflow                    // the command is too long: reads fail until it is answered
	phRefused                     // a {n} imapserver will not take: reads fail until it is answered
	phDiscard                     // the command was answered: the rest of its line is skipped
	phDiscardLiteral              // ... with a non-synchronizing literal announced in it
	phClosed                      // handed over to TLS, or ended: reads end
)

// guardConn sits between every IMAP connection and imapserver (route, starttls.go). It
// follows the client's commands line by line, literals included, and the server's
// responses, and does what imapserver does not:
//
//   - A command longer than maxCommandLine (literals aside) is answered BAD [LIMIT] and the
//     rest of its line is skipped as it arrives, never buffered; the session goes on.
//     imapserver would answer such a command NO [SERVERBUG] and read the rest of the line
//     as the next command, which ends the connection. The guard hands imapserver no more
//     than the limit and then fails every read with errCommandTooLong, which imapwire keeps
//     as the decoder's error and imapserver writes as the tagged answer; once that answer
//     passes through Write, the guard skips the rest of the line. A command whose tag or
//     name alone is too long cannot be answered by tag: the guard says BYE (as Dovecot).
//   - Before login, unknown commands are answered BAD by the guard itself (imapserver would
//     close the connection at the first one; RFC 3501 asks for BAD), up to
//     maxUnknownBeforeLogin, then BYE.
//   - On a plaintext connection with TLS configured, STARTTLS before login is done here,
//     not by imapserver (starttls.go), so that the TLS session gets a guard too.
//
// The guard hands imapserver at most the rest of one line per Read, and reads the next
// command's first bytes only when imapserver asks for them. imapserver handles one command
// at a time, so when it asks, everything before has been answered: answers the guard
// writes itself keep their order, and every tagged answer the guard sees in Write belongs
// to the command it is handing on. The server's own literals (FETCH bodies) are skipped
// in Write, so that nothing inside a message is taken for a response.
type guardConn struct {
	net.Conn // beneath: the cork (cork.go)

	srv       *Server
	raw       net.Conn // the accepted connection, for STARTTLS; nil on TLS
	tlsActive bool
	ack       quickAcker   // the TCP connection beneath, to acknowledge a literal at once
	authed    atomic.Bool  // set by the session at login: the pre-login filter steps aside
	handedOff atomic.Bool  // STARTTLS handed the connection to a new imapserver connection
	handed    atomic.Int64 // octets handed to imapserver, literals included (tests read it)

	// Set before the first read by the session (newSession), and for a connection that
	// began before STARTTLS by startTLS; used by imapserver's goroutine only.
	sess   *session
	origin *sessionOrigin

	// Read side: imapserver's goroutine only.
	buf     []byte
	pending []byte // read from the network, not yet looked at
	head    []byte // the tag and name of the command starting, held until judged
	hp      headParser
	unknown int

	// Shared with Write (which IDLE's updates call from another goroutine).
	mu       sync.Mutex
	ph       phase
	tag      string      // the command being handed on
	isAppend bool        // it is APPEND
	onlyName nameArgs    // what of it imapserver may fail to decode beyond syntax
	command  string      // its name, upper case (List tells LSUB from LIST by it)
	count    int         // its octets so far, literals aside
	midLine  bool        // some of the current line was handed on
	cont     bool        // "+" asked for a continuation line (IDLE's DONE, a SASL response)
	litScan  literalScan // the client's line
	literal8 bool        // the last literal the client announced is a literal8 (~{n})
	litN     int64       // literal octets left (phLiteral, phDiscardLiteral) or announced (phAwaitSync)
	out      outScanner
	greet    []byte // skipGreeting: the greeting line so far
	// skipGreeting drops imapserver's greeting: after STARTTLS the client expects none
	// (RFC 9051 §6.2.1).
	skipGreeting bool
}

// sessionOrigin is what a session started before STARTTLS carries into the session that
// goes on after it: one logout line, from the first connect.
type sessionOrigin struct {
	start    time.Time
	commands int
}

// guardReadSize is the guard's read buffer for command lines. Every connection holds one
// for its whole life, idle ones included (an idle session waits in a read), so it is kept
// small: 16 KiB here cost 8 KB more per idle session (31 → 39 KB, 3000 idlers). Literal
// data does not pass through it: readLiteral reads into imapserver's own buffer.
const guardReadSize = 1 << 10

func newGuardConn(srv *Server, c, raw net.Conn, tlsActive bool) *guardConn {
	return &guardConn{Conn: c, srv: srv, raw: raw, tlsActive: tlsActive, buf: make([]byte, guardReadSize),
		ack: newQuickAcker(c)}
}

// NetConn is the connection beneath the guard: sessions.Of and metrics.Transferred look
// through it.
func (g *guardConn) NetConn() net.Conn { return g.Conn }

// Close closes the connection, unless it lives on under TLS in another imapserver
// connection.
func (g *guardConn) Close() error {
	if g.handedOff.Load() {
		return nil
	}
	return g.Conn.Close()
}

// The deadlines of a connection handed over to TLS belong to its new imapserver connection.
func (g *guardConn) SetDeadline(t time.Time) error {
	if g.handedOff.Load() {
		return nil
	}
	return g.Conn.SetDeadline(t)
}

func (g *guardConn) SetReadDeadline(t time.Time) error {
	if g.handedOff.Load() {
		return nil
	}
	return g.Conn.SetReadDeadline(t)
}

func (g *guardConn) SetWriteDeadline(t time.Time) error {
	if g.handedOff.Load() {
		return nil
	}
	return g.Conn.SetWriteDeadline(t)
}

func (g *guardConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		switch g.ph {
		case phClosed:
			return 0, io.EOF
		case phOverflow:
			return 0, errCommandTooLong
		case phRefused:
			return 0, errLiteralRefused
		case phLineDone:
			if g.cont { // IDLE's DONE, a SASL response: the same command goes on
				g.cont, g.ph, g.midLine = false, phLine, false
			} else {
				g.newCommand()
			}
		case phAwaitSync:
			// imapserver reads on with neither "+" nor an answer: it refused the literal,
			// which the client therefore never sends.
			g.ph, g.litN = phRefused, 0
			continue
		}
		if g.ph == phLiteral {
			if n, err := g.readLiteral(p); n > 0 || err != nil {
				return n, err
			}
			continue
		}
		if len(g.pending) == 0 {
			if err := g.fill(); err != nil {
				return 0, err
			}
			continue
		}
		switch g.ph {
		case phNew:
			if done, err := g.readHead(); done {
				return 0, err
			}
		case phLine:
			if n, err := g.readLine(p); n > 0 || err != nil {
				return n, err
			}
		case phDiscard:
			g.discardLine()
		case phDiscardLiteral:
			k := min(g.litN, int64(len(g.pending)))
			g.pending, g.litN = g.pending[k:], g.litN-k
			if g.litN == 0 {
				g.ph = phDiscard
			}
		}
	}
}

// fill reads from the network into pending, which must be empty; g.mu is released
// meanwhile (Write may change the phase).
func (g *guardConn) fill() error {
	g.ackIfMidCommand()
	g.mu.Unlock()
	n, err := g.Conn.Read(g.buf)
	g.mu.Lock()
	g.pending = g.buf[:n]
	if n == 0 && err != nil {
		return err
	}
	return nil // an error with data comes again at the next read
}

// ackIfMidCommand acknowledges what has arrived before the guard waits for more of a
// command it has begun to read (quickack.go): a client holding back the CRLF after a
// literal until it is acknowledged would otherwise wait for the kernel's delayed ACK. Between
// commands the answer carries the ACK, and nothing is done.
func (g *guardConn) ackIfMidCommand() {
	if g.ph != phNew || len(g.head) > 0 {
		if ackRequested != nil {
			ackRequested(g.ph, g.midLine)
		}
		g.ack.now()
	}
}

// ackRequested, set by tests only, is told of every ACK the guard asks for: the phase of
// the command being read, and whether a literal has ended in its current line.
var ackRequested func(ph phase, afterLiteral bool)

// newCommand starts on the next command.
func (g *guardConn) newCommand() {
	g.ph, g.tag, g.isAppend, g.onlyName, g.command, g.count, g.midLine, g.cont = phNew, "", false, nameOther, "", 0, false, false
	g.litScan = literalScan{}
	g.head, g.hp = g.head[:0], headParser{}
}

// readLiteral hands on literal data, straight from the network when nothing is pending.
func (g *guardConn) readLiteral(p []byte) (int, error) {
	var n int
	var err error
	if len(g.pending) > 0 {
		n = copy(p[:min(int64(len(p)), g.litN)], g.pending)
		g.pending = g.pending[n:]
	} else {
		g.ackIfMidCommand()
		g.mu.Unlock()
		n, err = g.Conn.Read(p[:min(int64(len(p)), g.litN)])
		g.mu.Lock()
		if g.ph != phLiteral { // answered meanwhile: these octets are skipped too
			g.litN -= int64(n)
			if g.ph == phDiscardLiteral && g.litN <= 0 {
				g.ph = phDiscard
			}
			if n > 0 {
				return 0, nil // Read goes on
			}
			return 0, err
		}
	}
	g.litN -= int64(n)
	if g.litN == 0 { // the command goes on after its literal
		g.ph, g.litScan = phLine, literalScan{}
	}
	g.handed.Add(int64(n))
	return n, err
}

// readLine hands on the current line up to its end, as far as the limit allows.
func (g *guardConn) readLine(p []byte) (int, error) {
	seg := g.pending
	end := bytes.IndexByte(seg, '\n')
	if end >= 0 {
		seg = seg[:end+1]
	}
	room := maxCommandLine - g.count
	if room <= 0 {
		g.ph = phOverflow
		g.logger().Info("command line too long; answered BAD", "limit", maxCommandLine)
		return 0, errCommandTooLong
	}
	seg = seg[:min(len(seg), len(p), room)]
	n := copy(p, seg)
	g.pending = g.pending[n:]
	g.count += n
	g.midLine = true
	g.litScan.feed(seg)
	if seg[n-1] == '\n' {
		g.endLine()
	}
	g.handed.Add(int64(n))
	return n, nil
}

// endLine follows the end of a client line: a literal follows, or the command may be over.
func (g *guardConn) endLine() {
	n, sync, ok := g.litScan.literal()
	g.literal8 = ok && g.litScan.tilde
	g.litScan = literalScan{}
	switch {
	case !ok:
		g.ph, g.midLine, g.cont = phLineDone, false, false
	case sync: // RFC 3501 §7.5: the client waits for "+" before it sends the literal
		g.ph, g.litN = phAwaitSync, n
	case n == 0:
		g.ph = phLine
	case n > maxBufferedLiteral && !g.isAppend:
		// RFC 7888: {n+} follows at once, but imapserver would read it as the rest of
		// the command: it refuses the literal, and it is skipped once that is answered.
		g.ph, g.litN = phRefused, n
	default:
		g.ph, g.litN = phLiteral, n
	}
}

// discardLine skips pending octets up to the end of the line, and the non-synchronizing
// literals announced at the ends of it and of its continuations.
func (g *guardConn) discardLine() {
	seg := g.pending
	end := bytes.IndexByte(seg, '\n')
	if end >= 0 {
		seg = seg[:end+1]
	}
	g.pending = g.pending[len(seg):]
	g.litScan.feed(seg)
	if end < 0 {
		return
	}
	n, sync, ok := g.litScan.literal()
	g.litScan = literalScan{}
	switch {
	case ok && !sync && n > 0:
		g.ph, g.litN = phDiscardLiteral, n
	case ok && !sync:
	default:
		// A synchronizing literal is never sent: the client got its answer, not "+".
		g.newCommand()
	}
}

// readHead reads the tag and name of a new command and judges them: the command is handed
// on (readLine goes on), answered here, or STARTTLS begins. done says that Read returns
// err now.
func (g *guardConn) readHead() (done bool, err error) {
	for len(g.pending) > 0 && !g.hp.done {
		c := g.pending[0]
		if !g.hp.take(c, len(g.head), g.head, g.mayStartTLS()) {
			break
		}
		g.head = append(g.head, c)
		g.pending = g.pending[1:]
		if len(g.head) >= maxCommandLine && !g.hp.done {
			return true, g.tooLongHead()
		}
	}
	if !g.hp.done {
		return false, nil // more is needed
	}
	hp := g.hp
	if hp.tagEnd > 0 {
		g.tag = string(g.head[:hp.tagEnd])
	}
	if hp.nameEnd > hp.nameStart {
		g.isAppend = hp.name(g.head) == "APPEND"
		g.onlyName = mailboxNameCommands[hp.name(g.head)]
		g.command = hp.name(g.head)
	}
	switch {
	case hp.startTLS:
		g.pending = nil // RFC 3501 §6.2.1, CVE-2011-0411: what the client pipelined is dropped
		g.mu.Unlock()
		err := g.startTLS(g.tag)
		g.mu.Lock()
		g.ph = phClosed
		return true, err
	case !hp.malformed && !g.authed.Load() && !known(hp.name(g.head), hp.sub(g.head)):
		g.unknown++
		line := g.tag + " BAD Unknown command\r\n"
		last := g.unknown > maxUnknownBeforeLogin
		if last {
			line += "* BYE Too many unknown commands\r\n"
		}
		g.head, g.litScan = g.head[:0], literalScan{}
		g.ph = phDiscard
		g.mu.Unlock()
		_, err := io.WriteString(g.Conn, line)
		g.mu.Lock()
		if last {
			g.ph = phClosed
			g.Conn.Close()
			return true, io.EOF
		}
		return err != nil, err
	}
	// Hand the command on from its first octet: readLine counts it and finds its end.
	rest := g.pending
	g.pending = append(g.head[:len(g.head):len(g.head)], rest...)
	g.head = nil
	g.ph = phLine
	return false, nil
}

// tooLongHead ends a connection whose command is too long before its name ends: there is
// no tag to answer (Dovecot: "* BYE Input buffer full").
func (g *guardConn) tooLongHead() error {
	g.ph = phClosed
	g.pending = nil
	g.logger().Info("command tag or name too long; connection closed", "limit", maxCommandLine)
	g.mu.Unlock()
	io.WriteString(g.Conn, "* BYE [LIMIT] Command line too long\r\n")
	g.mu.Lock()
	return io.EOF
}

// logger is the session's logger (with the remote address, and the user once logged in).
func (g *guardConn) logger() *slog.Logger {
	if g.sess != nil {
		return g.sess.log
	}
	return g.srv.log
}

// mayStartTLS reports whether STARTTLS is the guard's to do: before login, on a plaintext
// connection, with TLS configured.
func (g *guardConn) mayStartTLS() bool {
	return !g.tlsActive && g.raw != nil && g.srv.opts.TLSConfig != nil && !g.authed.Load()
}

// known reports whether imapserver knows a command; a UID without its second name is left
// to imapserver, which refuses it.
func known(name, sub string) bool {
	if name == "UID" {
		return sub == "" || knownUIDCommands[sub]
	}
	return knownCommands[name]
}

// headParser reads "tag SP name [SP subname]" as imapserver's readCommand does (atoms,
// single spaces), and for STARTTLS the CRLF after it (imapwire's CRLF takes an optional
// space, an optional CR and LF).
type headParser struct {
	stage     uint8 // 0 tag, 1 name, 2 UID's subname, 3 STARTTLS's line end
	done      bool
	malformed bool // not a command imapserver can read: it handles that itself
	startTLS  bool // a complete STARTTLS command
	tagEnd    int
	nameStart int
	nameEnd   int
	subStart  int
	subEnd    int
	crlfSeen  uint8 // stage 3: 1 after SP, 2 after CR
}

func (h *headParser) name(head []byte) string {
	return strings.ToUpper(string(head[h.nameStart:h.nameEnd]))
}

func (h *headParser) sub(head []byte) string {
	if h.subEnd <= h.subStart {
		return ""
	}
	return strings.ToUpper(string(head[h.subStart:h.subEnd]))
}

// take looks at the next octet c, at offset i of the head; it reports whether c belongs
// to the head (else it is left for the line, and the head is done).
func (h *headParser) take(c byte, i int, head []byte, mayStartTLS bool) bool {
	switch h.stage {
	case 0:
		switch {
		case isAtomChar(c):
			return true
		case c == ' ' && i > 0:
			h.tagEnd, h.nameStart, h.stage = i, i+1, 1
			return true
		}
		h.done, h.malformed = true, true
		return false
	case 1:
		if isAtomChar(c) {
			return true
		}
		h.nameEnd = i
		if h.nameEnd == h.nameStart {
			h.done, h.malformed = true, true
			return false
		}
		switch name := h.name(head); {
		case name == "UID" && c == ' ':
			h.subStart, h.subEnd, h.stage = i+1, i+1, 2
			return true
		case name == "STARTTLS" && mayStartTLS:
			h.stage = 3
			return h.take(c, i, head, mayStartTLS)
		}
		h.done = true
		return false
	case 2:
		if isAtomChar(c) {
			h.subEnd = i + 1
			return true
		}
		h.done = true
		return false
	default:
		switch {
		case c == ' ' && h.crlfSeen == 0:
			h.crlfSeen = 1
			return true
		case c == '\r' && h.crlfSeen < 2:
			h.crlfSeen = 2
			return true
		case c == '\n':
			h.done, h.startTLS = true, true
			return true
		}
		h.done = true // arguments: imapserver answers BAD
		return false
	}
}

// isAtomChar is imapwire's ATOM-CHAR (RFC 3501 §9), as imapserver reads tags and names.
func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return !unicode.IsControl(rune(c))
}

// literalScan recognises a literal announced at the end of a line: {n} (RFC 3501 §4.3),
// {n+} (RFC 7888) or ~{n} (RFC 3516: a literal8, noted for APPEND, which stores its octets
// unchanged).
type literalScan struct {
	st     uint8 // 0 nothing, 1 digits after "{", 2 after "+", 3 after "}", 4 after "}\r", 5 after "}\r\n"
	n      int64
	digits int
	plus   bool
	tilde  bool // the literal is a literal8: "~" came right before its "{"
	prev   byte // the octet fed before
}

// feed follows octets of a line. A literal's announcement is at most 23 octets long, so
// of a long segment only its end matters.
func (s *literalScan) feed(b []byte) {
	if len(b) > 32 {
		*s = literalScan{}
		b = b[len(b)-32:]
	}
	for _, c := range b {
		prev := s.prev
		s.prev = c
		switch {
		case c == '{':
			*s = literalScan{st: 1, tilde: prev == '~', prev: c}
		case s.st == 1 && c >= '0' && c <= '9':
			if s.digits == 18 { // absurd: imapserver refuses it
				s.st = 0
				continue
			}
			s.n, s.digits = s.n*10+int64(c-'0'), s.digits+1
		case s.st == 1 && c == '+' && s.digits > 0:
			s.st, s.plus = 2, true
		case (s.st == 1 && s.digits > 0 || s.st == 2) && c == '}':
			s.st = 3
		case s.st == 3 && c == '\r':
			s.st = 4
		case (s.st == 3 || s.st == 4) && c == '\n':
			s.st = 5
		default:
			s.st = 0
		}
	}
}

// literal reports the literal announced by a line that ended with the last octet fed.
func (s *literalScan) literal() (n int64, sync, ok bool) {
	return s.n, !s.plus, s.st == 5
}

// outScanner follows the server's responses: where lines start, and the literals to skip.
type outScanner struct {
	lit     int64 // literal octets still to skip
	decided bool  // the start of the current line is classified
	kind    uint8 // 0 other, 1 "+", 2 tagged with the command's tag
	pos     int   // octets of "tag " matched so far
	scan    literalScan
}

func (g *guardConn) Write(p []byte) (int, error) {
	if g.handedOff.Load() {
		return 0, net.ErrClosed // the old imapserver connection saying BYE: not in TLS
	}
	g.mu.Lock()
	if g.skipGreeting {
		return g.writeAfterGreeting(p)
	}
	out, rewritten := g.clientBug(p)
	g.scanOut(out)
	g.mu.Unlock()
	if rewritten {
		if _, err := g.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return g.Conn.Write(p)
}

// undecodable is imapserver's answer to a command it failed on for a reason other than
// syntax (go-imap v2 beta.8: internalServerErrorResp).
const undecodable = " NO [SERVERBUG] Internal server error\r\n"

// clientBug puts right imapserver's answer to a command whose arguments parsed but could
// not be decoded (a mailbox name that is not modified UTF-7, RFC 3501 §5.1.3; a number
// beyond 32 bits; a date that is no date): imapserver answers NO [SERVERBUG], as if the
// fault were ours; it is the client's, BAD [CLIENTBUG] (RFC 5530 §3). imapserver gives
// that exact answer to any error that is not an *imap.Error; the session turns every
// failure of the store into an *imap.Error with its own text (storeError), and what else
// can fail in it raw is a write to a connection already gone, so the answer is
// imapserver's own (TestServerFaultStaysOurs). imapserver writes a status
// response in one Write. g.mu is held.
//
// A command whose only argument imapserver decodes beyond syntax is a mailbox name
// (mailboxNameCommands) is answered NO instead, as Dovecot does: the name is well formed
// IMAP, it just names no mailbox that can exist (RFC 3501 §5.1.3 leaves the answer to the
// server).
func (g *guardConn) clientBug(p []byte) (out []byte, rewritten bool) {
	if g.tag == "" || len(p) != len(g.tag)+len(undecodable) ||
		!bytes.HasPrefix(p, []byte(g.tag)) || string(p[len(g.tag):]) != undecodable {
		return p, false
	}
	switch g.onlyName {
	case nameList:
		// A pattern no mailbox name can match: nothing to list (as Dovecot).
		return []byte(g.tag + " OK No mailbox matches\r\n"), true
	case nameOne:
		return []byte(g.tag + " NO Mailbox name is not valid modified UTF-7\r\n"), true
	}
	return []byte(g.tag + " BAD [CLIENTBUG] Arguments could not be decoded (a mailbox name not in modified UTF-7, a number out of range, or a bad date)\r\n"), true
}

// mailboxNameCommands take no argument imapserver decodes beyond its syntax but mailbox
// names: imapserver failing one of them (NO [SERVERBUG]) means a name not in modified UTF-7.
// LIST and LSUB take patterns: one that is not modified UTF-7 matches nothing.
var mailboxNameCommands = map[string]nameArgs{
	"SELECT": nameOne, "EXAMINE": nameOne, "CREATE": nameOne, "DELETE": nameOne, "RENAME": nameOne,
	"SUBSCRIBE": nameOne, "UNSUBSCRIBE": nameOne, "STATUS": nameOne, "LIST": nameList, "LSUB": nameList,
}

// nameArgs says what of a command imapserver may fail to decode beyond its syntax.
type nameArgs uint8

const (
	nameOther nameArgs = iota // numbers, dates or names: BAD [CLIENTBUG]
	nameOne                   // only mailbox names: NO
	nameList                  // only a reference and a pattern: OK, nothing listed
)

// writeAfterGreeting drops imapserver's greeting ("* OK ..."); a BYE goes out.
func (g *guardConn) writeAfterGreeting(p []byte) (int, error) {
	end := bytes.IndexByte(p, '\n')
	if end < 0 && len(g.greet)+len(p) < 8<<10 {
		g.greet = append(g.greet, p...)
		g.mu.Unlock()
		return len(p), nil
	}
	line := append(g.greet, p[:end+1]...)
	rest := p[end+1:]
	g.greet, g.skipGreeting = nil, false
	if bytes.HasPrefix(line, []byte("* OK")) {
		line = nil
	}
	send := append(line, rest...)
	g.scanOut(send)
	g.mu.Unlock()
	if len(send) > 0 {
		if _, err := g.Conn.Write(send); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// scanOut follows what imapserver writes; g.mu is held.
func (g *guardConn) scanOut(p []byte) {
	o := &g.out
	want := g.tag + " "
	for len(p) > 0 {
		if o.lit > 0 {
			k := min(o.lit, int64(len(p)))
			o.lit -= k
			p = p[k:]
			continue
		}
		seg := p
		end := bytes.IndexByte(p, '\n')
		if end >= 0 {
			seg = p[:end+1]
		}
		p = p[len(seg):]
		for i := 0; i < len(seg) && !o.decided; i++ {
			c := seg[i]
			switch {
			case o.pos == 0 && c == '+':
				o.kind, o.decided = 1, true
			case g.tag != "" && c == want[o.pos]:
				if o.pos++; o.pos == len(want) {
					o.kind, o.decided = 2, true
				}
			default:
				o.kind, o.decided = 0, true
			}
		}
		o.scan.feed(seg)
		if end < 0 {
			continue
		}
		if n, _, ok := o.scan.literal(); ok {
			o.lit = n
		}
		switch {
		case !o.decided:
		case o.kind == 1:
			g.continuation()
		case o.kind == 2:
			g.answered()
		}
		o.decided, o.kind, o.pos, o.scan = false, 0, 0, literalScan{}
	}
}

// continuation follows a "+": the literal the client announced may come, or the command
// reads another line (IDLE, AUTHENTICATE).
func (g *guardConn) continuation() {
	switch g.ph {
	case phAwaitSync:
		if g.litN > 0 {
			g.ph, g.midLine = phLiteral, true
		} else {
			g.ph = phLine
		}
	case phLineDone:
		g.cont = true
	}
}

// answered follows the tagged answer to the command being handed on: whatever of it
// imapserver did not read is skipped, and the next command starts.
func (g *guardConn) answered() {
	switch g.ph {
	case phOverflow:
		g.ph = phDiscard
	case phLine:
		if g.midLine {
			g.ph = phDiscard
		} else {
			g.newCommand()
		}
	case phLiteral: // RFC 7888: a refused non-synchronizing literal is skipped
		g.ph = phDiscardLiteral
	case phRefused:
		if g.litN > 0 { // non-synchronizing: sent all the same
			g.ph = phDiscardLiteral
		} else {
			g.newCommand()
		}
	case phAwaitSync, phLineDone: // a refused synchronizing literal is never sent
		g.newCommand()
	}
}
