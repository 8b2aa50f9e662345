package trace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Directions, as indexes of transcript.streams.
const (
	fromClient = 0
	fromServer = 1
)

var marker = [2]string{fromClient: "C: ", fromServer: "S: "}

// noBody is verdict.body when no body follows.
const noBody = -1

// maxLine is the longest line written whole; the rest of a longer one is counted.
const maxLine = 16 << 10

// tailSize is how much of the end of an overlong line is kept, to see a literal there.
const tailSize = 32

// Time layouts: of the lines, and of the file names (which must sort by time).
const (
	lineTime = "2006-01-02T15:04:05.000Z"
	fileTime = "20060102T150405.000Z"
)

// masked stands for a credential.
const masked = "****"

// wireLine is one line as read off the wire, without its line end.
type wireLine struct {
	text []byte // the line, or its first maxLine bytes
	cut  int64  // bytes dropped after text
	tail []byte // the line's last bytes when cut
}

// end is the end of the line as it was on the wire (to find a literal there).
func (l wireLine) end() []byte {
	if l.cut > 0 {
		return l.tail
	}
	return l.text
}

// verdict is what a filter makes of a line.
type verdict struct {
	show       []byte // the line as written, credentials masked
	hasLiteral bool   // literal bytes follow in this direction...
	literal    int64  // ...this many
	mask       bool   // the literal is a credential
	body       int    // fromClient or fromServer: that side's lines up to "." are a body
	tls        bool   // TLS starts after this line (STARTTLS accepted)
	// cancelClientLiteral: the server refused a command instead of inviting the literal
	// it announced, so the client will not send it.
	cancelClientLiteral bool
}

func show(b []byte) verdict { return verdict{show: b, body: noBody} }

// filter follows one protocol's dialogue for a transcript. cont says the client line
// continues a command after a literal.
type filter interface {
	client(l wireLine, cont bool) verdict
	server(l wireLine, cont bool) verdict
	// reset forgets the dialogue: after TLS the session starts over (RFC 2595 §4).
	reset()
}

func newFilter(protocol string) (filter, error) {
	switch protocol {
	case "imap":
		return &imapFilter{}, nil
	case "pop3":
		return &pop3Filter{}, nil
	case "lmtp":
		return &lmtpFilter{}, nil
	}
	return nil, fmt.Errorf("trace: no filter for protocol %q", protocol)
}

// stream is one direction's reading state.
type stream struct {
	line []byte // the line being read, up to maxLine
	cut  int64  // bytes of it dropped
	tail []byte // its last bytes, once cut

	out  []byte // the line being written: literal text, then the line that continues it
	cont bool   // the next line continues a command after a literal

	lit     int64 // literal bytes still to come
	mask    bool  // the literal is a credential
	body    bool  // in a body: lines up to "."
	shown   int64 // bytes of the current literal or body written
	dropped int64 // bytes of it not written
}

func (st *stream) add(b []byte) {
	if room := maxLine - len(st.line); room > 0 {
		k := min(room, len(b))
		st.line = append(st.line, b[:k]...)
		b = b[k:]
	}
	if len(b) > 0 {
		st.cut += int64(len(b))
		st.tail = append(st.tail, b...)
		if len(st.tail) > tailSize {
			st.tail = append(st.tail[:0], st.tail[len(st.tail)-tailSize:]...)
		}
	}
}

// transcript is one session's trace file.
type transcript struct {
	name string
	log  *slog.Logger
	now  func() time.Time
	max  int64

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	filter  filter
	streams [2]stream
	tls     bool // the raw stream is encrypted: not written
	clear   bool // the decrypted stream is traced (Cleartext)
	done    bool // closed, or writing failed
	ts      []byte
}

// create opens a new transcript file in opts.Dir and writes its header.
func create(opts Options, protocol, id string, c net.Conn, start time.Time, implicitTLS bool) (*transcript, error) {
	flt, err := newFilter(protocol)
	if err != nil {
		return nil, err
	}
	base := start.UTC().Format(fileTime) + "-" + protocol + "-" + id
	var f *os.File
	name := base + ".log"
	for i := 2; ; i++ {
		f, err = os.OpenFile(filepath.Join(opts.Dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return nil, fmt.Errorf("trace: %w", err)
		}
		name = base + "-" + strconv.Itoa(i) + ".log" // a restart within the same millisecond
	}
	t := &transcript{name: name, log: opts.Logger, now: opts.Now, max: int64(opts.MaxLiteral),
		f: f, w: bufio.NewWriterSize(f, 8<<10), filter: flt, tls: implicitTLS}
	fmt.Fprintf(t.w, "# Letterbox wire trace\n# protocol: %s\n# session: %s\n# remote: %s\n# local: %s\n# start: %s\n",
		protocol, id, addrString(c.RemoteAddr()), addrString(c.LocalAddr()), start.UTC().Format(lineTime))
	if implicitTLS {
		fmt.Fprintf(t.w, "# tls: implicit (the encrypted stream is not traced)\n")
	}
	t.mu.Lock()
	t.flush()
	t.mu.Unlock()
	return t, nil
}

// record writes what was read (fromClient) or is about to be written (fromServer). clear
// says it comes from the decrypted layer (Cleartext). It reports that TLS starts now.
func (t *transcript) record(clear bool, dir int, p []byte) (tlsNow bool) {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done || (clear != t.clear) || (!clear && t.tls) {
		return false
	}
	t.stamp()
	tlsNow = t.feed(&t.streams[dir], dir, p)
	t.flush()
	return tlsNow
}

// awaitingCommand reports whether the client's next bytes start a command line (no line,
// literal or body is half read); without a transcript it cannot tell and says yes.
func (t *transcript) awaitingCommand() bool {
	if t == nil {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := &t.streams[fromClient]
	return len(st.line) == 0 && st.cut == 0 && st.lit == 0 && !st.body
}

// feed runs p through a stream; it reports that TLS starts after it.
func (t *transcript) feed(st *stream, dir int, p []byte) bool {
	for len(p) > 0 {
		if st.lit > 0 {
			k := min(st.lit, int64(len(p)))
			chunk := p[:k]
			p = p[k:]
			st.lit -= k
			switch {
			case st.mask:
				if st.shown == 0 {
					st.out = append(st.out, masked...)
				}
				st.shown += k // read, and written as the mask
			default:
				n := min(max(t.max-st.shown, 0), k)
				t.text(st, dir, chunk[:n])
				st.shown += n
				st.dropped += k - n
			}
			if st.lit == 0 {
				t.endPart(st, dir)
				st.cont = true
			}
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			st.add(p)
			return false
		}
		st.add(p[:i+1])
		p = p[i+1:]
		if t.line(st, dir) {
			return true // what follows is ciphertext
		}
	}
	return false
}

// text adds literal bytes to the line being written, writing each line they end.
func (t *transcript) text(st *stream, dir int, b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			st.out = append(st.out, b...)
			return
		}
		st.out = append(st.out, b[:i]...)
		t.emit(dir, bytes.TrimSuffix(st.out, []byte("\r")))
		st.out = st.out[:0]
		b = b[i+1:]
	}
}

// endPart ends a literal or body: it says how much was left out.
func (t *transcript) endPart(st *stream, dir int) {
	if st.dropped > 0 {
		if len(st.out) > 0 {
			t.emit(dir, st.out)
			st.out = st.out[:0]
		}
		t.emit(dir, fmt.Appendf(nil, "[... %d more bytes]", st.dropped))
	}
	st.shown, st.dropped, st.mask = 0, 0, false
}

// line handles the complete line in st.line; it reports that TLS starts after it.
func (t *transcript) line(st *stream, dir int) bool {
	l := wireLine{text: trimEOL(st.line), cut: st.cut, tail: trimEOL(st.tail)}
	defer func() { st.line, st.cut, st.tail = st.line[:0], 0, st.tail[:0] }()
	cutNote := func(b []byte) []byte {
		if l.cut > 0 {
			b = fmt.Appendf(b, " [... %d more bytes]", l.cut)
		}
		return b
	}

	if st.body {
		if l.cut == 0 && string(l.text) == "." {
			t.endPart(st, dir)
			t.emit(dir, l.text)
			st.body = false
			return false
		}
		n := int64(len(st.line)) + l.cut
		if st.shown < t.max {
			t.emit(dir, cutNote(append(st.out[:0], l.text...)))
			st.shown += n
		} else {
			st.dropped += n
		}
		return false
	}

	var v verdict
	if dir == fromClient {
		v = t.filter.client(l, st.cont)
	} else {
		v = t.filter.server(l, st.cont)
	}
	st.cont = false
	st.out = cutNote(append(st.out, v.show...))
	t.emit(dir, st.out)
	st.out = st.out[:0]
	if v.hasLiteral {
		if v.literal == 0 {
			st.cont = true
		}
		st.lit, st.mask = v.literal, v.mask
	}
	if st := &t.streams[fromClient]; v.cancelClientLiteral && st.shown == 0 && st.dropped == 0 {
		st.lit, st.mask, st.cont = 0, false, false
	}
	if v.body != noBody {
		t.streams[v.body].body = true
	}
	if v.tls {
		t.startTLSLocked("TLS started (STARTTLS accepted)")
		return true
	}
	return false
}

func trimEOL(b []byte) []byte {
	return bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
}

// emit writes one line of dir; control characters and bytes that are not UTF-8 are
// escaped (\x1b), so that a transcript is always text.
func (t *transcript) emit(dir int, text []byte) {
	t.w.Write(t.ts)
	t.w.WriteByte(' ')
	t.w.WriteString(marker[dir])
	for len(text) > 0 {
		r, n := utf8.DecodeRune(text)
		if (r < 0x20 && r != '\t') || r == 0x7f || (r == utf8.RuneError && n == 1) {
			fmt.Fprintf(t.w, `\x%02x`, text[0])
		} else {
			t.w.Write(text[:n])
		}
		text = text[n:]
	}
	t.w.WriteByte('\n')
}

// event writes an event line ("-- user alice"): what the protocols report through the
// session registry.
func (t *transcript) event(text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.eventLocked(text)
}

func (t *transcript) eventLocked(text string) {
	if t.done {
		return
	}
	t.stamp()
	t.w.Write(t.ts)
	t.w.WriteString(" -- ")
	t.w.WriteString(text)
	t.w.WriteByte('\n')
	t.flush()
}

func (t *transcript) stamp() {
	t.ts = t.now().UTC().AppendFormat(t.ts[:0], lineTime)
}

func (t *transcript) flush() {
	if err := t.w.Flush(); err != nil && !t.done {
		t.done = true
		t.f.Close()
		t.log.Warn("trace: writing failed; the rest of the session is not traced", "trace", t.name, "err", err)
	}
}

// startTLS notes that the raw stream turned into TLS.
func (t *transcript) startTLS(how string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.startTLSLocked(how)
}

func (t *transcript) startTLSLocked(how string) {
	if t.tls {
		return
	}
	t.tls = true
	t.streams = [2]stream{}
	t.eventLocked(how + "; the encrypted stream is not traced")
}

// resumeCleartext starts tracing the decrypted stream of a TLS session.
func (t *transcript) resumeCleartext(version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tls, t.clear = true, true
	t.streams = [2]stream{}
	t.filter.reset()
	t.eventLocked("TLS established (" + version + "); the decrypted stream follows")
}

// close writes the end time and closes the file. A line the client had not finished is
// left out: it went through no filter.
func (t *transcript) close() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	t.stamp()
	for dir := range t.streams {
		st := &t.streams[dir]
		if len(st.out) > 0 {
			t.emit(dir, st.out)
		}
		if n := int64(len(st.line)) + st.cut; n > 0 {
			fmt.Fprintf(t.w, "%s -- %s%d bytes of an unfinished line not shown\n", t.ts, marker[dir], n)
		}
	}
	fmt.Fprintf(t.w, "# end: %s\n", t.ts)
	t.flush()
	t.done = true
	if err := t.f.Close(); err != nil {
		t.log.Warn("trace: closing failed", "trace", t.name, "err", err)
	}
}
