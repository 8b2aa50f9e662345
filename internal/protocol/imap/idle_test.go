package imap

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/protocol/pop3"
	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

func TestIdleWithoutMailbox(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	c.send("I1 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	c.send("DONE")
	if l := c.line(); !strings.HasPrefix(l, "I1 OK") {
		t.Fatalf("DONE: %q", l)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *mailStore) { o.IdleTimeout = 50 * time.Millisecond })
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	c.send("I1 IDLE")
	c.waitFor(`^\* BYE`)
}

// A message stored by another process (`letterbox deliver` beside `serve`): another Store
// on the same directory. It reaches IDLE through the store's cross-process watcher.
func TestIdleHearsOtherProcess(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Logger: slog.New(slog.DiscardHandler), URL: storetest.URL(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acct, err := st.CreateAccount(context.Background(), store.NewAccount{Address: testUser, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(st, Options{Auth: &auth.Authenticator{Store: st}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	e := &testEnv{t: t, st: st, srv: srv, addr: ln.Addr().String(), acct: acct}
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	c.send("I1 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}

	// On PostgreSQL (LETTERBOX_TEST_STORE=postgres) the other process is another node.
	other, err := store.Open(filepath.Clean(dir), store.Options{Logger: slog.New(slog.DiscardHandler), URL: storetest.URL(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Deliver(context.Background(), acct.ID, strings.NewReader(plainMessage("From afar", "x\r\n")), store.DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitFor(`^\* 1 EXISTS$`)
	c.send("DONE")
	c.waitFor(`^I1 OK`)
}

// pop3Client is just enough POP3 for the cross-protocol test.
type pop3Client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (p *pop3Client) cmd(line string) string {
	p.t.Helper()
	p.c.SetDeadline(time.Now().Add(ioGuard))
	fmt.Fprintf(p.c, "%s\r\n", line)
	l, err := p.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(l, "+OK") {
		p.t.Fatalf("POP3 %s: %q %v", line, l, err)
	}
	return l
}

func (p *pop3Client) multiline(line string) {
	p.t.Helper()
	p.cmd(line)
	for {
		l, err := p.br.ReadString('\n')
		if err != nil {
			p.t.Fatal(err)
		}
		if l == ".\r\n" {
			return
		}
	}
}

// Two IMAP sessions and one POP3 session on one mailbox: POP3 RETR shows up as \Seen,
// POP3 DELE and QUIT as EXPUNGE (IDLE included), an IMAP expunge as a smaller POP3 drop
// at the next login.
func TestIMAPAndPOP3OnOneMailbox(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.deliver("INBOX", plainMessage(fmt.Sprintf("Message %d", i), "x\r\n"))
	}
	ps := pop3.NewServer(e.st, pop3.Options{Auth: &auth.Authenticator{Store: e.st}, MarkSeen: true})
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ps.Serve(pln)
	defer ps.Shutdown(context.Background())
	dialPOP3 := func() *pop3Client {
		conn, err := net.Dial("tcp", pln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		p := &pop3Client{t: t, c: conn, br: bufio.NewReader(conn)}
		if l, _ := p.br.ReadString('\n'); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 greeting %q", l)
		}
		p.cmd("USER " + testUser)
		p.cmd("PASS " + testPassword)
		return p
	}

	idle, other := e.rawLogin(), e.rawLogin()
	idle.ok("SELECT INBOX")
	other.ok("SELECT INBOX")
	idle.send("I1 IDLE")
	if l := idle.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}

	p := dialPOP3()
	p.multiline("RETR 3")
	p.cmd("DELE 2")
	p.cmd("QUIT")
	p.c.Close()

	idle.waitFor(`^\* 2 EXPUNGE$`)
	idle.waitFor(`^\* 2 FETCH \(UID 3 FLAGS \(\\Recent \\Seen\)\)$`) // idle selected first: \Recent is its
	idle.send("DONE")
	idle.waitFor(`^I1 OK`)

	got := other.ok("NOOP")
	if len(grep(got, `^\* 2 EXPUNGE$`)) != 1 || len(grep(got, `^\* 2 FETCH \(UID 3 FLAGS \(\\Seen\)\)$`)) != 1 {
		t.Errorf("second IMAP session after POP3 QUIT: %q", got)
	}

	// An IMAP expunge: the next POP3 session has one message fewer.
	other.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	other.ok("EXPUNGE")
	if got := grep(idle.ok("NOOP"), "EXPUNGE"); len(got) != 1 || got[0] != "* 1 EXPUNGE" {
		t.Errorf("IDLE session after the other's EXPUNGE: %q", got)
	}
	p = dialPOP3()
	if stat := p.cmd("STAT"); !strings.HasPrefix(stat, "+OK 1 ") {
		t.Errorf("POP3 STAT after IMAP EXPUNGE: %q", stat)
	}
	p.cmd("QUIT")
}

// Many sessions of one account in IDLE share the reads that follow a delivery: each is told
// of every message, also when deliveries follow each other while they are being told, and
// one that left IDLE and polls sees what the others were told.
func TestIdleManySessionsShareReads(t *testing.T) {
	e := newEnv(t)
	const sessions = 30
	var idlers []*rawClient
	for range sessions {
		c := e.rawLogin()
		c.ok("SELECT INBOX")
		c.send("I1 IDLE")
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("IDLE: %q", l)
		}
		idlers = append(idlers, c)
	}
	for i := 1; i <= 3; i++ {
		e.deliver("INBOX", plainMessage(fmt.Sprint("fan-out ", i), "hello"))
	}
	for _, c := range idlers {
		c.waitFor(`^\* 3 EXISTS$`)
	}
	e.deliver("INBOX", plainMessage("fan-out 4", "hello"))
	for _, c := range idlers {
		c.waitFor(`^\* 4 EXISTS$`)
		c.send("DONE")
		c.waitFor(`^I1 OK`)
	}
	if got := grep(idlers[0].ok("UID SEARCH ALL"), `^\* SEARCH`); fmt.Sprint(got) != "[* SEARCH 1 2 3 4]" {
		t.Errorf("UID SEARCH ALL after IDLE: %q", got)
	}
}

// An idle session holds no read buffer (they go back to readerPool while the session waits
// for its client) and waits on one goroutine only, a fresh one that began at the wait
// (conn.go, park and await): the goroutine that ran its commands, whose stack grew, has
// ended, in IDLE as between commands, compressed or not. No goroutine waits for the store's
// wake-ups (store.WatchFunc), and those started by a wake-up end once its updates are
// written. Asserted on structure, the pool's count and the goroutines' stacks; the waits
// are hang guards.
func TestIdleSessionWaitsOnAFreshGoroutine(t *testing.T) {
	e := newEnv(t)
	const sessions = 5
	var idlers []*rawClient
	for i := range sessions {
		c := e.rawLogin()
		if i == 0 {
			c.compress() // the wait reads through the inflater
		}
		c.ok("SELECT INBOX")
		c.send("I1 IDLE")
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("IDLE: %q", l)
		}
		idlers = append(idlers, c)
	}
	// The goroutines with this package's code on their stack: waiting ones (await at the
	// root, nothing of the session's loop, its commands or the accept loop beneath it) and
	// the others.
	goroutines := func() (waiting, other int, stacks string) {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if !strings.Contains(g, "letterbox/internal/protocol/imap.") || strings.Contains(g, "imap.(*Server).Serve(") ||
				strings.Contains(g, "testing.tRunner(") {
				continue
			}
			deep := strings.Contains(g, "imap.(*session).serve(") || strings.Contains(g, "imap.(*session).loop(") ||
				strings.Contains(g, "imap.handleIdle(") || strings.Contains(g, "imap.(*Server).serveConn(")
			if strings.Contains(g, "imap.(*session).await(") && !deep {
				waiting++
			} else {
				other++
				stacks += g + "\n\n"
			}
		}
		return waiting, other, stacks
	}
	settled := func(what string, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second) // a hang guard, not a timing check
		for {
			waiting, other, stacks := goroutines()
			held := readBuffersHeld.Load()
			if held == 0 && waiting == want && other == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: read buffers held %d, waiting goroutines %d, others %d (want 0, %d, 0):\n%s",
					what, held, waiting, other, want, stacks)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	settled("in IDLE", sessions)

	// A delivery wakes every session, and then they are as idle as before.
	e.deliver("INBOX", plainMessage("wake", "hello"))
	for _, c := range idlers {
		c.waitFor(`^\* 1 EXISTS$`)
	}
	settled("after a wake-up", sessions)

	// DONE and a pipelined command in one packet: the buffer taken for DONE keeps the rest.
	for _, c := range idlers {
		c.send("DONE\r\nN1 NOOP")
		c.waitFor(`^I1 OK`)
		c.waitFor(`^N1 OK`)
	}
	settled("between commands", sessions)

	// Logging out ends the waiting goroutine with the session.
	for _, c := range idlers {
		c.ok("LOGOUT")
	}
	settled("logged out", 0)
}
