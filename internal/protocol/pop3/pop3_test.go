package pop3

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// --- a real server over loopback, on a real store ---

const (
	testUser     = "alice@example.com"
	testPassword = "correct horse"
	// ioTimeout only keeps a broken test from hanging; no test asserts on time.
	ioTimeout = 20 * time.Second
)

type env struct {
	t      *testing.T
	st     *store.Store
	srv    *Server
	addr   string
	acct   store.Account
	logs   *logBuffer
	served chan error
}

type envOption func(*Options, *auth.PlaintextPolicy)

// newEnv starts a server on a fresh store with one account (testUser). Options start
// from DefaultOptions; mods adjust them.
func newEnv(t *testing.T, mods ...envOption) *env {
	t.Helper()
	st := openStore(t)
	return newEnvWith(t, st, st, mods...)
}

// newEnvWith starts a server whose mail store is ms (st itself, or a wrapper of it).
func newEnvWith(t *testing.T, st *store.Store, ms mailStore, mods ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	acct, err := st.CreateAccount(ctx, store.NewAccount{Address: testUser, Password: testPassword})
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	e := &env{t: t, st: st, acct: acct, logs: &logBuffer{}, served: make(chan error, 1)}
	opts := DefaultOptions()
	opts.Hostname = "pop.test"
	opts.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	policy := auth.PlaintextPolicy{}
	for _, m := range mods {
		m(&opts, &policy)
	}
	opts.Auth = &auth.Authenticator{Store: st, Plaintext: policy}
	e.srv = newServer(ms, opts)
	e.srv.lockWait = 50 * time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	go func() { e.served <- e.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-e.served; err != nil {
			t.Errorf("Serve returned %v after Shutdown, want nil", err)
		}
		if strings.Contains(e.logs.String(), "panic") {
			t.Errorf("a session panicked:\n%s", e.logs.String())
		}
	})
	return e
}

// openStore opens a real store in a temporary directory; a store that cannot be opened
// fails the test.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Logger: slog.New(slog.DiscardHandler), URL: storetest.URL(t, dir)})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func withOptions(f func(*Options)) envOption {
	return func(o *Options, _ *auth.PlaintextPolicy) { f(o) }
}

// noPlaintext refuses plaintext credentials even on loopback (auth.allow_plaintext: false).
func noPlaintext(_ *Options, p *auth.PlaintextPolicy) { p.Never = true }

// deliver stores msg in the test account's INBOX.
func (e *env) deliver(msg string) store.Delivered {
	e.t.Helper()
	d, err := e.st.Deliver(context.Background(), e.acct.ID, strings.NewReader(msg), store.DeliverOptions{})
	if err != nil {
		e.t.Fatalf("Deliver: %v", err)
	}
	return d
}

// inbox lists what the store holds in INBOX now.
func (e *env) inbox() []store.Message {
	e.t.Helper()
	ctx := context.Background()
	mb, err := e.st.MailboxByName(ctx, e.acct.ID, "INBOX")
	if err != nil {
		e.t.Fatal(err)
	}
	msgs, err := e.st.Messages(ctx, mb.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return msgs
}

func (e *env) inboxID() int64 {
	e.t.Helper()
	mb, err := e.st.MailboxByName(context.Background(), e.acct.ID, "INBOX")
	if err != nil {
		e.t.Fatal(err)
	}
	return mb.ID
}

// dial connects and reads the greeting.
func (e *env) dial() *client {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &client{t: e.t, conn: conn, r: bufio.NewReader(conn)}
	e.t.Cleanup(func() { conn.Close() })
	if g := c.line(); !strings.HasPrefix(g, "+OK") {
		e.t.Fatalf("greeting %q, want +OK", g)
	}
	return c
}

// login dials and logs in as the test user.
func (e *env) login() *client {
	e.t.Helper()
	c := e.dial()
	c.ok("USER " + testUser)
	c.ok("PASS " + testPassword)
	return c
}

// --- a small line-based POP3 client ---

type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (c *client) send(line string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// line reads one line without its CRLF.
func (c *client) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line)
	return c.line()
}

func (c *client) ok(line string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("%q: got %q, want +OK", line, r)
	}
	return r
}

func (c *client) err(line string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, "-ERR") {
		c.t.Fatalf("%q: got %q, want -ERR", line, r)
	}
	return r
}

// body reads a multi-line body up to its "." line and undoes the dot-stuffing; it
// returns the octets as sent (each line with its CRLF).
func (c *client) body() []byte {
	c.t.Helper()
	var b bytes.Buffer
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		l, err := c.r.ReadBytes('\n')
		if err != nil {
			c.t.Fatalf("read body: %v", err)
		}
		if !bytes.HasSuffix(l, []byte("\r\n")) {
			c.t.Fatalf("body line %q does not end in CRLF", l)
		}
		if string(l) == ".\r\n" {
			return b.Bytes()
		}
		if l[0] == '.' {
			if len(l) < 2 || l[1] != '.' {
				c.t.Fatalf("body line %q starts with a dot that is not stuffed", l)
			}
			l = l[1:]
		}
		b.Write(l)
	}
}

// multi sends a command that must answer +OK with a multi-line body.
func (c *client) multi(line string) (status string, lines []string) {
	c.t.Helper()
	status = c.ok(line)
	for _, l := range strings.SplitAfter(string(c.body()), "\r\n") {
		if l != "" {
			lines = append(lines, strings.TrimSuffix(l, "\r\n"))
		}
	}
	return status, lines
}

func (c *client) retr(n int) []byte {
	c.t.Helper()
	c.ok(fmt.Sprintf("RETR %d", n))
	return c.body()
}

// closed reports whether the server closed the connection (after any pending lines).
func (c *client) closed() bool {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		if _, err := c.r.ReadString('\n'); err != nil {
			return !errors.Is(err, os.ErrDeadlineExceeded)
		}
	}
}

// --- logs ---

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

// --- messages ---

func plainMessage(subject, body string) string {
	return "From: Bob <bob@example.org>\r\n" +
		"To: Alice <alice@example.com>\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.org>\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"\r\n" + body
}

// --- tests of the server as a whole ---

func TestGreeting(t *testing.T) {
	e := newEnv(t)
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	g := c.line()
	if !strings.HasPrefix(g, "+OK Letterbox POP3 server ready") || !strings.Contains(g, "pop.test") {
		t.Errorf("greeting %q, want +OK Letterbox POP3 server ready ... pop.test", g)
	}
	// No APOP timestamp (RFC 1939 §7): APOP is not offered.
	if strings.ContainsAny(g, "<>") {
		t.Errorf("greeting %q carries an APOP timestamp", g)
	}
	if !strings.Contains(e.logs.String(), "pop3 connect") {
		t.Errorf("no connect log line")
	}
}

func TestOptionsValidate(t *testing.T) {
	good := DefaultOptions()
	good.Auth = &auth.Authenticator{}
	if err := good.Validate(); err != nil {
		t.Fatalf("DefaultOptions: %v", err)
	}
	for name, mod := range map[string]func(*Options){
		"no auth":          func(o *Options) { o.Auth = nil },
		"uidl variable":    func(o *Options) { o.UIDLFormat = "%m" },
		"uidl without %u":  func(o *Options) { o.UIDLFormat = "%08Xv" },
		"uidl truncated":   func(o *Options) { o.UIDLFormat = "%2u" },
		"uidl space":       func(o *Options) { o.UIDLFormat = "%u %v" },
		"uidl too long":    func(o *Options) { o.UIDLFormat = "%070u%v" },
		"delete mode":      func(o *Options) { o.DeleteMode = "shred" },
		"expire":           func(o *Options) { o.Expire = "soon" },
		"negative expire":  func(o *Options) { o.Expire = "-1" },
		"negative timeout": func(o *Options) { o.IdleTimeout = -time.Second },
	} {
		o := good
		mod(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, o)
		}
	}
	o := good
	o.Expire, o.DeleteMode, o.UIDLFormat = "30", maildrop.DeleteHide, "%u-%v"
	if err := o.Validate(); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

func TestServeRefusesInvalidOptions(t *testing.T) {
	srv := newServer(nil, Options{Auth: &auth.Authenticator{}, UIDLFormat: "%q"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := srv.Serve(l); err == nil || !strings.Contains(err.Error(), "uidl_format") {
		t.Errorf("Serve with a bad UIDL format: %v, want an error naming pop3.uidl_format", err)
	}
}

func TestLoginLogsNoPassword(t *testing.T) {
	e := newEnv(t)
	c := e.login()
	c.ok("QUIT")
	c.closed()
	bad := e.dial()
	bad.ok("USER " + testUser)
	bad.err("PASS wrong-" + testPassword)
	bad.ok("QUIT")
	bad.closed()
	waitFor(t, func() bool { return strings.Count(e.logs.String(), "pop3 disconnect") >= 1 })
	logs := e.logs.String()
	if strings.Contains(logs, testPassword) {
		t.Errorf("a password reached the log:\n%s", logs)
	}
	for _, want := range []string{"pop3 login", "pop3 logout", "user=" + testUser, "retrieved=", "bytes="} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// waitFor polls cond; it only guards against a session that has not finished its
// cleanup yet, and fails (rather than asserting on time) if that never happens.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never became true")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
