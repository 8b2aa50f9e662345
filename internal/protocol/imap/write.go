package imap

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// writeBufferSize is the buffer a command's responses are written through: a TLS record's
// worth, so that a large FETCH goes out in full records.
const writeBufferSize = 16 << 10

// writeBuffers hold the buffers of sessions that are writing. A session takes one when it
// starts a response and gives it back when it flushes, which it does when a command is
// answered and before it waits for the client: an idle session (10,000 of them in IDLE)
// holds no write buffer.
var writeBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}

// responseWriter encodes responses (RFC 3501 §7, §9) onto the connection. It is not safe
// for concurrent use: the session has one goroutine writing at a time. A write error
// sticks: every later write is dropped, and flush returns it.
type responseWriter struct {
	dst io.Writer
	bw  *bufio.Writer // from writeBuffers; nil while nothing is buffered
	err error
	// utf8 says the client takes UTF-8 in quoted strings and mailbox names (UTF8=ACCEPT,
	// RFC 6855 §3, or IMAP4rev2); otherwise 8-bit strings go as literals and names in
	// modified UTF-7.
	utf8 bool
	// uidOnly: UIDONLY is enabled (RFC 9586, uidonly.go): FETCH responses are UIDFETCH.
	uidOnly bool
}

func newResponseWriter(dst io.Writer) *responseWriter { return &responseWriter{dst: dst} }

func (w *responseWriter) buf() *bufio.Writer {
	if w.bw == nil {
		w.bw = writeBuffers.Get().(*bufio.Writer)
		w.bw.Reset(w.dst)
	}
	return w.bw
}

// flush sends what is buffered and gives the buffer back.
func (w *responseWriter) flush() error {
	if w.bw == nil {
		return w.err
	}
	if w.err == nil {
		if err := w.bw.Flush(); err != nil {
			w.err = fmt.Errorf("writing a response: %w", err)
		} else if f, ok := w.dst.(flusher); ok {
			// COMPRESS=DEFLATE (compress.go): what the compressor holds goes out too, in
			// full, or a client waiting for this answer would never see its end.
			if err := f.Flush(); err != nil {
				w.err = fmt.Errorf("writing a response: %w", err)
			}
		}
	}
	w.bw.Reset(nil)
	writeBuffers.Put(w.bw)
	w.bw = nil
	return w.err
}

// flusher is a destination that holds written data until Flush (compression, compress.go).
type flusher interface{ Flush() error }

// buffered says how many octets wait for flush.
func (w *responseWriter) buffered() int {
	if w.bw == nil {
		return 0
	}
	return w.bw.Buffered()
}

func (w *responseWriter) fail(err error) {
	if w.err == nil {
		w.err = fmt.Errorf("writing a response: %w", err)
	}
}

func (w *responseWriter) raw(s string) *responseWriter {
	if w.err == nil {
		if _, err := w.buf().WriteString(s); err != nil {
			w.fail(err)
		}
	}
	return w
}

func (w *responseWriter) rawBytes(b []byte) *responseWriter {
	if w.err == nil {
		if _, err := w.buf().Write(b); err != nil {
			w.fail(err)
		}
	}
	return w
}

func (w *responseWriter) octet(c byte) *responseWriter {
	if w.err == nil {
		if err := w.buf().WriteByte(c); err != nil {
			w.fail(err)
		}
	}
	return w
}

func (w *responseWriter) sp() *responseWriter   { return w.octet(' ') }
func (w *responseWriter) crlf() *responseWriter { return w.raw("\r\n") }

// atom writes s as it is: the caller knows it is an atom (a keyword, a flag).
func (w *responseWriter) atom(s string) *responseWriter { return w.raw(s) }

func (w *responseWriter) number(n uint32) *responseWriter {
	var b [10]byte
	return w.rawBytes(strconv.AppendUint(b[:0], uint64(n), 10))
}

func (w *responseWriter) number64(n int64) *responseWriter {
	var b [20]byte
	return w.rawBytes(strconv.AppendInt(b[:0], n, 10))
}

func (w *responseWriter) modSeq(n uint64) *responseWriter {
	var b [20]byte
	return w.rawBytes(strconv.AppendUint(b[:0], n, 10))
}

// stringForm is how a string may go on the wire.
type stringForm uint8

const (
	formAtom    stringForm = iota // 1*ATOM-CHAR
	formQuoted                    // QUOTED-CHARs
	formLiteral                   // CR, LF, 8-bit (without UTF-8), or long
)

func (w *responseWriter) formOf(s string, atomOK bool) stringForm {
	form := formAtom
	if !atomOK || s == "" || strings.EqualFold(s, "NIL") {
		form = formQuoted
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\r' || c == '\n' || c == 0:
			return formLiteral
		case c >= 0x80:
			if !w.utf8 || !utf8.ValidString(s) {
				return formLiteral
			}
			form = formQuoted
		case form == formAtom && !astringChar(c):
			form = formQuoted
		}
	}
	if form == formQuoted && len(s) > 1024 {
		return formLiteral
	}
	return form
}

// astring writes s as an atom when it is one, else as a string.
func (w *responseWriter) astring(s string) *responseWriter {
	switch w.formOf(s, true) {
	case formAtom:
		return w.raw(s)
	case formQuoted:
		return w.quoted(s)
	}
	return w.literalString(s)
}

// string writes s quoted, or as a literal when it holds CR, LF or NUL, or 8-bit text the
// client has not enabled (RFC 3501 §4.3; RFC 6855 §3).
func (w *responseWriter) string(s string) *responseWriter {
	if w.formOf(s, false) == formQuoted {
		return w.quoted(s)
	}
	return w.literalString(s)
}

// nstring writes s, or NIL when it is not set.
func (w *responseWriter) nstring(s string, set bool) *responseWriter {
	if !set {
		return w.raw("NIL")
	}
	return w.string(s)
}

// nilOrString writes NIL for "", else the string (envelope fields).
func (w *responseWriter) nilOrString(s string) *responseWriter { return w.nstring(s, s != "") }

// quoted writes s between double quotes, escaping '"' and '\'; the caller made sure s
// holds no CR, LF or NUL.
func (w *responseWriter) quoted(s string) *responseWriter {
	w.octet('"')
	for {
		i := strings.IndexAny(s, `"\`)
		if i < 0 {
			break
		}
		w.raw(s[:i]).octet('\\').octet(s[i])
		s = s[i+1:]
	}
	return w.raw(s).octet('"')
}

// literalString writes s as a literal. NUL cannot be in a literal (CHAR8, RFC 3501 §9),
// only in a literal8, which only BINARY responses may carry: it is dropped.
func (w *responseWriter) literalString(s string) *responseWriter {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	w.octet('{').number64(int64(len(s))).raw("}\r\n")
	return w.raw(s)
}

// literal writes a literal of size octets read from r: "{n}" CRLF, or with binary the
// literal8 "~{n}" (RFC 3516 §4.2), which may hold NUL. Fewer than size octets from r is
// an error, after which the session cannot go on: the client counts on size.
func (w *responseWriter) literal(size int64, r io.Reader, binary bool) error {
	if binary {
		w.octet('~')
	}
	w.octet('{').number64(size).raw("}\r\n")
	if w.err != nil {
		return w.err
	}
	n, err := io.CopyN(w.buf(), r, size)
	if err != nil {
		if n < size && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			err = fmt.Errorf("literal of %d octets ended after %d", size, n)
		}
		w.fail(err)
		return w.err
	}
	return nil
}

// mailbox writes a mailbox name, as a quoted string: in UTF-8 to a client that takes it,
// else in modified UTF-7 (RFC 3501 §5.1.3).
func (w *responseWriter) mailbox(name string) *responseWriter {
	if name == "INBOX" {
		return w.raw(name)
	}
	if !w.utf8 {
		name = encodeModifiedUTF7(name)
	}
	return w.string(name)
}

// flags writes a parenthesised flag list.
func (w *responseWriter) flags(flags []imap.Flag) *responseWriter {
	w.octet('(')
	for i, f := range flags {
		if i > 0 {
			w.sp()
		}
		w.raw(string(f))
	}
	return w.octet(')')
}

// dateTime writes a date-time (RFC 3501 §9): "dd-Mon-yyyy hh:mm:ss +zzzz". Of the two forms
// date-day-fixed allows ((SP DIGIT) / 2DIGIT), a day below 10 is written with two digits,
// as Dovecot writes it: some clients parse only that form.
func (w *responseWriter) dateTime(t time.Time) *responseWriter {
	return w.octet('"').raw(t.Format("02-Jan-2006 15:04:05 -0700")).octet('"')
}

// numSet writes a sequence set.
func (w *responseWriter) numSet(s imap.NumSet) *responseWriter { return w.raw(s.String()) }

// statusText makes text fit resp-text (RFC 3501 §9): one line, not empty, and not taken
// for a response code.
func statusText(text string, typ imap.StatusResponseType) string {
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text = text[:i]
	}
	text = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, text)
	if strings.HasPrefix(text, "[") {
		text = " " + text
	}
	if strings.TrimSpace(text) == "" {
		switch typ {
		case imap.StatusResponseTypeOK:
			return "Done"
		case imap.StatusResponseTypeBye:
			return "Logging out"
		}
		return "Failed"
	}
	return text
}

// status writes a status response (RFC 3501 §7.1): tagged, or untagged ("*") when tag is
// empty, with an optional response code. The code is written as given, arguments and
// all ("BADCHARSET (US-ASCII UTF-8)").
func (w *responseWriter) status(tag string, typ imap.StatusResponseType, code imap.ResponseCode, text string) *responseWriter {
	if tag == "" {
		tag = "*"
	}
	w.raw(tag).sp().raw(string(typ)).sp()
	if code != "" {
		w.octet('[').raw(string(code)).raw("] ")
	}
	return w.raw(statusText(text, typ)).crlf()
}

// statusError writes e as the status response of tag.
func (w *responseWriter) statusError(tag string, e *imap.Error) *responseWriter {
	return w.status(tag, e.Type, e.Code, e.Text)
}

// continuation writes a continuation request ("+ text") and flushes: the client waits for
// it (RFC 3501 §7.5).
func (w *responseWriter) continuation(text string) error {
	w.raw("+ ").raw(statusText(text, imap.StatusResponseTypeOK)).crlf()
	return w.flush()
}

// continuationData writes a continuation request carrying base64 data (an AUTHENTICATE
// challenge, RFC 3501 §6.2.2) and flushes; empty data is "+ " alone.
func (w *responseWriter) continuationData(b64 string) error {
	w.raw("+ ").raw(b64).crlf()
	return w.flush()
}
