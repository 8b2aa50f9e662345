package imap

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// The command grammar of RFC 3501 §9 and RFC 9051 §9, with the extensions Letterbox
// announces (LITERAL+/LITERAL- RFC 7888, BINARY RFC 3516, UIDPLUS RFC 4315, MOVE RFC 6851,
// ESEARCH RFC 4731, SEARCHRES RFC 5182, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819,
// CREATE-SPECIAL-USE RFC 6154, UTF8=ACCEPT RFC 6855, ENABLE RFC 5161) and the command
// modifiers of CONDSTORE/QRESYNC (RFC 7162; answered in condstore.go and qresync.go).
//
// A commandReader reads one command at a time straight from the connection's buffered
// reader, octet by octet; nothing is read ahead of what the grammar needs, except by the
// bufio.Reader beneath. A synchronizing literal is asked for (continueLiteral: "+" and a
// flush) only when the parser comes to need its data, and APPEND's message literal is not
// read by the parser at all: the handler streams it (appendMessage.Body).
//
// Limits live here: a command's octets outside literals (commandLineLimit), one buffered
// literal and all of a command's buffered literals (bufferedLiteralLimit,
// bufferedLiteralsLimit), APPEND's literal (the append limit) and the nesting of
// parenthesised lists (nestingLimit). An error is an *imap.Error to answer (BAD, NO, or
// for a tag that cannot be read, BYE); any other error is the connection's. After an
// error the reader's finish skips what the client still sends of the command.

const (
	// commandLineLimit bounds one command's octets outside literals, CRLFs included.
	// RFC 2683 §3.2.1.5 asks servers to take at least 8000.
	commandLineLimit = 48 << 10
	// bufferedLiteralLimit bounds one literal of a command other than APPEND: those are
	// held in memory (a password, a search string).
	bufferedLiteralLimit = 4096
	// bufferedLiteralsLimit bounds all the literals of one such command together.
	bufferedLiteralsLimit = 64 << 10
	// literalMinusLimit is the largest non-synchronizing literal LITERAL- allows (RFC 7888
	// §4), when LITERAL+ is not in force.
	literalMinusLimit = 4096
	// nestingLimit bounds parenthesised lists inside each other (SEARCH keys).
	nestingLimit = 32
)

var (
	errLineTooLong = &imap.Error{
		Type: imap.StatusResponseTypeBad,
		Code: imap.ResponseCodeLimit,
		Text: fmt.Sprintf("Command line too long (the limit is %d octets, literals aside)", commandLineLimit),
	}
	// errHeadTooLong: a tag or command name alone is too long; there is no tag to answer.
	errHeadTooLong = &imap.Error{
		Type: imap.StatusResponseTypeBye,
		Code: imap.ResponseCodeLimit,
		Text: "Command tag or name too long",
	}
	errTooDeep = &imap.Error{
		Type: imap.StatusResponseTypeBad,
		Code: imap.ResponseCodeLimit,
		Text: fmt.Sprintf("Lists nested deeper than %d", nestingLimit),
	}
)

// badSyntax is a BAD answer to a command that does not parse.
func badSyntax(format string, args ...any) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: fmt.Sprintf(format, args...)}
}

// readState is how much of the current command the reader has taken.
type readState uint8

const (
	stLine    readState = iota // inside a line: its rest belongs to the command
	stLiteral                  // a literal was announced and not (wholly) read
	stDone                     // the command's last CRLF was read
)

// command is one parsed command.
type command struct {
	tag  string
	name string // upper case; "UID FETCH" etc. for the UID forms
	args any    // the command's *xxxArgs, nil for a command without arguments
}

// commandReader parses commands from a client.
type commandReader struct {
	br *bufio.Reader
	// continueLiteral asks for the data of a synchronizing literal (RFC 3501 §7.5): it
	// writes a "+" continuation request and flushes. It is called only once the literal
	// is known to be acceptable.
	continueLiteral func() error
	// appendLimit bounds APPEND's message literals (RFC 7889).
	appendLimit int64
	// utf8Names: the client enabled UTF8=ACCEPT or IMAP4rev2; mailbox names are UTF-8
	// (RFC 6855 §3, RFC 9051 §5.1), not modified UTF-7.
	utf8Names bool
	// literalMinus: LITERAL- only, not LITERAL+ (RFC 7888 §4): a non-synchronizing
	// literal is at most literalMinusLimit octets.
	literalMinus bool

	// The command being read.
	count    int       // its octets outside literals
	state    readState // what of it is left
	lastLF   bool      // the last octet read ended a line
	litLeft  int64     // stLiteral: octets of literal data not read
	litSync  bool      // stLiteral: synchronizing, and not asked for yet
	buffered int64     // octets of buffered literals
	depth    int       // parenthesised lists open
	// literalInLine: a literal has ended in the line being read (its CRLF is due).
	literalInLine bool
	scratch       []byte
}

func newCommandReader(br *bufio.Reader, continueLiteral func() error) *commandReader {
	return &commandReader{br: br, continueLiteral: continueLiteral, appendLimit: DefaultAppendLimit, state: stDone}
}

// readCommand reads the next command, its arguments included, except for APPEND, whose
// messages the handler reads (appendArgs). Empty lines are skipped. On an *imap.Error,
// cmd has the tag if it could be read (empty otherwise: answer untagged) and the name
// if it could; the caller answers, then calls finish.
func (r *commandReader) readCommand() (cmd *command, err error) {
	if err := r.finish(); err != nil {
		return nil, err
	}
	cmd = &command{}
	for {
		r.count, r.state, r.buffered, r.depth, r.lastLF, r.literalInLine = 0, stLine, 0, 0, false, false
		b, err := r.peek()
		if err != nil {
			return cmd, err
		}
		if b == '\r' || b == '\n' {
			if err := r.crlf(); err != nil {
				return cmd, err
			}
			continue
		}
		break
	}
	tag, err := r.tag()
	if err != nil {
		return cmd, headError(err)
	}
	cmd.tag = tag
	if err := r.sp(); err != nil {
		return cmd, headError(err)
	}
	name, err := r.atom()
	if err != nil {
		return cmd, headError(err)
	}
	cmd.name = strings.ToUpper(name)
	if cmd.name == "UID" {
		if err := r.sp(); err != nil {
			return cmd, headError(err)
		}
		sub, err := r.atom()
		if err != nil {
			return cmd, headError(err)
		}
		cmd.name = "UID " + strings.ToUpper(sub)
	}
	parse, ok := argParsers[cmd.name]
	if !ok {
		return cmd, badSyntax("Unknown command %s", truncate(cmd.name, 32))
	}
	cmd.args, err = parse(r)
	if err != nil {
		return cmd, err
	}
	if _, streams := cmd.args.(*appendArgs); streams {
		return cmd, nil
	}
	return cmd, r.end()
}

// headError: the limit reached in the tag or name cannot be answered by tag.
func headError(err error) error {
	if err == errLineTooLong {
		return errHeadTooLong
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// finish skips what is left of the current command: the rest of its line and of the
// lines after it that non-synchronizing literals join to it, and the data of such
// literals. A synchronizing literal not asked for ends it: the client waits for "+",
// sees the answer instead, and sends nothing more of the command (RFC 3501 §7.5).
func (r *commandReader) finish() error {
	switch r.state {
	case stDone:
		return nil
	case stLiteral:
		if r.litSync {
			r.state = stDone
			return nil
		}
		if err := r.discard(r.litLeft); err != nil {
			return err
		}
	}
	return r.skipLines()
}

func (r *commandReader) discard(n int64) error {
	for n > 0 {
		k := int(min(n, 1<<30))
		d, err := r.br.Discard(k)
		n -= int64(d)
		if err != nil {
			return err
		}
	}
	r.litLeft = 0
	return nil
}

// skipLines skips to the end of the line, and on past the literals it announces.
func (r *commandReader) skipLines() error {
	var tail [32]byte // the line's last octets, for a literal announced at its end
	tn := 0
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(chunk) >= len(tail) {
			copy(tail[:], chunk[len(chunk)-len(tail):])
			tn = len(tail)
		} else if len(chunk) > 0 {
			keep := min(tn, len(tail)-len(chunk))
			copy(tail[:], tail[tn-keep:tn])
			copy(tail[keep:], chunk)
			tn = keep + len(chunk)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return err
		}
		n, sync, ok := announcedLiteral(tail[:tn])
		if !ok || sync {
			r.state = stDone
			return nil
		}
		if err := r.discard(n); err != nil {
			return err
		}
		tn = 0
	}
}

// announcedLiteral reports the literal a line (CRLF or LF included) announces at its end:
// "{n}", "{n+}", "~{n}".
func announcedLiteral(line []byte) (n int64, sync, ok bool) {
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, false
	}
	line = line[:len(line)-1]
	sync = true
	if line[len(line)-1] == '+' || line[len(line)-1] == '-' {
		sync = false
		line = line[:len(line)-1]
	}
	i := len(line)
	for i > 0 && line[i-1] >= '0' && line[i-1] <= '9' {
		i--
	}
	if i == 0 || i == len(line) || line[i-1] != '{' {
		return 0, false, false
	}
	n, err := strconv.ParseInt(string(line[i:]), 10, 64)
	if err != nil {
		return 0, false, false
	}
	return n, sync, true
}

// --- octets

func (r *commandReader) readByte() (byte, error) {
	if r.count >= commandLineLimit {
		return 0, errLineTooLong
	}
	b, err := r.br.ReadByte()
	if err != nil {
		return 0, err
	}
	r.count++
	r.lastLF = b == '\n'
	if r.lastLF {
		r.state = stDone
	}
	return b, nil
}

// unread puts back the octet just read.
func (r *commandReader) unread() {
	r.br.UnreadByte()
	r.count--
	if r.lastLF {
		r.state, r.lastLF = stLine, false
	}
}

func (r *commandReader) peek() (byte, error) {
	if r.count >= commandLineLimit {
		return 0, errLineTooLong
	}
	p, err := r.br.Peek(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// expect reads c, or fails with what.
func (r *commandReader) expect(c byte, what string) error {
	b, err := r.readByte()
	if err != nil {
		return err
	}
	if b != c {
		r.unread()
		return badSyntax("Expected %s, got %s", what, describe(b))
	}
	return nil
}

func describe(b byte) string {
	switch {
	case b == '\r' || b == '\n':
		return "the end of the line"
	case b == ' ':
		return "a space"
	case b < 0x20 || b >= 0x7f:
		return fmt.Sprintf("octet 0x%02x", b)
	}
	return strconv.Quote(string(b))
}

func (r *commandReader) sp() error { return r.expect(' ', "a space") }

// crlf reads the end of a line; a bare LF is taken too (as by Dovecot).
func (r *commandReader) crlf() error {
	b, err := r.readByte()
	if err != nil {
		return err
	}
	if b == '\r' {
		if b, err = r.readByte(); err != nil {
			return err
		}
	}
	if b != '\n' {
		r.unread()
		return badSyntax("Expected the end of the line, got %s", describe(b))
	}
	return nil
}

// end reads the CRLF that ends a command.
func (r *commandReader) end() error {
	b, err := r.peek()
	if err != nil {
		return err
	}
	if b != '\r' && b != '\n' {
		return badSyntax("Unexpected %s after the arguments", describe(b))
	}
	return r.crlf()
}

// maybe reads c if it comes next.
func (r *commandReader) maybe(c byte) (bool, error) {
	b, err := r.peek()
	if err != nil {
		return false, err
	}
	if b != c {
		return false, nil
	}
	_, err = r.readByte()
	return true, err
}

// atEnd says the line ends next.
func (r *commandReader) atEnd() (bool, error) {
	b, err := r.peek()
	return b == '\r' || b == '\n', err
}

// --- atoms and strings

// RFC 3501 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
// quoted-specials / resp-specials.
func atomChar(b byte) bool {
	switch b {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return b > 0x1f && b < 0x7f
}

func astringChar(b byte) bool { return atomChar(b) || b == ']' }

func listChar(b byte) bool { return astringChar(b) || b == '%' || b == '*' }

// run reads 1*octets for which ok holds.
func (r *commandReader) run(ok func(byte) bool, what string) (string, error) {
	buf := r.scratch[:0]
	for {
		b, err := r.readByte()
		if err != nil {
			return "", err
		}
		if !ok(b) {
			r.unread()
			if len(buf) == 0 {
				return "", badSyntax("Expected %s, got %s", what, describe(b))
			}
			r.scratch = buf
			return string(buf), nil
		}
		buf = append(buf, b)
	}
}

// tag: 1*<any ASTRING-CHAR except "+">.
func (r *commandReader) tag() (string, error) {
	return r.run(func(b byte) bool { return astringChar(b) && b != '+' }, "a tag")
}

func (r *commandReader) atom() (string, error) { return r.run(atomChar, "an atom") }

// astring = 1*ASTRING-CHAR / string.
func (r *commandReader) astring() (string, error) {
	b, err := r.peek()
	if err != nil {
		return "", err
	}
	if b == '"' || b == '{' {
		return r.string()
	}
	return r.run(astringChar, "a string")
}

// nstring = string / "NIL"; ok is false for NIL.
func (r *commandReader) nstring() (s string, ok bool, err error) {
	b, err := r.peek()
	if err != nil {
		return "", false, err
	}
	if b == '"' || b == '{' {
		s, err = r.string()
		return s, err == nil, err
	}
	a, err := r.atom()
	if err != nil {
		return "", false, err
	}
	if !strings.EqualFold(a, "NIL") {
		return "", false, badSyntax("Expected a string or NIL, got %s", truncate(a, 32))
	}
	return "", false, nil
}

// string = quoted / literal, the literal buffered.
func (r *commandReader) string() (string, error) {
	b, err := r.peek()
	if err != nil {
		return "", err
	}
	switch b {
	case '"':
		return r.quoted()
	case '{':
		data, err := r.bufferedLiteral()
		return string(data), err
	}
	return "", badSyntax("Expected a string, got %s", describe(b))
}

// quoted = DQUOTE *QUOTED-CHAR DQUOTE. RFC 9051 §9 takes UTF-8 in QUOTED-CHAR; it must be
// valid UTF-8.
func (r *commandReader) quoted() (string, error) {
	if err := r.expect('"', "a quoted string"); err != nil {
		return "", err
	}
	buf := r.scratch[:0]
	for {
		b, err := r.readByte()
		if err != nil {
			return "", err
		}
		switch b {
		case '"':
			r.scratch = buf
			if !utf8.Valid(buf) {
				return "", badSyntax("Quoted string is not valid UTF-8")
			}
			return string(buf), nil
		case '\\':
			// RFC 3501 §9 escapes only '"' and '\\'; another escaped character is taken
			// as itself, as by Dovecot.
			if b, err = r.readByte(); err != nil {
				return "", err
			}
			if b == '\r' || b == '\n' || b == 0 {
				r.unread()
				return "", badSyntax("Quoted string not closed before %s", describe(b))
			}
		case '\r', '\n', 0:
			r.unread()
			return "", badSyntax("Quoted string not closed before %s", describe(b))
		}
		buf = append(buf, b)
	}
}

// literalHeader reads "{" number64 ["+"] "}" CRLF, or with binary also "~{...}"
// (RFC 3516 literal8), and leaves the reader in stLiteral.
func (r *commandReader) literalHeader(binary bool) (n int64, sync, isBinary bool, err error) {
	if binary {
		if isBinary, err = r.maybe('~'); err != nil {
			return 0, false, false, err
		}
	}
	if err := r.expect('{', "a literal"); err != nil {
		return 0, false, false, err
	}
	digits := 0
	for {
		b, err := r.readByte()
		if err != nil {
			return 0, false, false, err
		}
		if b < '0' || b > '9' {
			r.unread()
			break
		}
		if n > (1<<63-1-9)/10 {
			return 0, false, false, badSyntax("Literal size out of range")
		}
		n = n*10 + int64(b-'0')
		digits++
	}
	if digits == 0 {
		return 0, false, false, badSyntax("Literal without a size")
	}
	plus, err := r.maybe('+')
	if err != nil {
		return 0, false, false, err
	}
	if err := r.expect('}', `"}"`); err != nil {
		return 0, false, false, err
	}
	if err := r.crlf(); err != nil {
		return 0, false, false, err
	}
	r.state, r.litLeft, r.litSync = stLiteral, n, !plus
	if plus && r.literalMinus && n > literalMinusLimit {
		// RFC 7888 §4: BAD [TOOBIG]; finish skips the data, which follows at once.
		return 0, false, false, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("Non-synchronizing literals are limited to %d octets (LITERAL-)", literalMinusLimit)}
	}
	return n, !plus, isBinary, nil
}

// askLiteral sends the continuation request for a synchronizing literal announced by
// literalHeader, now accepted.
func (r *commandReader) askLiteral() error {
	if !r.litSync {
		return nil
	}
	r.litSync = false
	if r.continueLiteral == nil {
		return nil
	}
	if err := r.continueLiteral(); err != nil {
		return fmt.Errorf("asking for a literal: %w", err)
	}
	return nil
}

// literalDone: the literal's data was read; the command's line goes on.
func (r *commandReader) literalDone() {
	r.state, r.litLeft, r.lastLF, r.literalInLine = stLine, 0, false, true
}

// midCommand says the reader has begun a command and waits for more of it.
func (r *commandReader) midCommand() bool {
	return r.state == stLiteral || (r.state == stLine && r.count > 0)
}

// bufferedLiteral reads a literal into memory, within the limits of buffered literals.
func (r *commandReader) bufferedLiteral() ([]byte, error) {
	n, _, _, err := r.literalHeader(false)
	if err != nil {
		return nil, err
	}
	if n > bufferedLiteralLimit || r.buffered+n > bufferedLiteralsLimit {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("Literals are limited to %d octets for this command", bufferedLiteralLimit)}
	}
	if err := r.askLiteral(); err != nil {
		return nil, err
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r.br, data); err != nil {
		return nil, err
	}
	r.buffered += n
	r.literalDone()
	for _, b := range data {
		if b == 0 { // RFC 3501 §4.3: CHAR8 excludes NUL
			return nil, badSyntax("NUL in a literal")
		}
	}
	return data, nil
}

// --- numbers

func (r *commandReader) digits(max uint64, what string) (uint64, error) {
	var n uint64
	count := 0
	for {
		b, err := r.readByte()
		if err != nil {
			return 0, err
		}
		if b < '0' || b > '9' {
			r.unread()
			if count == 0 {
				return 0, badSyntax("Expected %s, got %s", what, describe(b))
			}
			return n, nil
		}
		n = n*10 + uint64(b-'0')
		if n > max {
			return 0, badSyntax("%s out of range", what)
		}
		count++
	}
}

// number = 1*DIGIT, a 32-bit unsigned value.
func (r *commandReader) number() (uint32, error) {
	n, err := r.digits(1<<32-1, "a number")
	return uint32(n), err
}

func (r *commandReader) nzNumber() (uint32, error) {
	n, err := r.number()
	if err == nil && n == 0 {
		return 0, badSyntax("Expected a non-zero number")
	}
	return n, err
}

// number64 (RFC 9051 §9): 63 bits.
func (r *commandReader) number64() (int64, error) {
	n, err := r.digits(1<<63-1, "a number")
	return int64(n), err
}

// modSeq: mod-sequence-value (RFC 7162 §7), 1..2^63-1; zero with allowZero
// (mod-sequence-valzer).
func (r *commandReader) modSeq(allowZero bool) (uint64, error) {
	n, err := r.digits(1<<63-1, "a mod-sequence")
	if err == nil && n == 0 && !allowZero {
		return 0, badSyntax("Expected a non-zero mod-sequence")
	}
	return n, err
}

// numSet reads a sequence-set (RFC 3501 §9): seq-number or seq-range, comma separated,
// "*" being 0 as in go-imap's types; or "$", the saved search result (RFC 5182 §2.1),
// returned as imap.SearchRes().
func (r *commandReader) numSet(uid bool) (imap.NumSet, error) {
	if dollar, err := r.maybe('$'); err != nil || dollar {
		return imap.SearchRes(), err
	}
	var seqs imap.SeqSet
	var uids imap.UIDSet
	for {
		start, err := r.seqNumber()
		if err != nil {
			return nil, err
		}
		stop := start
		if colon, err := r.maybe(':'); err != nil {
			return nil, err
		} else if colon {
			if stop, err = r.seqNumber(); err != nil {
				return nil, err
			}
		}
		// RFC 3501 §9: "2:4" and "4:2" are the same; "*" (0) is the largest.
		if stop != 0 && (start == 0 || start > stop) {
			start, stop = stop, start
		}
		if uid {
			uids = append(uids, imap.UIDRange{Start: imap.UID(start), Stop: imap.UID(stop)})
		} else {
			seqs = append(seqs, imap.SeqRange{Start: start, Stop: stop})
		}
		if comma, err := r.maybe(','); err != nil || !comma {
			if uid {
				return uids, err
			}
			return seqs, err
		}
	}
}

// seqNumber = nz-number / "*" (0).
func (r *commandReader) seqNumber() (uint32, error) {
	if star, err := r.maybe('*'); err != nil || star {
		return 0, err
	}
	return r.nzNumber()
}

// --- mailboxes, flags, dates

// mailbox = "INBOX" / astring (RFC 3501 §9), decoded from modified UTF-7 unless the
// client uses UTF-8 names. INBOX is case-insensitive (§5.1) and always "INBOX" here.
func (r *commandReader) mailbox() (string, error) {
	raw, err := r.astring()
	if err != nil {
		return "", err
	}
	return r.mailboxName(raw)
}

// mailboxName decodes a name as sent.
func (r *commandReader) mailboxName(raw string) (string, error) {
	name := raw
	if r.utf8Names && !utf8.ValidString(raw) {
		return "", &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeClientBug,
			Text: "Mailbox name is not valid UTF-8"}
	}
	if !r.utf8Names {
		var err error
		if name, err = decodeModifiedUTF7(raw); err != nil {
			return "", &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeClientBug,
				Text: "Mailbox name is not valid modified UTF-7 (RFC 3501 §5.1.3)"}
		}
	}
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	return name, nil
}

// listMailbox = 1*list-char / string (RFC 3501 §9), decoded as a mailbox name is, when
// it is modified UTF-7.
func (r *commandReader) listMailbox() (string, error) {
	b, err := r.peek()
	if err != nil {
		return "", err
	}
	var raw string
	if b == '"' || b == '{' {
		raw, err = r.string()
	} else {
		raw, err = r.run(listChar, "a mailbox pattern")
	}
	if err != nil {
		return "", err
	}
	if r.utf8Names {
		return raw, nil
	}
	name, err := decodeModifiedUTF7(raw)
	if err != nil {
		// A pattern is not a name: one that is not modified UTF-7 is taken as it is, and
		// matches no mailbox (Dovecot answers such a LIST OK, with nothing).
		return raw, nil
	}
	return name, nil
}

// flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
// flag-extension (RFC 3501 §9). System flags are returned in their canonical spelling.
func (r *commandReader) flag() (imap.Flag, error) {
	backslash, err := r.maybe('\\')
	if err != nil {
		return "", err
	}
	a, err := r.atom()
	if err != nil {
		return "", err
	}
	if !backslash {
		return imap.Flag(a), nil
	}
	for _, f := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, "\\Recent"} {
		if strings.EqualFold(string(f), "\\"+a) {
			return f, nil
		}
	}
	return imap.Flag("\\" + a), nil
}

// flagList = "(" [flag *(SP flag)] ")".
func (r *commandReader) flagList() ([]imap.Flag, error) {
	if err := r.expect('(', "a flag list"); err != nil {
		return nil, err
	}
	flags := []imap.Flag{}
	for {
		if closed, err := r.maybe(')'); err != nil || closed {
			return flags, err
		}
		if len(flags) > 0 {
			if err := r.sp(); err != nil {
				return nil, err
			}
		}
		f, err := r.flag()
		if err != nil {
			return nil, err
		}
		flags = append(flags, f)
	}
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// date = date-text / DQUOTE date-text DQUOTE; date-text = date-day "-" date-month "-"
// date-year (RFC 3501 §9). The day is taken in UTC.
func (r *commandReader) date() (time.Time, error) {
	quoted, err := r.maybe('"')
	if err != nil {
		return time.Time{}, err
	}
	s, err := r.run(func(b byte) bool {
		return b == '-' || b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
	}, "a date")
	if err != nil {
		return time.Time{}, err
	}
	if quoted {
		if err := r.expect('"', `a closing '"'`); err != nil {
			return time.Time{}, err
		}
	}
	t, ok := parseDate(s)
	if !ok {
		return time.Time{}, badSyntax("Not a date (d-Mon-yyyy): %s", truncate(s, 32))
	}
	return t, nil
}

func parseDate(s string) (time.Time, bool) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 || len(parts[0]) < 1 || len(parts[0]) > 2 || len(parts[2]) != 4 {
		return time.Time{}, false
	}
	day, err1 := strconv.Atoi(parts[0])
	year, err2 := strconv.Atoi(parts[2])
	month := 0
	for i, m := range months {
		if strings.EqualFold(m, parts[1]) {
			month = i + 1
		}
	}
	if err1 != nil || err2 != nil || month == 0 || day < 1 || day > 31 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day { // 31-Feb
		return time.Time{}, false
	}
	return t, true
}

// dateTime = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
// (RFC 3501 §9), e.g. " 7-Feb-1994 21:52:25 -0800".
func (r *commandReader) dateTime() (time.Time, error) {
	s, err := r.quoted()
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse("_2-Jan-2006 15:04:05 -0700", s)
	if err != nil {
		return time.Time{}, badSyntax("Not a date-time (dd-Mon-yyyy hh:mm:ss +zzzz): %s", truncate(s, 40))
	}
	return t, nil
}

// list reads "(" item *(SP item) ")", each item by fn; empty allows "()".
func (r *commandReader) list(empty bool, fn func() error) error {
	if err := r.expect('(', `"("`); err != nil {
		return err
	}
	if r.depth++; r.depth > nestingLimit {
		return errTooDeep
	}
	defer func() { r.depth-- }()
	for first := true; ; first = false {
		if closed, err := r.maybe(')'); err != nil {
			return err
		} else if closed {
			if first && !empty {
				return badSyntax("Empty list")
			}
			return nil
		}
		if !first {
			if err := r.sp(); err != nil {
				return err
			}
		}
		if err := fn(); err != nil {
			return err
		}
	}
}

// keyword reads an atom, upper case.
func (r *commandReader) keyword() (string, error) {
	a, err := r.atom()
	return strings.ToUpper(a), err
}

// --- command arguments

// argParsers parse the arguments of each command, after its name; those without
// arguments have none. The command table (command.go) decides which may run.
var argParsers = map[string]func(*commandReader) (any, error){
	"CAPABILITY": noArgs, "NOOP": noArgs, "LOGOUT": noArgs, "STARTTLS": noArgs,
	"CHECK": noArgs, "CLOSE": noArgs, "UNSELECT": noArgs, "EXPUNGE": noArgs,
	"IDLE": noArgs, "NAMESPACE": noArgs,
	"LOGIN":          parseLogin,
	"AUTHENTICATE":   parseAuthenticate,
	"ENABLE":         parseEnable,
	"SELECT":         parseSelect,
	"EXAMINE":        parseSelect,
	"CREATE":         parseCreate,
	"DELETE":         parseMailboxArg,
	"SUBSCRIBE":      parseMailboxArg,
	"UNSUBSCRIBE":    parseMailboxArg,
	"RENAME":         parseRename,
	"LIST":           parseList,
	"LSUB":           parseLsub,
	"STATUS":         parseStatus,
	"APPEND":         parseAppend,
	"FETCH":          parseFetch(false),
	"UID FETCH":      parseFetch(true),
	"STORE":          parseStore(false),
	"UID STORE":      parseStore(true),
	"COPY":           parseCopy(false),
	"UID COPY":       parseCopy(true),
	"MOVE":           parseCopy(false),
	"UID MOVE":       parseCopy(true),
	"SEARCH":         parseSearch(false),
	"UID SEARCH":     parseSearch(true),
	"UID EXPUNGE":    parseUIDExpunge,
	"SORT":           parseSort(false),
	"UID SORT":       parseSort(true),
	"THREAD":         parseThread(false),
	"UID THREAD":     parseThread(true),
	"GETQUOTA":       parseGetQuota,
	"GETQUOTAROOT":   parseMailboxArg,
	"SETQUOTA":       parseSetQuota,
	"ID":             parseID,           // id.go
	"CANCELUPDATE":   parseCancelUpdate, // context.go
	"COMPRESS":       parseCompress,     // compress.go
	"UNAUTHENTICATE": noArgs,
}

func noArgs(*commandReader) (any, error) { return nil, nil }

type loginArgs struct{ username, password string }

// LOGIN SP userid SP password (RFC 3501 §6.2.3).
func parseLogin(r *commandReader) (any, error) {
	var a loginArgs
	var err error
	if err = r.sp(); err != nil {
		return nil, err
	}
	if a.username, err = r.astring(); err != nil {
		return nil, err
	}
	if err = r.sp(); err != nil {
		return nil, err
	}
	if a.password, err = r.astring(); err != nil {
		return nil, err
	}
	return &a, nil
}

type authenticateArgs struct {
	mechanism string // upper case
	// initialResponse is the SASL-IR initial response (RFC 4959), decoded; nil if none
	// was sent, empty for "=".
	initialResponse []byte
}

// AUTHENTICATE SP auth-type [SP (base64 / "=")] (RFC 3501 §6.2.2, RFC 4959).
func parseAuthenticate(r *commandReader) (any, error) {
	if err := r.sp(); err != nil {
		return nil, err
	}
	mech, err := r.keyword()
	if err != nil {
		return nil, err
	}
	a := &authenticateArgs{mechanism: mech}
	if sp, err := r.maybe(' '); err != nil || !sp {
		return a, err
	}
	ir, err := r.run(func(b byte) bool {
		return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '+' || b == '/' || b == '='
	}, "a base64 initial response")
	if err != nil {
		return nil, err
	}
	if ir == "=" {
		a.initialResponse = []byte{}
		return a, nil
	}
	if a.initialResponse, err = base64.StdEncoding.DecodeString(ir); err != nil {
		return nil, badSyntax("Initial response is not base64")
	}
	return a, nil
}

// decodeSASLResponse decodes a client's answer to an AUTHENTICATE challenge, "*" being
// a cancellation (RFC 3501 §6.2.2).
func decodeSASLResponse(line string) (data []byte, cancel bool, err error) {
	line = strings.TrimRight(line, "\r\n")
	if line == "*" {
		return nil, true, nil
	}
	if line == "=" || line == "" {
		return []byte{}, false, nil
	}
	data, err = base64.StdEncoding.DecodeString(line)
	if err != nil {
		return nil, false, badSyntax("SASL response is not base64")
	}
	return data, false, nil
}

type enableArgs struct{ caps []imap.Cap }

// ENABLE 1*(SP capability) (RFC 5161 §3.1).
func parseEnable(r *commandReader) (any, error) {
	a := &enableArgs{}
	for {
		if err := r.sp(); err != nil {
			return nil, err
		}
		c, err := r.keyword()
		if err != nil {
			return nil, err
		}
		a.caps = append(a.caps, imap.Cap(c))
		if end, err := r.atEnd(); err != nil || end {
			return a, err
		}
	}
}

type selectArgs struct {
	mailbox   string
	condStore bool     // (CONDSTORE), RFC 7162 §3.1.8
	qresync   *qresync // (QRESYNC (...)), RFC 7162 §3.2.5
}

// qresync are the QRESYNC parameters of SELECT/EXAMINE (RFC 7162 §3.2.5).
type qresync struct {
	uidValidity uint32
	modSeq      uint64
	knownUIDs   imap.UIDSet // nil if not given
	seqMatch    *seqMatch   // nil if not given
}

// seqMatch is QRESYNC's seq-match-data: sequence numbers and the UIDs the client knows
// for them (RFC 7162 §3.2.5.2).
type seqMatch struct {
	seqs imap.SeqSet
	uids imap.UIDSet
}

// SELECT/EXAMINE SP mailbox [SP "(" select-param *(SP select-param) ")"]
// (RFC 3501 §6.3.1, RFC 4466 §2.1, RFC 7162 §3.1.8, §3.2.5).
func parseSelect(r *commandReader) (any, error) {
	a := &selectArgs{}
	var err error
	if err = r.sp(); err != nil {
		return nil, err
	}
	if a.mailbox, err = r.mailbox(); err != nil {
		return nil, err
	}
	if sp, err := r.maybe(' '); err != nil || !sp {
		return a, err
	}
	err = r.list(false, func() error {
		p, err := r.keyword()
		if err != nil {
			return err
		}
		switch p {
		case "CONDSTORE":
			a.condStore = true
		case "QRESYNC":
			if err := r.sp(); err != nil {
				return err
			}
			a.qresync, err = parseQresync(r)
			return err
		default:
			return badSyntax("Unknown SELECT parameter %s", truncate(p, 32))
		}
		return nil
	})
	return a, err
}

// "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")".
func parseQresync(r *commandReader) (*qresync, error) {
	q := &qresync{}
	if err := r.expect('(', `"("`); err != nil {
		return nil, err
	}
	var err error
	if q.uidValidity, err = r.nzNumber(); err != nil {
		return nil, err
	}
	if err = r.sp(); err != nil {
		return nil, err
	}
	if q.modSeq, err = r.modSeq(false); err != nil {
		return nil, err
	}
	for {
		if closed, err := r.maybe(')'); err != nil || closed {
			return q, err
		}
		if err := r.sp(); err != nil {
			return nil, err
		}
		b, err := r.peek()
		if err != nil {
			return nil, err
		}
		if b == '(' {
			if q.seqMatch != nil {
				return nil, badSyntax("QRESYNC sequence match data twice")
			}
			r.readByte()
			seqs, err := r.numSet(false)
			if err != nil {
				return nil, err
			}
			if err := r.sp(); err != nil {
				return nil, err
			}
			uids, err := r.numSet(true)
			if err != nil {
				return nil, err
			}
			if err := r.expect(')', `")"`); err != nil {
				return nil, err
			}
			if imap.IsSearchRes(seqs) || imap.IsSearchRes(uids) {
				return nil, badSyntax("$ is not a known sequence set")
			}
			q.seqMatch = &seqMatch{seqs.(imap.SeqSet), uids.(imap.UIDSet)}
			continue
		}
		if q.knownUIDs != nil || q.seqMatch != nil {
			return nil, badSyntax("Unexpected QRESYNC parameter")
		}
		set, err := r.numSet(true)
		if err != nil {
			return nil, err
		}
		if imap.IsSearchRes(set) {
			return nil, badSyntax("$ is not a known-uids set")
		}
		q.knownUIDs = set.(imap.UIDSet)
	}
}

type mailboxArgs struct{ mailbox string }

func parseMailboxArg(r *commandReader) (any, error) {
	if err := r.sp(); err != nil {
		return nil, err
	}
	name, err := r.mailbox()
	if err != nil {
		return nil, err
	}
	return &mailboxArgs{mailbox: name}, nil
}

type createArgs struct {
	mailbox    string
	specialUse []imap.MailboxAttr // CREATE-SPECIAL-USE (RFC 6154 §3)
}

// CREATE SP mailbox [SP "(" create-param *(SP create-param) ")"] (RFC 4466 §2.2), the
// one parameter being USE (RFC 6154 §6).
func parseCreate(r *commandReader) (any, error) {
	if err := r.sp(); err != nil {
		return nil, err
	}
	a := &createArgs{}
	var err error
	if a.mailbox, err = r.mailbox(); err != nil {
		return nil, err
	}
	if sp, err := r.maybe(' '); err != nil || !sp {
		return a, err
	}
	err = r.list(false, func() error {
		p, err := r.keyword()
		if err != nil {
			return err
		}
		if p != "USE" {
			return badSyntax("Unknown CREATE parameter %s", truncate(p, 32))
		}
		if err := r.sp(); err != nil {
			return err
		}
		return r.list(false, func() error {
			f, err := r.flag()
			if err != nil {
				return err
			}
			if !strings.HasPrefix(string(f), "\\") {
				return badSyntax("A special-use attribute starts with a backslash")
			}
			a.specialUse = append(a.specialUse, imap.MailboxAttr(f))
			return nil
		})
	})
	return a, err
}

type renameArgs struct{ from, to string }

func parseRename(r *commandReader) (any, error) {
	a := &renameArgs{}
	var err error
	if err = r.sp(); err != nil {
		return nil, err
	}
	if a.from, err = r.mailbox(); err != nil {
		return nil, err
	}
	if err = r.sp(); err != nil {
		return nil, err
	}
	if a.to, err = r.mailbox(); err != nil {
		return nil, err
	}
	return a, nil
}

type listArgs struct {
	ref      string
	patterns []string
	options  imap.ListOptions
	// extended: selection or return options were given (RFC 5258 §3), or several
	// patterns; the answer follows LIST-EXTENDED then.
	extended bool
	lsub     bool
	// statusMailboxID: RETURN (STATUS (... MAILBOXID)), RFC 8474 §4.2.
	statusMailboxID bool
}

// LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
// (RFC 5258 §6, RFC 5819, RFC 6154 §6).
func parseList(r *commandReader) (any, error) {
	a := &listArgs{}
	if err := r.sp(); err != nil {
		return nil, err
	}
	if b, err := r.peek(); err != nil {
		return nil, err
	} else if b == '(' {
		a.extended = true
		err := r.list(true, func() error {
			opt, err := r.keyword()
			if err != nil {
				return err
			}
			switch opt {
			case "SUBSCRIBED":
				a.options.SelectSubscribed = true
			case "REMOTE":
				a.options.SelectRemote = true
			case "RECURSIVEMATCH":
				a.options.SelectRecursiveMatch = true
			case "SPECIAL-USE":
				a.options.SelectSpecialUse = true
			default:
				return badSyntax("Unknown LIST selection option %s", truncate(opt, 32))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		// RFC 5258 §3.1: RECURSIVEMATCH alone is an error.
		if a.options.SelectRecursiveMatch && !a.options.SelectSubscribed && !a.options.SelectSpecialUse {
			return nil, badSyntax("RECURSIVEMATCH needs another selection option")
		}
		if err := r.sp(); err != nil {
			return nil, err
		}
	}
	var err error
	if a.ref, err = r.listMailbox(); err != nil {
		return nil, err
	}
	if err := r.sp(); err != nil {
		return nil, err
	}
	if b, err := r.peek(); err != nil {
		return nil, err
	} else if b == '(' {
		a.extended = true
		if err := r.list(false, func() error {
			p, err := r.listMailbox()
			a.patterns = append(a.patterns, p)
			return err
		}); err != nil {
			return nil, err
		}
	} else {
		p, err := r.listMailbox()
		if err != nil {
			return nil, err
		}
		a.patterns = []string{p}
	}
	if sp, err := r.maybe(' '); err != nil || !sp {
		return a, err
	}
	// list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
	kw, err := r.keyword()
	if err != nil {
		return nil, err
	}
	if kw != "RETURN" {
		return nil, badSyntax("Expected RETURN, got %s", truncate(kw, 32))
	}
	if err := r.sp(); err != nil {
		return nil, err
	}
	a.extended = true
	err = r.list(true, func() error {
		opt, err := r.keyword()
		if err != nil {
			return err
		}
		switch opt {
		case "SUBSCRIBED":
			a.options.ReturnSubscribed = true
		case "CHILDREN":
			a.options.ReturnChildren = true
		case "SPECIAL-USE":
			a.options.ReturnSpecialUse = true
		case "STATUS":
			if err := r.sp(); err != nil {
				return err
			}
			a.options.ReturnStatus, err = statusItems(r, &a.statusMailboxID)
			return err
		default:
			return badSyntax("Unknown LIST return option %s", truncate(opt, 32))
		}
		return nil
	})
	return a, err
}

// LSUB SP mailbox SP list-mailbox (RFC 3501 §6.3.9).
func parseLsub(r *commandReader) (any, error) {
	a := &listArgs{lsub: true}
	var err error
	if err = r.sp(); err != nil {
		return nil, err
	}
	if a.ref, err = r.listMailbox(); err != nil {
		return nil, err
	}
	if err = r.sp(); err != nil {
		return nil, err
	}
	p, err := r.listMailbox()
	if err != nil {
		return nil, err
	}
	a.patterns = []string{p}
	return a, nil
}

type statusArgs struct {
	mailbox   string
	items     *imap.StatusOptions
	mailboxID bool // MAILBOXID (RFC 8474 §4.2), which StatusOptions has no field for
}

// STATUS SP mailbox SP "(" status-att *(SP status-att) ")" (RFC 3501 §6.3.10).
func parseStatus(r *commandReader) (any, error) {
	a := &statusArgs{}
	var err error
	if err = r.sp(); err != nil {
		return nil, err
	}
	if a.mailbox, err = r.mailbox(); err != nil {
		return nil, err
	}
	if err = r.sp(); err != nil {
		return nil, err
	}
	a.items, err = statusItems(r, &a.mailboxID)
	return a, err
}

// statusItems reads "(" status-att *(SP status-att) ")" (RFC 9051 §9, RFC 7162 §3.1.6,
// RFC 7889, RFC 8438); MAILBOXID (RFC 8474 §4.2) sets *mailboxID.
func statusItems(r *commandReader, mailboxID *bool) (*imap.StatusOptions, error) {
	o := &imap.StatusOptions{}
	err := r.list(false, func() error {
		item, err := r.keyword()
		if err != nil {
			return err
		}
		switch item {
		case "MESSAGES":
			o.NumMessages = true
		case "RECENT":
			o.NumRecent = true
		case "UIDNEXT":
			o.UIDNext = true
		case "UIDVALIDITY":
			o.UIDValidity = true
		case "UNSEEN":
			o.NumUnseen = true
		case "DELETED":
			o.NumDeleted = true
		case "SIZE":
			o.Size = true
		case "APPENDLIMIT":
			o.AppendLimit = true
		case "HIGHESTMODSEQ":
			o.HighestModSeq = true
		case "DELETED-STORAGE":
			o.DeletedStorage = true
		case "MAILBOXID":
			*mailboxID = true
		default:
			return badSyntax("Unknown STATUS item %s", truncate(item, 32))
		}
		return nil
	})
	return o, err
}

// appendArgs is APPEND's mailbox and its first message. The handler reads the message's
// Body, then calls next for the one after it (MULTIAPPEND, RFC 3502) until next returns
// nil, having read the command's end.
type appendArgs struct {
	mailbox string
	first   *appendMessage
	r       *commandReader
}

// appendMessage is one message of APPEND.
type appendMessage struct {
	flags  []imap.Flag
	date   time.Time // zero if not given
	size   int64
	binary bool // literal8 (RFC 3516 §4.4): the data may hold NUL and is not to be re-encoded
	// body reads the literal. The first Read asks for a synchronizing literal's data.
	body *literalReader
}

// APPEND SP mailbox 1*append-message (RFC 3502 §6); append-message = [SP flag-list]
// [SP date-time] SP literal, a literal8 with BINARY (RFC 3516 §4.4).
func parseAppend(r *commandReader) (any, error) {
	a := &appendArgs{r: r}
	var err error
	if err = r.sp(); err != nil {
		return nil, err
	}
	if a.mailbox, err = r.mailbox(); err != nil {
		return nil, err
	}
	if err = r.sp(); err != nil {
		return nil, err
	}
	a.first, err = r.appendMessage()
	return a, err
}

// next reads the separator after a message and the next message's head, or the end of
// the command (nil).
func (a *appendArgs) next() (*appendMessage, error) {
	r := a.r
	if r.state == stLiteral {
		return nil, errors.New("imap: APPEND message not read to its end")
	}
	if end, err := r.atEnd(); err != nil {
		return nil, err
	} else if end {
		return nil, r.crlf()
	}
	if err := r.sp(); err != nil {
		return nil, err
	}
	return r.appendMessage()
}

// appendMessage reads [flag-list SP] [date-time SP] literal, up to the literal's data.
func (r *commandReader) appendMessage() (*appendMessage, error) {
	m := &appendMessage{}
	b, err := r.peek()
	if err != nil {
		return nil, err
	}
	if b == '(' {
		if m.flags, err = r.flagList(); err != nil {
			return nil, err
		}
		if err := r.sp(); err != nil {
			return nil, err
		}
		if b, err = r.peek(); err != nil {
			return nil, err
		}
	}
	if b == '"' {
		if m.date, err = r.dateTime(); err != nil {
			return nil, err
		}
		if err := r.sp(); err != nil {
			return nil, err
		}
	}
	n, _, binary, err := r.literalHeader(true)
	if err != nil {
		return nil, err
	}
	m.size, m.binary = n, binary
	if n > r.appendLimit {
		// RFC 7889 §4: TOOBIG, before the data is asked for.
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("Message too big (the limit is %d octets)", r.appendLimit)}
	}
	m.body = &literalReader{r: r, size: n, binary: binary}
	return m, nil
}

// literalReader streams a literal's data from the connection. What a handler leaves
// unread of it (a message refused as it streamed in) is skipped by the reader's finish.
type literalReader struct {
	r      *commandReader
	size   int64
	binary bool // a literal8
	asked  bool
}

func (l *literalReader) Read(p []byte) (int, error) {
	r := l.r
	if !l.asked {
		l.asked = true
		if err := r.askLiteral(); err != nil {
			return 0, err
		}
	}
	if r.state != stLiteral {
		return 0, io.EOF
	}
	if r.litLeft == 0 {
		r.literalDone()
		return 0, io.EOF
	}
	if int64(len(p)) > r.litLeft {
		p = p[:r.litLeft]
	}
	n, err := r.br.Read(p)
	r.litLeft -= int64(n)
	if r.litLeft == 0 {
		r.literalDone()
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Size is the literal's size (imap.LiteralReader).
func (l *literalReader) Size() int64 { return l.size }

type fetchArgs struct {
	nums    imap.NumSet
	uid     bool
	options imap.FetchOptions
	// rfc822 names the body sections asked for by their RFC 822 names (RFC 3501 §6.4.5):
	// "RFC822", "RFC822.HEADER", "RFC822.TEXT", answered under those names.
	rfc822 map[*imap.FetchItemBodySection]string
	// vanished: (CHANGEDSINCE n VANISHED), RFC 7162 §3.2.6.
	vanished bool
	ext      fetchExt      // SAVEDATE, EMAILID, THREADID, PREVIEW (fetchext.go)
	partial  *partialRange // (PARTIAL range), RFC 9394 §3.2 (partial.go)
	// explicitUID: UID was among the items asked for, not only implied by UID FETCH;
	// with UIDONLY only then is it answered (RFC 9586, uidonly.go).
	explicitUID bool
}

// FETCH SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP
// fetch-att) ")") [fetch-modifiers] (RFC 3501 §6.4.5, RFC 9051 §6.4.5, RFC 7162 §3.1.4).
func parseFetch(uid bool) func(*commandReader) (any, error) {
	return func(r *commandReader) (any, error) {
		a := &fetchArgs{uid: uid, rfc822: map[*imap.FetchItemBodySection]string{}}
		var err error
		if err = r.sp(); err != nil {
			return nil, err
		}
		if a.nums, err = r.numSet(uid); err != nil {
			return nil, err
		}
		if err = r.sp(); err != nil {
			return nil, err
		}
		b, err := r.peek()
		if err != nil {
			return nil, err
		}
		if b == '(' {
			err = r.list(false, func() error { return r.fetchAtt(a) })
		} else {
			err = r.fetchAtt(a)
		}
		if err != nil {
			return nil, err
		}
		a.explicitUID = a.options.UID
		if uid { // RFC 3501 §6.4.8: UID FETCH always returns the UID
			a.options.UID = true
		}
		if sp, err := r.maybe(' '); err != nil || !sp {
			return a, err
		}
		err = r.list(false, func() error {
			m, err := r.keyword()
			if err != nil {
				return err
			}
			switch m {
			case "CHANGEDSINCE":
				if err := r.sp(); err != nil {
					return err
				}
				a.options.ChangedSince, err = r.modSeq(false)
				a.options.ModSeq = true // RFC 7162 §3.1.4.1
				return err
			case "VANISHED":
				a.vanished = true
			case "PARTIAL": // RFC 9394, formal syntax: fetch-modifier =/ "PARTIAL" SP partial-range
				if err := r.sp(); err != nil {
					return err
				}
				a.partial, err = r.partialRange()
				return err
			default:
				return badSyntax("Unknown FETCH modifier %s", truncate(m, 32))
			}
			return nil
		})
		if err == nil && a.vanished && (!uid || a.options.ChangedSince == 0) {
			// RFC 7162 §3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
			err = badSyntax("VANISHED needs UID FETCH with CHANGEDSINCE")
		}
		return a, err
	}
}

// fetchAtt reads one fetch-att or macro.
func (r *commandReader) fetchAtt(a *fetchArgs) error {
	name, err := r.run(func(b byte) bool { return atomChar(b) && b != '[' && b != '<' }, "a FETCH item")
	if err != nil {
		return err
	}
	o := &a.options
	switch name := strings.ToUpper(name); name {
	case "ALL": // RFC 3501 §6.4.5: (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)
		o.Flags, o.InternalDate, o.RFC822Size, o.Envelope = true, true, true, true
	case "FAST":
		o.Flags, o.InternalDate, o.RFC822Size = true, true, true
	case "FULL":
		o.Flags, o.InternalDate, o.RFC822Size, o.Envelope = true, true, true, true
		o.BodyStructure = &imap.FetchItemBodyStructure{Extended: o.BodyStructure != nil && o.BodyStructure.Extended}
	case "ENVELOPE":
		o.Envelope = true
	case "FLAGS":
		o.Flags = true
	case "INTERNALDATE":
		o.InternalDate = true
	case "RFC822.SIZE":
		o.RFC822Size = true
	case "UID":
		o.UID = true
	case "MODSEQ":
		o.ModSeq = true
	case "BODYSTRUCTURE":
		o.BodyStructure = &imap.FetchItemBodyStructure{Extended: true}
	case "RFC822":
		bs := &imap.FetchItemBodySection{}
		a.rfc822[bs] = name
		o.BodySection = append(o.BodySection, bs)
	case "RFC822.HEADER": // BODY.PEEK[HEADER]
		bs := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
		a.rfc822[bs] = name
		o.BodySection = append(o.BodySection, bs)
	case "RFC822.TEXT": // BODY[TEXT]
		bs := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}
		a.rfc822[bs] = name
		o.BodySection = append(o.BodySection, bs)
	case "BODY", "BODY.PEEK":
		if b, err := r.peek(); err != nil {
			return err
		} else if b != '[' {
			if name == "BODY.PEEK" {
				return badSyntax("BODY.PEEK needs a section")
			}
			if o.BodyStructure == nil {
				o.BodyStructure = &imap.FetchItemBodyStructure{}
			}
			return nil
		}
		bs := &imap.FetchItemBodySection{Peek: name == "BODY.PEEK"}
		if err := r.section(bs); err != nil {
			return err
		}
		if bs.Partial, err = r.partial(); err != nil {
			return err
		}
		o.BodySection = append(o.BodySection, bs)
	case "BINARY", "BINARY.PEEK":
		bs := &imap.FetchItemBinarySection{Peek: name == "BINARY.PEEK"}
		if bs.Part, err = r.sectionBinary(); err != nil {
			return err
		}
		if bs.Partial, err = r.partial(); err != nil {
			return err
		}
		o.BinarySection = append(o.BinarySection, bs)
	case "BINARY.SIZE":
		part, err := r.sectionBinary()
		if err != nil {
			return err
		}
		o.BinarySectionSize = append(o.BinarySectionSize, &imap.FetchItemBinarySectionSize{Part: part})
	default:
		if ok, err := r.fetchAttExt(a, name); ok { // fetchext.go
			return err
		}
		return badSyntax("Unknown FETCH item %s", truncate(name, 32))
	}
	return nil
}

// section = "[" [section-spec] "]"; section-spec = section-msgtext / (section-part ["."
// section-text]); section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list /
// "TEXT"; section-text = section-msgtext / "MIME" (RFC 3501 §9).
func (r *commandReader) section(bs *imap.FetchItemBodySection) error {
	if err := r.expect('[', `"["`); err != nil {
		return err
	}
	afterDot := false
	for {
		b, err := r.peek()
		if err != nil {
			return err
		}
		if b == ']' && !afterDot {
			r.readByte()
			return nil
		}
		if b >= '0' && b <= '9' && (len(bs.Part) == 0 || afterDot) {
			afterDot = false
			n, err := r.nzNumber()
			if err != nil {
				return err
			}
			bs.Part = append(bs.Part, int(n))
			if dot, err := r.maybe('.'); err != nil {
				return err
			} else if dot {
				afterDot = true
				continue
			}
			return r.expect(']', `"]"`)
		}
		break
	}
	spec, err := r.run(func(b byte) bool { return b == '.' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' }, "a section")
	if err != nil {
		return err
	}
	switch spec = strings.ToUpper(spec); spec {
	case "HEADER":
		bs.Specifier = imap.PartSpecifierHeader
	case "TEXT":
		bs.Specifier = imap.PartSpecifierText
	case "MIME":
		if len(bs.Part) == 0 {
			return badSyntax("MIME needs a part number")
		}
		bs.Specifier = imap.PartSpecifierMIME
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		bs.Specifier = imap.PartSpecifierHeader
		if err := r.sp(); err != nil {
			return err
		}
		var fields []string
		if err := r.list(false, func() error {
			// header-fld-name = astring; RFC 5322 field names are printable ASCII
			// without ":".
			f, err := r.astring()
			if err == nil && (f == "" || strings.ContainsAny(f, ": \t")) {
				err = badSyntax("Not a header field name: %q", truncate(f, 32))
			}
			fields = append(fields, f)
			return err
		}); err != nil {
			return err
		}
		if spec == "HEADER.FIELDS" {
			bs.HeaderFields = fields
		} else {
			bs.HeaderFieldsNot = fields
		}
	default:
		return badSyntax("Unknown section %s", truncate(spec, 32))
	}
	return r.expect(']', `"]"`)
}

// section-binary = "[" [section-part] "]" (RFC 3516 §6).
func (r *commandReader) sectionBinary() ([]int, error) {
	if err := r.expect('[', `"["`); err != nil {
		return nil, err
	}
	part := []int{}
	if closed, err := r.maybe(']'); err != nil || closed {
		return part, err
	}
	for {
		n, err := r.nzNumber()
		if err != nil {
			return nil, err
		}
		part = append(part, int(n))
		if dot, err := r.maybe('.'); err != nil {
			return nil, err
		} else if !dot {
			return part, r.expect(']', `"]"`)
		}
	}
}

// partial = "<" number "." nz-number ">" (RFC 3501 §9; RFC 9051 §9 allows 63 bits).
func (r *commandReader) partial() (*imap.SectionPartial, error) {
	if lt, err := r.maybe('<'); err != nil || !lt {
		return nil, err
	}
	off, err := r.number64()
	if err != nil {
		return nil, err
	}
	if err := r.expect('.', `"."`); err != nil {
		return nil, err
	}
	size, err := r.number64()
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, badSyntax("A partial's size is not zero")
	}
	return &imap.SectionPartial{Offset: off, Size: size}, r.expect('>', `">"`)
}

type storeArgs struct {
	nums           imap.NumSet
	uid            bool
	flags          imap.StoreFlags
	unchangedSince uint64 // (UNCHANGEDSINCE n), RFC 7162 §3.1.3; 0 if not given
	hasUnchanged   bool
}

// STORE SP sequence-set [SP store-modifiers] SP store-att-flags (RFC 3501 §6.4.6,
// RFC 4466 §2.5, RFC 7162 §3.1.3); store-att-flags = (["+" / "-"] "FLAGS"
// [".SILENT"]) SP (flag-list / (flag *(SP flag))).
func parseStore(uid bool) func(*commandReader) (any, error) {
	return func(r *commandReader) (any, error) {
		a := &storeArgs{uid: uid}
		var err error
		if err = r.sp(); err != nil {
			return nil, err
		}
		if a.nums, err = r.numSet(uid); err != nil {
			return nil, err
		}
		if err = r.sp(); err != nil {
			return nil, err
		}
		if b, err := r.peek(); err != nil {
			return nil, err
		} else if b == '(' {
			if err := r.list(false, func() error {
				m, err := r.keyword()
				if err != nil {
					return err
				}
				if m != "UNCHANGEDSINCE" {
					return badSyntax("Unknown STORE modifier %s", truncate(m, 32))
				}
				if err := r.sp(); err != nil {
					return err
				}
				a.unchangedSince, err = r.modSeq(true)
				a.hasUnchanged = true
				return err
			}); err != nil {
				return nil, err
			}
			if err := r.sp(); err != nil {
				return nil, err
			}
		}
		item, err := r.run(func(b byte) bool { return atomChar(b) }, "FLAGS")
		if err != nil {
			return nil, err
		}
		item = strings.ToUpper(item)
		switch {
		case strings.HasPrefix(item, "+"):
			a.flags.Op, item = imap.StoreFlagsAdd, item[1:]
		case strings.HasPrefix(item, "-"):
			a.flags.Op, item = imap.StoreFlagsDel, item[1:]
		default:
			a.flags.Op = imap.StoreFlagsSet
		}
		switch item {
		case "FLAGS":
		case "FLAGS.SILENT":
			a.flags.Silent = true
		default:
			return nil, badSyntax("Unknown STORE item %s", truncate(item, 32))
		}
		if err := r.sp(); err != nil {
			return nil, err
		}
		if b, err := r.peek(); err != nil {
			return nil, err
		} else if b == '(' {
			a.flags.Flags, err = r.flagList()
			return a, err
		}
		a.flags.Flags = []imap.Flag{}
		for {
			f, err := r.flag()
			if err != nil {
				return nil, err
			}
			a.flags.Flags = append(a.flags.Flags, f)
			if sp, err := r.maybe(' '); err != nil || !sp {
				return a, err
			}
		}
	}
}

type copyArgs struct {
	nums    imap.NumSet
	uid     bool
	mailbox string
}

// COPY/MOVE SP sequence-set SP mailbox (RFC 3501 §6.4.7, RFC 6851 §3).
func parseCopy(uid bool) func(*commandReader) (any, error) {
	return func(r *commandReader) (any, error) {
		a := &copyArgs{uid: uid}
		var err error
		if err = r.sp(); err != nil {
			return nil, err
		}
		if a.nums, err = r.numSet(uid); err != nil {
			return nil, err
		}
		if err = r.sp(); err != nil {
			return nil, err
		}
		if a.mailbox, err = r.mailbox(); err != nil {
			return nil, err
		}
		return a, nil
	}
}

type uidExpungeArgs struct{ uids imap.UIDSet }

// UID EXPUNGE SP sequence-set (RFC 4315 §2.1).
func parseUIDExpunge(r *commandReader) (any, error) {
	if err := r.sp(); err != nil {
		return nil, err
	}
	set, err := r.numSet(true)
	if err != nil {
		return nil, err
	}
	if imap.IsSearchRes(set) {
		return &uidExpungeArgs{uids: imap.SearchRes()}, nil
	}
	return &uidExpungeArgs{uids: set.(imap.UIDSet)}, nil
}

type searchArgs struct {
	uid      bool
	charset  string // upper case; "" if none was given
	criteria imap.SearchCriteria
	// esearch: RETURN was given (RFC 4731 §3.1); the answer is ESEARCH then.
	esearch bool
	options imap.SearchOptions
	// modSeq: a MODSEQ key was used (RFC 7162 §3.1.5); the answer carries (MODSEQ n).
	modSeq bool
	// partial: RETURN (PARTIAL range), RFC 9394 (partial.go).
	partial *partialRange
	// update: RETURN (UPDATE), RFC 5267 §4.3 (context.go).
	update bool
}

// SEARCH [SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"]
// [SP "CHARSET" SP astring] 1*(SP search-key) (RFC 3501 §6.4.4, RFC 4731 §3.1,
// RFC 9051 §6.4.4).
func parseSearch(uid bool) func(*commandReader) (any, error) {
	return func(r *commandReader) (any, error) {
		a := &searchArgs{uid: uid}
		if err := r.sp(); err != nil {
			return nil, err
		}
		kw, err := r.peekKeyword()
		if err != nil {
			return nil, err
		}
		if kw == "RETURN" {
			r.keyword()
			if err := r.sp(); err != nil {
				return nil, err
			}
			a.esearch = true
			if err := r.list(true, func() error {
				opt, err := r.keyword()
				if err != nil {
					return err
				}
				switch {
				case a.returnOption(opt):
				case opt == "SAVE":
					a.options.ReturnSave = true
				default:
					if ok, err := r.searchReturnExt(a, opt); ok { // partial.go
						return err
					}
					return badSyntax("Unknown SEARCH return option %s", truncate(opt, 32))
				}
				return nil
			}); err != nil {
				return nil, err
			}
			// RFC 4731 §3.1: RETURN () is RETURN (ALL).
			o := a.options
			if !o.ReturnMin && !o.ReturnMax && !o.ReturnAll && !o.ReturnCount && !o.ReturnSave && a.partial == nil && !a.update {
				a.options.ReturnAll = true
			}
			if err := r.sp(); err != nil {
				return nil, err
			}
			if kw, err = r.peekKeyword(); err != nil {
				return nil, err
			}
		}
		if kw == "CHARSET" {
			r.keyword()
			if err := r.sp(); err != nil {
				return nil, err
			}
			cs, err := r.astring()
			if err != nil {
				return nil, err
			}
			a.charset = strings.ToUpper(cs)
			if a.charset != "UTF-8" && a.charset != "US-ASCII" {
				// RFC 3501 §6.4.4: NO [BADCHARSET] with the charsets supported.
				return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: "BADCHARSET (US-ASCII UTF-8)",
					Text: "Unsupported charset"}
			}
			if err := r.sp(); err != nil {
				return nil, err
			}
		}
		for {
			if err := r.searchKey(&a.criteria, a); err != nil {
				return nil, err
			}
			if sp, err := r.maybe(' '); err != nil || !sp {
				return a, err
			}
		}
	}
}

// peekKeyword looks at the letters coming next without taking them.
func (r *commandReader) peekKeyword() (string, error) {
	for n := 1; n <= 8; n++ {
		p, err := r.br.Peek(n)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				break
			}
			return "", err
		}
		c := p[n-1]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return strings.ToUpper(string(p[:n-1])), nil
		}
	}
	return "", nil
}

var searchFlagKeys = map[string]struct {
	flag imap.Flag
	not  bool
}{
	"ANSWERED": {imap.FlagAnswered, false}, "UNANSWERED": {imap.FlagAnswered, true},
	"DELETED": {imap.FlagDeleted, false}, "UNDELETED": {imap.FlagDeleted, true},
	"DRAFT": {imap.FlagDraft, false}, "UNDRAFT": {imap.FlagDraft, true},
	"FLAGGED": {imap.FlagFlagged, false}, "UNFLAGGED": {imap.FlagFlagged, true},
	"SEEN": {imap.FlagSeen, false}, "UNSEEN": {imap.FlagSeen, true},
	"RECENT": {"\\Recent", false}, "OLD": {"\\Recent", true},
}

var searchHeaderKeys = map[string]string{"BCC": "Bcc", "CC": "Cc", "FROM": "From", "SUBJECT": "Subject", "TO": "To"}

// searchKey reads one search-key into c (RFC 3501 §6.4.4, RFC 9051 §6.4.4, RFC 5182,
// RFC 7162 §3.1.5), the keys of one list ANDed.
func (r *commandReader) searchKey(c *imap.SearchCriteria, a *searchArgs) error {
	b, err := r.peek()
	if err != nil {
		return err
	}
	switch {
	case b == '(':
		return r.list(false, func() error { return r.searchKey(c, a) })
	case b == '*' || b == '$' || b >= '0' && b <= '9':
		set, err := r.numSet(false)
		if err != nil {
			return err
		}
		if imap.IsSearchRes(set) {
			c.UID = append(c.UID, imap.SearchRes())
		} else {
			c.SeqNum = append(c.SeqNum, set.(imap.SeqSet))
		}
		return nil
	}
	key, err := r.keyword()
	if err != nil {
		return err
	}
	if f, ok := searchFlagKeys[key]; ok {
		if f.not {
			c.NotFlag = append(c.NotFlag, f.flag)
		} else {
			c.Flag = append(c.Flag, f.flag)
		}
		return nil
	}
	if h, ok := searchHeaderKeys[key]; ok {
		if err := r.sp(); err != nil {
			return err
		}
		v, err := r.astring()
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: h, Value: v})
		return err
	}
	switch key {
	case "ALL":
	case "NEW": // RECENT UNSEEN
		c.Flag = append(c.Flag, "\\Recent")
		c.NotFlag = append(c.NotFlag, imap.FlagSeen)
	case "KEYWORD", "UNKEYWORD":
		if err := r.sp(); err != nil {
			return err
		}
		f, err := r.atom()
		if err != nil {
			return err
		}
		if key == "KEYWORD" {
			c.Flag = append(c.Flag, imap.Flag(f))
		} else {
			c.NotFlag = append(c.NotFlag, imap.Flag(f))
		}
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		if err := r.sp(); err != nil {
			return err
		}
		d, err := r.date()
		if err != nil {
			return err
		}
		var k imap.SearchCriteria
		switch key {
		case "BEFORE":
			k.Before = d
		case "ON":
			k.Since, k.Before = d, d.AddDate(0, 0, 1)
		case "SINCE":
			k.Since = d
		case "SENTBEFORE":
			k.SentBefore = d
		case "SENTON":
			k.SentSince, k.SentBefore = d, d.AddDate(0, 0, 1)
		case "SENTSINCE":
			k.SentSince = d
		}
		andCriteria(c, &k)
	case "BODY", "TEXT":
		if err := r.sp(); err != nil {
			return err
		}
		v, err := r.astring()
		if err != nil {
			return err
		}
		if key == "BODY" {
			c.Body = append(c.Body, v)
		} else {
			c.Text = append(c.Text, v)
		}
	case "HEADER":
		if err := r.sp(); err != nil {
			return err
		}
		k, err := r.astring()
		if err != nil {
			return err
		}
		if err := r.sp(); err != nil {
			return err
		}
		v, err := r.astring()
		if err != nil {
			return err
		}
		if strings.HasPrefix(k, extKeyPrefix) {
			k = " " + k // no field has this name, nor is it an extension's key (searchext.go)
		}
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: k, Value: v})
	case "LARGER", "SMALLER":
		if err := r.sp(); err != nil {
			return err
		}
		n, err := r.number64()
		if err != nil {
			return err
		}
		if key == "LARGER" {
			andCriteria(c, &imap.SearchCriteria{Larger: n})
		} else if n == 0 { // nothing is smaller than 0 octets
			c.Not = append(c.Not, imap.SearchCriteria{})
		} else {
			andCriteria(c, &imap.SearchCriteria{Smaller: n})
		}
	case "UID":
		if err := r.sp(); err != nil {
			return err
		}
		set, err := r.numSet(true)
		if err != nil {
			return err
		}
		c.UID = append(c.UID, set.(imap.UIDSet))
	case "NOT":
		if err := r.sp(); err != nil {
			return err
		}
		var k imap.SearchCriteria
		if err := r.nested(func() error { return r.searchKey(&k, a) }); err != nil {
			return err
		}
		c.Not = append(c.Not, k)
	case "OR":
		var pair [2]imap.SearchCriteria
		for i := range pair {
			if err := r.sp(); err != nil {
				return err
			}
			if err := r.nested(func() error { return r.searchKey(&pair[i], a) }); err != nil {
				return err
			}
		}
		c.Or = append(c.Or, pair)
	case "MODSEQ":
		// MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer (RFC 7162 §3.1.5)
		if err := r.sp(); err != nil {
			return err
		}
		ms := &imap.SearchCriteriaModSeq{}
		if b, err := r.peek(); err != nil {
			return err
		} else if b == '"' {
			if ms.MetadataName, err = r.quoted(); err != nil {
				return err
			}
			if err := r.sp(); err != nil {
				return err
			}
			t, err := r.atom()
			if err != nil {
				return err
			}
			switch t := imap.SearchCriteriaMetadataType(strings.ToLower(t)); t {
			case imap.SearchCriteriaMetadataAll, imap.SearchCriteriaMetadataPrivate, imap.SearchCriteriaMetadataShared:
				ms.MetadataType = t
			default:
				return badSyntax("Unknown MODSEQ entry type %s", truncate(string(t), 32))
			}
			if err := r.sp(); err != nil {
				return err
			}
		}
		if ms.ModSeq, err = r.modSeq(true); err != nil {
			return err
		}
		if c.ModSeq == nil || ms.ModSeq > c.ModSeq.ModSeq {
			c.ModSeq = ms
		}
		a.modSeq = true
	default:
		if ok, err := r.searchKeyExt(c, key); ok { // searchext.go
			return err
		}
		return badSyntax("Unknown SEARCH key %s", truncate(key, 32))
	}
	return nil
}

// nested runs fn one level deeper (NOT, OR), within nestingLimit.
func (r *commandReader) nested(fn func() error) error {
	if r.depth++; r.depth > nestingLimit {
		return errTooDeep
	}
	defer func() { r.depth-- }()
	return fn()
}

// andCriteria adds the date and size bounds of k to c, keeping the narrower of each.
// (imap.SearchCriteria.And would drop a SMALLER bound when k has none.)
func andCriteria(c, k *imap.SearchCriteria) {
	later := func(a, b time.Time) time.Time {
		if a.IsZero() || b.After(a) {
			return b
		}
		return a
	}
	earlier := func(a, b time.Time) time.Time {
		if a.IsZero() || (!b.IsZero() && b.Before(a)) {
			return b
		}
		return a
	}
	if !k.Since.IsZero() {
		c.Since = later(c.Since, k.Since)
	}
	if !k.SentSince.IsZero() {
		c.SentSince = later(c.SentSince, k.SentSince)
	}
	c.Before = earlier(c.Before, k.Before)
	c.SentBefore = earlier(c.SentBefore, k.SentBefore)
	if k.Larger > c.Larger {
		c.Larger = k.Larger
	}
	if k.Smaller != 0 && (c.Smaller == 0 || k.Smaller < c.Smaller) {
		c.Smaller = k.Smaller
	}
}

// returnOption takes a return option that ESEARCH and ESORT share (RFC 4731 §3.1, RFC 5267
// §3): MIN, MAX, ALL or COUNT; it reports whether opt was one.
func (a *searchArgs) returnOption(opt string) bool {
	switch opt {
	case "MIN":
		a.options.ReturnMin = true
	case "MAX":
		a.options.ReturnMax = true
	case "ALL":
		a.options.ReturnAll = true
	case "COUNT":
		a.options.ReturnCount = true
	default:
		return false
	}
	return true
}
