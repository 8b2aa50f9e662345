package pop3

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// --- an in-memory session for pure protocol tests and fuzzing ---

// scriptConn is a net.Conn that reads a fixed script and records what is written.
type scriptConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *scriptConn) Close() error                { return nil }
func (c *scriptConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110} }
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// memStore is a fake mail store with one INBOX; its commits fail (nothing here may
// pretend to have deleted anything).
type memStore struct {
	msgs []string // UID i+1
}

func (m *memStore) MailboxByName(context.Context, int64, string) (store.Mailbox, error) {
	return store.Mailbox{ID: 1, Name: "INBOX", UIDValidity: 0x6b025f75, UIDNext: uint32(len(m.msgs) + 1)}, nil
}

func (m *memStore) Messages(context.Context, int64, ...store.UIDRange) ([]store.Message, error) {
	out := make([]store.Message, len(m.msgs))
	for i, msg := range m.msgs {
		out[i] = store.Message{ID: int64(i + 1), MailboxID: 1, UID: uint32(i + 1), Size: int64(len(msg))}
	}
	return out, nil
}

func (m *memStore) OpenMessage(_ context.Context, _ int64, uid uint32) (store.Body, error) {
	if uid == 0 || int(uid) > len(m.msgs) {
		return nil, store.ErrNoSuchMessage
	}
	return memBody{bytes.NewReader([]byte(m.msgs[uid-1]))}, nil
}

func (m *memStore) CommitMaildrop(context.Context, int64, store.MaildropCommit) error {
	return errors.New("memStore: read-only")
}

func (m *memStore) LockMaildrop(context.Context, int64) (func(), error) { return func() {}, nil }

type memBody struct{ *bytes.Reader }

func (memBody) Close() error { return nil }

// memAccounts knows one user "u" with password "p".
type memAccounts struct{}

func (memAccounts) Authenticate(_ context.Context, address, password string) (store.Account, error) {
	if address == "u" && password == "p" {
		return store.Account{ID: 1, Address: "u"}, nil
	}
	return store.Account{}, store.ErrAuthFailed
}

// panicWatch is a slog handler that remembers whether a session panicked.
type panicWatch struct{ panicked atomic.Bool }

func (h *panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.panicked.Store(true)
	}
	return nil
}
func (h *panicWatch) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicWatch) WithGroup(string) slog.Handler      { return h }

// runScript runs one session over script on the in-memory store and returns all the
// server wrote. It fails the test if the session panicked.
func runScript(t testing.TB, script string, mods ...func(*Options)) string {
	t.Helper()
	watch := &panicWatch{}
	opts := DefaultOptions()
	opts.Logger = slog.New(watch)
	opts.Auth = &auth.Authenticator{Store: memAccounts{}}
	for _, m := range mods {
		m(&opts)
	}
	ms := &memStore{msgs: []string{
		"Subject: one\r\n\r\nfirst\r\n.dot line\r\n",
		"Subject: two\r\n\r\nsecond\r\n",
	}}
	srv := newServer(ms, opts)
	srv.lockWait = 0
	conn := &scriptConn{in: bytes.NewReader([]byte(script))}
	newSession(srv, conn).serve()
	if watch.panicked.Load() {
		t.Fatalf("session panicked on %q", script)
	}
	return conn.out.String()
}

// replies splits server output into lines without CRLF.
func replies(out string) []string {
	return strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
}

// --- pure tests ---

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct{ line, name, arg string }{
		{"STAT", "STAT", ""},
		{"stat", "STAT", ""},
		{"Retr 1", "RETR", "1"},
		{"PASS a b  c ", "PASS", "a b  c "},
		{"TOP 1 2", "TOP", "1 2"},
		{"", "", ""},
		{" STAT", "?", ""},
		{"ST\x00T", "?", ""},
		{"FROBNICATE", "?", ""},
		{"\xff\xfe", "?", ""},
	} {
		name, arg := splitCommand([]byte(tc.line))
		if name != tc.name || arg != tc.arg {
			t.Errorf("splitCommand(%q) = %q, %q; want %q, %q", tc.line, name, arg, tc.name, tc.arg)
		}
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 10<<10)
	in := "STAT\r\nbare lf\n" + long + "\r\nNOOP\r\n" + strings.Repeat("y", 1024) + "\r\n" + "partial"
	r := bufio.NewReaderSize(strings.NewReader(in), 64)
	want := []struct {
		line string
		err  error
	}{
		{"STAT", nil},
		{"bare lf", nil},
		{"", errLineTooLong},
		{"NOOP", nil},
		{strings.Repeat("y", 1024), nil},
		{"", io.EOF},
	}
	for i, w := range want {
		got, err := readLine(r, 1024)
		if !errors.Is(err, w.err) || string(got) != w.line {
			t.Errorf("line %d: got %.20q, %v; want %.20q, %v", i, got, err, w.line, w.err)
		}
	}
	// Exactly one octet too many is too long, with CRLF or with a bare LF.
	for _, in := range []string{strings.Repeat("z", 11) + "\r\n", strings.Repeat("z", 11) + "\n"} {
		if _, err := readLine(bufio.NewReaderSize(strings.NewReader(in), 16), 10); !errors.Is(err, errLineTooLong) {
			t.Errorf("readLine(%q, 10): %v, want errLineTooLong", in, err)
		}
	}
}

// TestReadLineBounded checks that an overlong line is skipped without being gathered:
// a reader that would hand out megabytes is consumed through a small buffer.
func TestReadLineBounded(t *testing.T) {
	src := io.MultiReader(io.LimitReader(infiniteX{}, 8<<20), strings.NewReader("\r\nQUIT\r\n"))
	r := bufio.NewReaderSize(src, readBufferSize)
	if _, err := readLine(r, maxCommandLine); !errors.Is(err, errLineTooLong) {
		t.Fatalf("8 MB line: %v, want errLineTooLong", err)
	}
	if line, err := readLine(r, maxCommandLine); err != nil || string(line) != "QUIT" {
		t.Fatalf("after the long line: %q, %v; want QUIT", line, err)
	}
}

type infiniteX struct{}

func (infiniteX) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestCommandTableStates(t *testing.T) {
	auth := []string{"USER", "PASS", "AUTH", "APOP", "STLS", "UTF8"}
	trans := []string{"STAT", "LIST", "RETR", "TOP", "DELE", "NOOP", "RSET", "UIDL"}
	both := []string{"CAPA", "QUIT"}
	for _, n := range auth {
		if commands[n].states != stateAuthorization {
			t.Errorf("%s: states %v, want AUTHORIZATION only", n, commands[n].states)
		}
	}
	for _, n := range trans {
		if commands[n].states != stateTransaction {
			t.Errorf("%s: states %v, want TRANSACTION only", n, commands[n].states)
		}
	}
	for _, n := range both {
		if commands[n].states != stateAuthorization|stateTransaction {
			t.Errorf("%s: states %v, want both", n, commands[n].states)
		}
	}
	if len(commands) != len(auth)+len(trans)+len(both) {
		t.Errorf("the table has %d commands, want %d", len(commands), len(auth)+len(trans)+len(both))
	}
}

// --- in-memory sessions ---

func TestScriptWrongStateAndUnknown(t *testing.T) {
	out := replies(runScript(t, "STAT\r\nRETR 1\r\nfrobnicate\r\n\r\nQUIT\r\n"))
	want := []string{"+OK", "-ERR", "-ERR", "-ERR", "-ERR", "+OK"}
	if len(out) != len(want) {
		t.Fatalf("replies %q, want %d lines", out, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(out[i], w) {
			t.Errorf("reply %d: %q, want %s", i, out[i], w)
		}
	}
}

func TestScriptTooManyBadCommandsBeforeLogin(t *testing.T) {
	out := replies(runScript(t, strings.Repeat("XYZZY\r\n", 50)))
	// The greeting, maxBadBeforeLogin refusals and the closing line; the rest is unread.
	if len(out) != 1+maxBadBeforeLogin+1 || !strings.Contains(out[len(out)-1], "too many bad commands") {
		t.Errorf("got %d lines ending %q, want the session closed after %d bad commands",
			len(out), out[len(out)-1], maxBadBeforeLogin)
	}
}

func TestScriptBadArgumentsAfterLogin(t *testing.T) {
	script := "USER u\r\nPASS p\r\n" +
		"RETR 0\r\nRETR 99999\r\nRETR abc\r\nRETR\r\nDELE 0\r\nTOP 1\r\nLIST 999\r\nFROBNICATE\r\n" +
		"RETR -1\r\nRETR +1\r\nTOP 1 x\r\nLIST 1 2\r\nSTAT x\r\nUIDL 0\r\nUSER u\r\n" +
		"NOOP\r\nSTAT\r\n"
	out := replies(runScript(t, script))
	if len(out) != 3+15+2 {
		t.Fatalf("got %d replies, want %d:\n%s", len(out), 3+15+2, strings.Join(out, "\n"))
	}
	for i, l := range out[3:18] {
		if !strings.HasPrefix(l, "-ERR") {
			t.Errorf("bad command %d: %q, want -ERR", i, l)
		}
	}
	if out[18] != "+OK" || out[19] != "+OK 2 58" {
		t.Errorf("after the bad commands: %q, %q; want +OK and +OK 2 58", out[18], out[19])
	}
}

func TestScriptBinaryGarbage(t *testing.T) {
	junk := make([]byte, 200)
	rand.New(rand.NewSource(1939)).Read(junk)
	out := runScript(t, string(junk)+"\r\nCAPA\r\n")
	lines := replies(out)
	if !strings.HasPrefix(lines[0], "+OK") {
		t.Fatalf("greeting %q", lines[0])
	}
	var capa bool
	for _, l := range lines[1:] {
		if l == "+OK Capability list follows" {
			capa = true
			break
		}
		if !strings.HasPrefix(l, "-ERR") {
			t.Errorf("garbage answered with %q, want -ERR", l)
		}
	}
	if !capa {
		t.Errorf("CAPA after the garbage was not answered:\n%s", out)
	}
}

func TestScriptLongLine(t *testing.T) {
	out := replies(runScript(t, "USER "+strings.Repeat("x", 100<<10)+"\r\nCAPA\r\n"))
	if out[1] != "-ERR line too long" || !strings.HasPrefix(out[2], "+OK") {
		t.Errorf("replies %q, want -ERR line too long then +OK for CAPA", out[:3])
	}
}

// --- over the network, on the real store ---

func TestWrongState(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	c.err("STAT")
	c.err("RETR 1")
	c.err("PASS " + testPassword) // before USER
	c.ok("USER " + testUser)
	c.ok("PASS " + testPassword)
	c.err("USER " + testUser)
	c.err("PASS x")
	c.err("STLS")
	c.err("UTF8")
	c.err("AUTH PLAIN")
	if got := c.ok("STAT"); got != "+OK 0 0" {
		t.Errorf("STAT = %q, want +OK 0 0", got)
	}
}

func TestCommandsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("case", "body\r\n"))
	c := e.dial()
	c.ok("user " + testUser)
	c.ok("pAsS " + testPassword)
	if got := c.ok("stat"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Errorf("stat = %q", got)
	}
	c.multi("uidl")
	c.ok("quit")
}

func TestManyBadCommandsAfterLogin(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("keep", "x\r\n"))
	c := e.login()
	for range maxBadAfterLogin - 1 {
		c.err("RETR 0")
	}
	c.ok("NOOP") // resets the count
	for range maxBadAfterLogin - 1 {
		c.err("FROBNICATE")
	}
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Errorf("STAT = %q", got)
	}
	for range maxBadAfterLogin {
		c.send("BOGUS")
	}
	for range maxBadAfterLogin {
		c.line()
	}
	if l := c.line(); !strings.Contains(l, "too many bad commands") {
		t.Errorf("after %d bad commands: %q, want the closing line", maxBadAfterLogin, l)
	}
	if !c.closed() {
		t.Error("connection still open")
	}
}

func TestPipelining(t *testing.T) {
	e := newEnv(t)
	msgs := []string{plainMessage("piped one", "1\r\n"), plainMessage("piped two", ".2\r\n")}
	for _, m := range msgs {
		e.deliver(m)
	}
	c := e.dial()
	// RFC 2449 §6.6: everything in one write; replies in order.
	script := "USER " + testUser + "\r\nPASS " + testPassword + "\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 2\r\nNOOP\r\nQUIT\r\n"
	if _, err := c.conn.Write([]byte(script)); err != nil {
		t.Fatal(err)
	}
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("USER: %q", l)
	}
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("PASS: %q", l)
	}
	if l := c.line(); !strings.HasPrefix(l, "+OK 2 ") {
		t.Fatalf("STAT: %q", l)
	}
	for _, name := range []string{"LIST", "UIDL"} {
		if l := c.line(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("%s: %q", name, l)
		}
		if lines := strings.Count(string(c.body()), "\r\n"); lines != 2 {
			t.Errorf("%s: %d entries, want 2", name, lines)
		}
	}
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("RETR: %q", l)
	}
	if got := string(c.body()); got != msgs[1] {
		t.Errorf("RETR 2 = %q, want %q", got, msgs[1])
	}
	for _, name := range []string{"NOOP", "QUIT"} {
		if l := c.line(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("%s: %q", name, l)
		}
	}
}

// TestReplyNotHeldForPartialLine: a reply is not held back behind a command the client
// has only begun to send.
func TestReplyNotHeldForPartialLine(t *testing.T) {
	e := newEnv(t)
	c := e.login()
	if _, err := c.conn.Write([]byte("STAT\r\nNO")); err != nil {
		t.Fatal(err)
	}
	if l := c.line(); l != "+OK 0 0" {
		t.Errorf("STAT = %q", l)
	}
	if l := c.cmd("OP"); l != "+OK" {
		t.Errorf("NOOP = %q", l)
	}
}

func TestScriptTooManyLongLines(t *testing.T) {
	out := replies(runScript(t, strings.Repeat(strings.Repeat("L", 2000)+"\r\n", 30)))
	if len(out) != 1+maxBadBeforeLogin+1 || !strings.Contains(out[len(out)-1], "too many bad commands") {
		t.Errorf("got %d lines ending %q, want the session closed after %d long lines",
			len(out), out[len(out)-1], maxBadBeforeLogin)
	}
}

func TestLongLineAndGarbageKeepSessionAndMail(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("kept", "still here\r\n"))
	c := e.dial()
	c.send("USER " + strings.Repeat("x", 10<<10))
	if l := c.line(); l != "-ERR line too long" {
		t.Errorf("10 KB line: %q", l)
	}
	// A 100 KB line and a few kilobytes with no line end at all yet.
	c.send("PASS " + strings.Repeat("y", 100<<10))
	if l := c.line(); l != "-ERR line too long" {
		t.Errorf("100 KB line: %q", l)
	}
	junk := make([]byte, 200)
	rand.New(rand.NewSource(1939)).Read(junk)
	junk = bytes.ReplaceAll(junk, []byte("\n"), []byte("n"))
	c.send(string(junk))
	if l := c.line(); !strings.HasPrefix(l, "-ERR") {
		t.Errorf("garbage: %q", l)
	}
	c.ok("USER " + testUser)
	c.ok("PASS " + testPassword)
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Errorf("STAT after the bad input: %q", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, withOptions(func(o *Options) { o.IdleTimeout = 250 * time.Millisecond }))
	e.deliver(plainMessage("idle", "x\r\n"))
	c := e.login()
	c.ok("DELE 1")
	// Say nothing: the autologout timer (RFC 1939 §3) closes the session without UPDATE.
	if l := c.line(); !strings.Contains(l, "autologout") {
		t.Errorf("after idling: %q, want the autologout line", l)
	}
	if !c.closed() {
		t.Error("connection still open after the idle timeout")
	}
	if n := len(e.inbox()); n != 1 {
		t.Errorf("INBOX has %d messages after a timed-out session, want 1", n)
	}
	// The maildrop is free again.
	c2 := e.login()
	c2.ok("QUIT")
}

func TestShutdownDuringSession(t *testing.T) {
	st := openStore(t)
	e := newEnvWith(t, st, st)
	e.deliver(plainMessage("survivor", "x\r\n"))
	c := e.login()
	c.ok("DELE 1")
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-e.served; err != nil {
		t.Errorf("Serve after Shutdown: %v, want nil", err)
	}
	e.served <- nil // for the cleanup
	if l := c.line(); !strings.HasPrefix(l, "-ERR") {
		t.Errorf("goodbye line %q, want -ERR", l)
	}
	if !c.closed() {
		t.Error("session still open after Shutdown")
	}
	if n := len(e.inbox()); n != 1 {
		t.Errorf("INBOX has %d messages after Shutdown, want 1 (no QUIT, no deletion)", n)
	}
	if _, err := net.Dial("tcp", e.addr); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
}

// TestShutdownLetsCommandFinish holds a QUIT in its commit while Shutdown starts: the
// commit finishes and is answered +OK before the session closes.
func TestShutdownLetsCommandFinish(t *testing.T) {
	st := openStore(t)
	gate := &gatedStore{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnvWith(t, st, gate)
	e.deliver(plainMessage("going", "x\r\n"))
	c := e.login()
	c.ok("DELE 1")
	c.send("QUIT")
	<-gate.entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		shut <- e.srv.Shutdown(ctx)
	}()
	// Let Shutdown begin while the commit is held, then let the commit go.
	waitFor(t, e.srv.sessions.Closing)
	close(gate.release)
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Errorf("QUIT during Shutdown: %q, want +OK", l)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := len(e.inbox()); n != 0 {
		t.Errorf("INBOX has %d messages, want 0 (the QUIT committed)", n)
	}
}

type gatedStore struct {
	*store.Store
	entered, release chan struct{}
}

func (g *gatedStore) CommitMaildrop(ctx context.Context, mailboxID int64, c store.MaildropCommit) error {
	close(g.entered)
	<-g.release
	return g.Store.CommitMaildrop(ctx, mailboxID, c)
}

func TestPanicIsRecoveredPerConnection(t *testing.T) {
	commands["XPANIC"] = command{func(*session, string) error { panic("boom") }, stateAuthorization}
	defer delete(commands, "XPANIC")
	e := newEnv(t)
	other := e.dial()
	c := e.dial()
	c.send("XPANIC")
	if !c.closed() {
		t.Error("the panicking connection stayed open")
	}
	other.ok("CAPA")
	other.body()
	if !strings.Contains(e.logs.String(), "pop3 session panic") {
		t.Error("the panic was not logged")
	}
	// The cleanup checks for panics in the log; this one was intended. Its "disconnect
	// reason=panic" line comes just after the connection closes: wait for it, or it would
	// land after the reset.
	for i := 0; i < 1000 && !strings.Contains(e.logs.String(), "reason=panic"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	e.logs.mu.Lock()
	e.logs.b.Reset()
	e.logs.mu.Unlock()
}
