package imap

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// A test talks to a real server over loopback, with a real store in a temporary directory.

const (
	testUser     = "alice@example.com"
	testPassword = "correct horse"
	// ioGuard only keeps a broken test from hanging; no test asserts on timing.
	ioGuard = 20 * time.Second
)

type testEnv struct {
	t    *testing.T
	st   *store.Store
	srv  *Server
	addr string
	acct store.Account
	logs *logBuffer
	dir  string // the store's directory (newEnv's)
}

type envOption func(*Options, *mailStore)

func newEnv(t *testing.T, options ...envOption) *testEnv {
	t.Helper()
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Logger: logger, URL: storetest.URL(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := st.CreateAccount(context.Background(), store.NewAccount{Address: testUser, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Logger: logger,
		Auth:   &auth.Authenticator{Store: st},
	}
	var ms mailStore = st
	for _, o := range options {
		o(&opts, &ms)
	}
	srv := newServer(ms, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	e := &testEnv{t: t, st: st, srv: srv, addr: ln.Addr().String(), acct: acct, logs: logs, dir: dir}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioGuard)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		st.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return e
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// deliver stores a message as LMTP would.
func (e *testEnv) deliver(mailbox, raw string, flags ...string) store.Delivered {
	e.t.Helper()
	d, err := e.st.Deliver(context.Background(), e.acct.ID, strings.NewReader(raw),
		store.DeliverOptions{Mailbox: mailbox, Flags: flags})
	if err != nil {
		e.t.Fatalf("deliver: %v", err)
	}
	return d
}

func (e *testEnv) mailbox(name string) store.Mailbox {
	e.t.Helper()
	m, err := e.st.MailboxByName(context.Background(), e.acct.ID, name)
	if err != nil {
		e.t.Fatalf("mailbox %s: %v", name, err)
	}
	return m
}

// clientNoLogin returns an imapclient that has not logged in.
func (e *testEnv) clientNoLogin() *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.addr, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// client returns a logged-in imapclient.
func (e *testEnv) client() *imapclient.Client {
	e.t.Helper()
	c := e.clientNoLogin()
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		e.t.Fatalf("LOGIN: %v", err)
	}
	return c
}

// rawClient speaks IMAP line by line, for exact checks of what the server sends.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	tags int
}

func (e *testEnv) raw() *rawClient {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &rawClient{t: e.t, conn: conn, br: bufio.NewReader(conn)}
	e.t.Cleanup(func() { conn.Close() })
	if g := c.line(); !strings.HasPrefix(g, "* OK") {
		e.t.Fatalf("greeting %q", g)
	}
	return c
}

// rawLogin returns a raw client, logged in.
func (e *testEnv) rawLogin() *rawClient {
	c := e.raw()
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	return c
}

func (c *rawClient) send(format string, args ...any) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioGuard))
	if _, err := fmt.Fprintf(c.conn, format+"\r\n", args...); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

var literalAtEnd = regexp.MustCompile(`~?\{(\d+)\}\r\n$`)

// line reads one response line, with any literals it announces inlined.
func (c *rawClient) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioGuard))
	var out strings.Builder
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (so far %q)", err, out.String()+l)
		}
		out.WriteString(l)
		m := literalAtEnd.FindStringSubmatch(l)
		if m == nil {
			return strings.TrimRight(out.String(), "\r\n")
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.br, buf); err != nil {
			c.t.Fatalf("read literal: %v", err)
		}
		out.Write(buf)
	}
}

// cmd sends a command and returns the untagged responses and the tagged status line.
func (c *rawClient) cmd(format string, args ...any) ([]string, string) {
	c.t.Helper()
	c.tags++
	tag := fmt.Sprintf("T%d", c.tags)
	c.send(tag+" "+format, args...)
	var untagged []string
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed.
func (c *rawClient) ok(format string, args ...any) []string {
	c.t.Helper()
	untagged, status := c.cmd(format, args...)
	if !strings.HasPrefix(status, "OK") {
		c.t.Fatalf("%s: %s (untagged %q)", strings.Fields(fmt.Sprintf(format, args...))[0], status, untagged)
	}
	return untagged
}

// waitFor reads responses until one matches re.
func (c *rawClient) waitFor(re string) []string {
	c.t.Helper()
	r := regexp.MustCompile(re)
	for {
		l := c.line()
		if m := r.FindStringSubmatch(l); m != nil {
			return m
		}
	}
}

func grep(lines []string, re string) []string {
	r := regexp.MustCompile(re)
	var out []string
	for _, l := range lines {
		if r.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// --- test messages ---

func plainMessage(subject, body string) string {
	return "From: Carol Jones <carol@example.net>\r\n" +
		"To: Alice <alice@example.com>\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: Mon, 15 Jan 2024 09:30:00 +0000\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.net>\r\n" +
		"\r\n" + body
}

const pdfBase64 = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==" // "%PDF-1.4\n..."

const multipartMessage = "From: Dave <dave@example.com>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= with attachment\r\n" +
	"Date: Tue, 16 Jan 2024 10:00:00 +0100\r\n" +
	"Message-ID: <multi@example.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--XYZ\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hello, the report is attached.\r\n" +
	"--XYZ\r\n" +
	"Content-Type: application/pdf; name=\"report.pdf\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"Content-Disposition: attachment; filename=\"report.pdf\"\r\n" +
	"\r\n" +
	pdfBase64 + "\r\n" +
	"--XYZ--\r\n"

// panicStore makes Status panic, to show that a panic costs one connection only.
type panicStore struct{ mailStore }

func (panicStore) Status(context.Context, int64) (store.MailboxStatus, error) {
	panic("injected fault")
}

func TestPanicIsContained(t *testing.T) {
	e := newEnv(t, func(_ *Options, ms *mailStore) { *ms = panicStore{*ms} })
	victim, bystander := e.rawLogin(), e.rawLogin()
	bystander.ok("SELECT INBOX")
	victim.send("P1 STATUS INBOX (MESSAGES)")
	// The connection that hit the fault is closed, without an answer.
	victim.conn.SetReadDeadline(time.Now().Add(ioGuard))
	if l, err := victim.br.ReadString('\n'); err == nil {
		t.Errorf("after a panic the connection answered %q", l)
	}
	// Everyone else goes on.
	bystander.ok("NOOP")
	e.rawLogin().ok("SELECT INBOX")
	if !strings.Contains(e.logs.String(), "injected fault") {
		t.Error("the panic was not logged")
	}
}

func TestShutdownSaysByeToIdle(t *testing.T) {
	e := newEnv(t)
	idle, busy := e.rawLogin(), e.rawLogin()
	idle.ok("SELECT INBOX")
	idle.send("I1 IDLE")
	if l := idle.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	busy.ok("SELECT INBOX")
	unauth := e.raw()

	ctx, cancel := context.WithTimeout(context.Background(), ioGuard)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for name, c := range map[string]*rawClient{"idle": idle, "selected": busy, "not authenticated": unauth} {
		if l := c.line(); !strings.HasPrefix(l, "* BYE") {
			t.Errorf("%s session got %q, want BYE", name, l)
		}
	}
	if _, err := net.Dial("tcp", e.addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

func TestHugeLiteralRefused(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	c.send("H1 APPEND INBOX {2147483648}")
	if l := c.line(); !strings.HasPrefix(l, "H1 NO [TOOBIG]") {
		t.Errorf("2 GB literal: %q", l)
	}
	c.ok("NOOP")
	// Non-synchronizing: refused too, and the data that follows is not stored.
	c.send("H2 APPEND INBOX {2147483648+}\r\n%s", strings.Repeat("x", 65536))
	c.waitFor(`^H2 NO`)
	c2 := e.rawLogin()
	if got := grep(c2.ok("SELECT INBOX"), `EXISTS`); len(got) != 1 || got[0] != "* 0 EXISTS" {
		t.Errorf("after refused APPENDs: %q", got)
	}
}

// slowStore holds Status until release is closed, so that a command is in progress when
// the server shuts down.
type slowStore struct {
	mailStore
	entered, release chan struct{}
}

func (s slowStore) Status(ctx context.Context, id int64) (store.MailboxStatus, error) {
	close(s.entered)
	<-s.release
	return s.mailStore.Status(ctx, id)
}

func TestShutdownFinishesRunningCommand(t *testing.T) {
	slow := slowStore{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, func(_ *Options, ms *mailStore) { slow.mailStore = *ms; *ms = slow })
	c := e.rawLogin()
	c.send("S1 STATUS INBOX (MESSAGES)")
	<-slow.entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioGuard)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	close(slow.release)
	want := []string{"* STATUS INBOX (MESSAGES 0)", "S1 OK STATUS completed"}
	for _, w := range want {
		if l := c.line(); l != w {
			t.Fatalf("got %q, want %q", l, w)
		}
	}
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		t.Errorf("after the command: %q, want BYE", l)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
