package trace

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/sessions"
)

// scriptConn is a connection whose client side is a script: Read returns what the test
// queued, Write accepts everything.
type scriptConn struct {
	mu     sync.Mutex
	next   []byte
	closed bool
}

var (
	clientAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50312}
	serverAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1143}
)

func (c *scriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := copy(p, c.next)
	c.next = c.next[n:]
	return n, nil
}
func (c *scriptConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *scriptConn) Close() error                     { c.closed = true; return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return serverAddr }
func (c *scriptConn) RemoteAddr() net.Addr             { return clientAddr }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// oneConnListener accepts c once, then reports itself closed.
type oneConnListener struct {
	c    net.Conn
	done bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.done {
		return nil, net.ErrClosed
	}
	l.done = true
	return l.c, nil
}
func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return serverAddr }

// session is one traced scripted connection.
type session struct {
	t      *testing.T
	dir    string
	reg    *sessions.Registry
	script *scriptConn
	conn   net.Conn
}

var testStart = time.Date(2026, 11, 22, 6, 40, 1, 123e6, time.UTC)

func newSession(t *testing.T, protocol string, implicitTLS bool, maxLiteral int) *session {
	t.Helper()
	s := &session{t: t, dir: t.TempDir(), reg: sessions.NewRegistry(), script: &scriptConn{}}
	now := testStart
	l := NewListener(&oneConnListener{c: s.script}, protocol, implicitTLS, Options{
		Dir: s.dir, MaxLiteral: maxLiteral, Sessions: s.reg,
		Now: func() time.Time { now = now.Add(time.Millisecond); return now },
	})
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.conn = c
	return s
}

// c has the server read what the client sent.
func (s *session) c(data string) {
	s.t.Helper()
	s.script.mu.Lock()
	s.script.next = append(s.script.next, data...)
	s.script.mu.Unlock()
	buf := make([]byte, 7) // small reads: lines and literals arrive in pieces
	for {
		s.script.mu.Lock()
		left := len(s.script.next)
		s.script.mu.Unlock()
		if left == 0 {
			return
		}
		if _, err := s.conn.Read(buf); err != nil {
			s.t.Fatal(err)
		}
	}
}

// s has the server send data.
func (s *session) s(data string) {
	s.t.Helper()
	if _, err := s.conn.Write([]byte(data)); err != nil {
		s.t.Fatal(err)
	}
}

// transcript closes the session and returns its trace.
func (s *session) transcript() string {
	s.t.Helper()
	if err := s.conn.Close(); err != nil {
		s.t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(s.dir, "*"))
	if err != nil || len(files) != 1 {
		s.t.Fatalf("trace files: %v, %v; want exactly one", files, err)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		s.t.Fatal(err)
	}
	return string(raw)
}

// lines returns the trace's dialogue lines without their timestamps.
func lines(trace string) []string {
	var out []string
	for _, l := range strings.Split(trace, "\n") {
		if len(l) > len(lineTime) && (strings.HasPrefix(l[len(lineTime):], " C: ") ||
			strings.HasPrefix(l[len(lineTime):], " S: ") || strings.HasPrefix(l[len(lineTime):], " -- ")) {
			out = append(out, l[len(lineTime)+1:])
		}
	}
	return out
}

func wantLines(t *testing.T, trace string, want ...string) {
	t.Helper()
	got := lines(trace)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trace lines:\n%s\nwant:\n%s\n\nwhole trace:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), trace)
	}
}

// noLeak fails if any secret appears in the trace.
func noLeak(t *testing.T, trace string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(trace, s) {
			t.Errorf("the trace contains the secret %q:\n%s", s, trace[max(0, len(trace)-2000):])
		}
	}
}

func TestHeaderTimestampsAndEnd(t *testing.T) {
	s := newSession(t, "imap", false, 0)
	s.s("* OK ready\r\n")
	s.c("A1 NOOP\r\n")
	s.s("A1 OK done\r\n")
	trace := s.transcript()

	for _, want := range []string{"# Letterbox wire trace\n", "# protocol: imap\n", "# session: 1\n",
		"# remote: 127.0.0.1:50312\n", "# local: 127.0.0.1:1143\n", "# start: 2026-11-22T06:40:01.124Z\n",
		"2026-11-22T06:40:01.125Z S: * OK ready\n",
		"2026-11-22T06:40:01.127Z C: A1 NOOP\n", // two reads: the line is stamped when complete
		"2026-11-22T06:40:01.128Z S: A1 OK done\n"} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
	if !regexp.MustCompile(`\n# end: 2026-11-22T06:40:01\.129Z\n$`).MatchString(trace) {
		t.Errorf("trace does not end with its end time:\n%s", trace)
	}
	name := filepath.Base(must(filepath.Glob(filepath.Join(s.dir, "*")))[0])
	if name != "20261122T064001.124Z-imap-1.log" {
		t.Errorf("file name %q", name)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestRegistryFollowsTheConnection(t *testing.T) {
	s := newSession(t, "pop3", false, 0)
	live := s.reg.List()
	if len(live) != 1 || live[0].Protocol != "pop3" || live[0].Remote != "127.0.0.1:50312" ||
		live[0].Trace != "20261122T064001.124Z-pop3-1.log" || live[0].TLS {
		t.Fatalf("registry while open: %+v", live)
	}
	e := sessions.Of(s.conn)
	if e == nil {
		t.Fatal("sessions.Of finds no entry on the traced connection")
	}
	e.SetUser("alice@example.org")
	e.SetMailbox("INBOX")
	if got := s.reg.List()[0]; got.User != "alice@example.org" || got.Mailbox != "INBOX" {
		t.Errorf("registry after SetUser/SetMailbox: %+v", got)
	}
	trace := s.transcript()
	wantLines(t, trace, "-- user alice@example.org", "-- mailbox INBOX")
	if n := s.reg.Len(); n != 0 {
		t.Errorf("%d sessions left after Close, want 0", n)
	}
	if err := s.conn.Close(); err != nil { // a second Close is harmless
		t.Fatal(err)
	}
}

func TestUntracedConnectionsAreStillRegistered(t *testing.T) {
	reg := sessions.NewRegistry()
	script := &scriptConn{}
	l := NewListener(&oneConnListener{c: script}, "lmtp", false, Options{Sessions: reg})
	c := must(l.Accept())
	if live := reg.List(); len(live) != 1 || live[0].Trace != "" {
		t.Fatalf("registry: %+v", live)
	}
	c.Write([]byte("220 hi\r\n"))
	c.Close()
	if reg.Len() != 0 || !script.closed {
		t.Errorf("after Close: %d sessions, inner closed %v", reg.Len(), script.closed)
	}
}

func TestLiteralsAndBodiesAreCapped(t *testing.T) {
	s := newSession(t, "imap", false, 10)
	s.c("A1 APPEND INBOX {26}\r\n")
	s.s("+ Ready for literal data\r\n")
	s.c("Subject: x\r\n\r\n0123456789AB\r\n")
	s.s("A1 OK [APPENDUID 1 1] APPEND completed\r\n")
	s.c("A2 FETCH 1 BODY[]\r\n")
	s.s("* 1 FETCH (BODY[] {5}\r\nhello)\r\n")
	s.s("A2 OK FETCH completed\r\n")
	trace := s.transcript()
	wantLines(t, trace,
		"C: A1 APPEND INBOX {26}",
		"S: + Ready for literal data",
		"C: Subject: x",
		"C: [... 16 more bytes]",
		"C: ",
		"S: A1 OK [APPENDUID 1 1] APPEND completed",
		"C: A2 FETCH 1 BODY[]",
		"S: * 1 FETCH (BODY[] {5}",
		"S: hello)",
		"S: A2 OK FETCH completed")
	noLeak(t, trace, "0123456789AB")
}

func TestLongLinesAreCut(t *testing.T) {
	s := newSession(t, "imap", false, 0)
	long := strings.Repeat("1,", maxLine)
	s.c("A1 UID FETCH " + long + " FLAGS\r\n")
	s.c("A2 NOOP\r\n")
	lines := lines(s.transcript())
	// 13 + 2*maxLine + 6 bytes and CRLF, of which maxLine are kept (CRLF is never shown).
	if len(lines) != 2 || !strings.HasSuffix(lines[0], ",1 [... 16405 more bytes]") ||
		len(lines[0]) > maxLine+40 || lines[1] != "C: A2 NOOP" {
		t.Errorf("lines: %d, ends %q", len(lines), lines[0][len(lines[0])-40:])
	}
}

func TestControlCharactersAndNonUTF8AreEscaped(t *testing.T) {
	s := newSession(t, "pop3", false, 0)
	s.c("NOOP\x00\x1b[31m Grüße \xff\xc3\r\n")
	wantLines(t, s.transcript(), `C: NOOP\x00\x1b[31m Grüße \xff\xc3`)
}

func TestImplicitTLSIsNotTraced(t *testing.T) {
	s := newSession(t, "imap", true, 0)
	s.c("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 ciphertext\n")
	s.s("\x16\x03\x03 more ciphertext\n")
	s.conn.(*Conn).entry.SetUser("alice")
	trace := s.transcript()
	if !strings.Contains(trace, "# tls: implicit") {
		t.Errorf("no TLS note in the header:\n%s", trace)
	}
	wantLines(t, trace, "-- user alice")
	noLeak(t, trace, "ciphertext")
}

func TestUnannouncedTLSHandshakeStopsTheTrace(t *testing.T) {
	s := newSession(t, "imap", false, 0)
	s.c("A1 X-STARTTLS\r\n")
	s.s("A1 OK go ahead\r\n")
	s.c("\x16\x03\x01\x00\x05 ciphertext\r\n")
	s.s("\x16\x03\x03 ciphertext\r\n")
	trace := s.transcript()
	wantLines(t, trace, "C: A1 X-STARTTLS", "S: A1 OK go ahead",
		"-- TLS handshake seen; the encrypted stream is not traced")
	noLeak(t, trace, "ciphertext")
	if !s.conn.(*Conn).entry.Session().TLS {
		t.Error("the registry does not know the session is TLS now")
	}
}

func TestUnfinishedLinesAreNotWritten(t *testing.T) {
	s := newSession(t, "pop3", false, 0)
	s.s("+OK ready\r\n")
	s.c("PASS hunter2-no-newline")
	trace := s.transcript()
	wantLines(t, trace, "S: +OK ready", "-- C: 23 bytes of an unfinished line not shown")
	noLeak(t, trace, "hunter2")
}

func TestFileNamesAreUnique(t *testing.T) {
	dir := t.TempDir()
	now := func() time.Time { return testStart }
	var names []string
	for range 2 {
		// Two registries restart IDs at 1: the same name, one millisecond.
		l := NewListener(&oneConnListener{c: &scriptConn{}}, "imap", false,
			Options{Dir: dir, Sessions: sessions.NewRegistry(), Now: now})
		c := must(l.Accept())
		names = append(names, c.(*Conn).TraceName())
		c.Close()
	}
	if names[0] != "20261122T064001.123Z-imap-1.log" || names[1] != "20261122T064001.123Z-imap-1-2.log" {
		t.Errorf("names %q", names)
	}
	for _, n := range names {
		if !ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
		// Transcripts hold mail: only the server's user may read them.
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", n, fi.Mode().Perm())
		}
	}
}

func TestListAndOpen(t *testing.T) {
	dir := t.TempDir()
	reg := sessions.NewRegistry()
	now := testStart
	opts := Options{Dir: dir, Sessions: reg, Now: func() time.Time { now = now.Add(time.Second); return now }}
	open := func(protocol string) net.Conn {
		return must(NewListener(&oneConnListener{c: &scriptConn{}}, protocol, false, opts).Accept())
	}
	first := open("pop3")
	sessions.Of(first).SetUser("alice@example.org")
	first.Close()
	second := open("imap") // still open
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a trace"), 0o600)

	list, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("List: %+v", list)
	}
	newest, oldest := list[0], list[1]
	if newest.Name != second.(*Conn).TraceName() || newest.Protocol != "imap" || newest.User != "" ||
		!newest.End.IsZero() || newest.Session != "2" {
		t.Errorf("newest: %+v", newest)
	}
	if oldest.Protocol != "pop3" || oldest.User != "alice@example.org" || oldest.Remote != "127.0.0.1:50312" ||
		!oldest.Start.Equal(testStart.Add(time.Second)) || oldest.End.IsZero() || oldest.Size == 0 {
		t.Errorf("oldest: %+v", oldest)
	}

	f, err := Open(dir, oldest.Name)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(f)
	f.Close()
	if !strings.Contains(buf.String(), "-- user alice@example.org") {
		t.Errorf("Open read %q", buf.String())
	}
	for _, bad := range []string{"../" + oldest.Name, "/etc/passwd", "..", "notes.txt", "",
		"20261122T064001.123Z-imap-9.log" /* valid, absent */} {
		if f, err := Open(dir, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%q) = %v, %v; want ErrNotFound", bad, f, err)
		}
	}
}

func sessionsEntry(s *session) *sessions.Entry { return sessions.Of(s.conn) }
