package lmtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

const testMessage = "From: Alice <alice@example.org>\r\n" +
	"To: Bob <bob@example.com>\r\n" +
	"Subject: Weekly status report\r\n" +
	"Date: Mon, 15 Jan 2024 09:30:00 +0000\r\n" +
	"Message-ID: <1.lmtp-test@example.org>\r\n" +
	"\r\n" +
	"Hello Bob,\r\n" +
	".\r\n" +
	"..two dots at the start\r\n" +
	"trailing space \r\n" +
	"\r\n" +
	"-- \r\nAlice\r\n"

type testEnv struct {
	st   *store.Store
	srv  *Server
	addr string
	done chan error
}

// newEnv starts an LMTP server on a fresh store with the given accounts (address ->
// quota in bytes, 0 for none).
func newEnv(t *testing.T, opts Options, accounts map[string]int64) *testEnv {
	t.Helper()
	return newEnvWith(t, store.Options{}, opts, accounts)
}

// newEnvWith is newEnv with a store opened with storeOpts.
func newEnvWith(t *testing.T, storeOpts store.Options, opts Options, accounts map[string]int64) *testEnv {
	t.Helper()
	storeOpts.Logger = slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	storeOpts.URL = storetest.URL(t, dir)
	st, err := store.Open(dir, storeOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for addr, quota := range accounts {
		if _, err := st.CreateAccount(context.Background(), store.NewAccount{Address: addr, Password: "pw", QuotaBytes: quota}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{st: st, srv: NewServer(st, opts), addr: l.Addr().String(), done: make(chan error, 1)}
	go func() { env.done <- env.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		env.srv.Shutdown(ctx)
		<-env.done
	})
	return env
}

// inbox returns the raw messages in an account's INBOX, by UID.
func (e *testEnv) inbox(t *testing.T, address string) [][]byte {
	t.Helper()
	ctx := context.Background()
	acct, err := e.st.LookupAccount(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := e.st.MailboxByName(ctx, acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := e.st.Messages(ctx, mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range msgs {
		body, err := e.st.OpenMessage(ctx, mb.ID, m.UID)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// raw is a line-level LMTP client, for what go-smtp's client will not send.
type raw struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := &raw{t: t, c: c, r: bufio.NewReader(c)}
	if code, text := r.reply(); code != 220 {
		t.Fatalf("greeting: %d %s", code, text)
	}
	return r
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// reply reads one (possibly multi-line) reply: its code and its lines' text.
func (r *raw) reply() (int, []string) {
	r.t.Helper()
	var lines []string
	for {
		line, err := r.r.ReadString('\n')
		if err != nil {
			r.t.Fatalf("reading a reply: %v (got %q so far)", err, lines)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			r.t.Fatalf("malformed reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			r.t.Fatalf("malformed reply line %q", line)
		}
		lines = append(lines, strings.TrimSpace(line[min(4, len(line)):]))
		if len(line) == 3 || line[3] != '-' {
			return code, lines
		}
	}
}

func (r *raw) cmd(line string) (int, string) {
	r.t.Helper()
	r.send(line + "\r\n")
	code, lines := r.reply()
	return code, strings.Join(lines, " / ")
}

func (r *raw) expect(line string, want int) string {
	r.t.Helper()
	code, text := r.cmd(line)
	if code != want {
		r.t.Fatalf("%q: got %d %s, want %d", line, code, text, want)
	}
	return text
}

// dotStuff encodes a CRLF message for DATA.
func dotStuff(msg string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(msg, "\r\n") {
		if strings.HasPrefix(line, ".") {
			b.WriteByte('.')
		}
		b.WriteString(line)
	}
	return b.String() + ".\r\n"
}

func TestLHLOAnnouncesExtensions(t *testing.T) {
	env := newEnv(t, Options{}, nil)
	c := dialRaw(t, env.addr)
	code, lines := func() (int, []string) { c.send("LHLO mta.example\r\n"); return c.reply() }()
	if code != 250 {
		t.Fatalf("LHLO: %d %q", code, lines)
	}
	got := map[string]bool{}
	for _, l := range lines[1:] {
		got[strings.Fields(l)[0]] = true
	}
	for _, ext := range []string{"PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE"} {
		if !got[ext] {
			t.Errorf("LHLO lacks %s (RFC 2033 §5); got %q", ext, lines)
		}
	}
	// RFC 2033 §4.1: HELO and EHLO are not LMTP.
	if code, _ := c.cmd("EHLO mta.example"); code/100 != 5 {
		t.Errorf("EHLO: %d, want 5xx", code)
	}
}

// TestPerRecipientStatus: two known recipients and one unknown; DATA answers once per
// accepted recipient, in order, and each INBOX gets the message after its trace fields.
func TestPerRecipientStatus(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"first@example.com": 0, "second@example.com": 0})
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mta.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alice@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("first@example.com", nil); err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	err = c.Rcpt("nosuchuser@example.com", nil)
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Fatalf("RCPT of an unknown user: %v, want 550 5.1.1", err)
	}
	if err := c.Rcpt("Second@Example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, testMessage)
	statuses, err := w.CloseWithLMTPResponse()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if len(statuses) != 2 {
		t.Fatalf("got %d DATA statuses, want one per accepted recipient: %v", len(statuses), statuses)
	}
	for _, rcpt := range []string{"first@example.com", "Second@Example.com"} {
		if statuses[rcpt] == nil {
			t.Errorf("DATA status for %s: %+v", rcpt, statuses[rcpt])
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"first@example.com", "second@example.com"} {
		msgs := env.inbox(t, rcpt)
		if len(msgs) != 1 {
			t.Fatalf("%s: %d messages in INBOX, want 1", rcpt, len(msgs))
		}
	}
	got := env.inbox(t, "second@example.com")[0]
	want := "Return-Path: <alice@example.org>\r\nDelivered-To: Second@Example.com\r\n" + testMessage
	if string(got) != want {
		t.Errorf("stored message:\n%q\nwant\n%q", got, want)
	}
}

// TestPipelinedNullSender sends MAIL FROM:<>, two RCPTs and DATA at once (RFC 2920).
func TestPipelinedNullSender(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"bob@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.send("MAIL FROM:<>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n")
	var codes []int
	for range 4 {
		code, _ := c.reply()
		codes = append(codes, code)
	}
	if want := []int{250, 250, 550, 354}; !equalInts(codes, want) {
		t.Fatalf("pipelined replies %v, want %v", codes, want)
	}
	c.send(dotStuff(testMessage))
	if code, text := c.reply(); code != 250 || !strings.HasPrefix(text[0], "2.0.0") {
		t.Fatalf("DATA status: %d %q", code, text)
	}
	msgs := env.inbox(t, "bob@example.com")
	if len(msgs) != 1 || !bytes.HasPrefix(msgs[0], []byte("Return-Path: <>\r\n")) ||
		!bytes.HasSuffix(msgs[0], []byte(testMessage)) {
		t.Fatalf("stored: %q", msgs)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBadSequence(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"bob@example.com": 0})
	c := dialRaw(t, env.addr)
	if code, _ := c.cmd("MAIL FROM:<alice@example.org>"); code/100 != 5 {
		t.Errorf("MAIL before LHLO: %d, want 5xx", code)
	}
	c.expect("LHLO mta.example", 250)
	for _, line := range []string{"RCPT TO:<bob@example.com>", "DATA", "FROBNICATE"} {
		if code, text := c.cmd(line); code/100 != 5 {
			t.Errorf("%q out of sequence: %d %s, want 5xx", line, code, text)
		}
	}
	c.expect("MAIL FROM:<alice@example.org>", 250)
	if text := c.expect("MAIL FROM:<alice@example.org>", 503); !strings.HasPrefix(text, "5.5.1") {
		t.Errorf("nested MAIL: %s, want 5.5.1", text)
	}
	c.expect("RCPT TO:<nobody@example.com>", 550)
	if code, text := c.cmd("DATA"); code/100 != 5 {
		t.Errorf("DATA with no accepted recipient: %d %s, want 5xx", code, text)
	}
	c.expect("RSET", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<bob@example.com>", 250)
	c.expect("DATA", 354)
	c.send(dotStuff(testMessage))
	if code, text := c.reply(); code != 250 {
		t.Fatalf("DATA after the errors: %d %q", code, text)
	}
	c.expect("QUIT", 221)
	if n := len(env.inbox(t, "bob@example.com")); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

// TestStoredOncePerRecipient: several recipients each get exactly one copy; a recipient
// named twice gets two statuses but one copy; +detail reaches the base account.
func TestStoredOncePerRecipient(t *testing.T) {
	env := newEnv(t, Options{DetailDelimiter: "+"}, map[string]int64{"a@example.com": 0, "b@example.com": 0, "c@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	rcpts := []string{"a@example.com", "b@example.com", "c+lists@example.com", "a@example.com"}
	for _, r := range rcpts {
		c.expect("RCPT TO:<"+r+">", 250)
	}
	c.expect("DATA", 354)
	c.send(dotStuff(testMessage))
	for _, r := range rcpts {
		if code, text := c.reply(); code != 250 || !strings.Contains(strings.Join(text, " "), r) {
			t.Errorf("DATA status for %s: %d %q", r, code, text)
		}
	}
	for _, acct := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if n := len(env.inbox(t, acct)); n != 1 {
			t.Errorf("%s: %d messages, want 1", acct, n)
		}
	}
	if got := env.inbox(t, "c@example.com")[0]; !bytes.Contains(got, []byte("Delivered-To: c+lists@example.com\r\n")) {
		t.Errorf("+detail copy lacks its Delivered-To: %q", got[:80])
	}
}

func TestOverQuotaRecipient(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"small@example.com": 100, "big@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<small@example.com>", 250)
	c.expect("RCPT TO:<big@example.com>", 250)
	c.expect("DATA", 354)
	c.send(dotStuff(testMessage))
	if code, text := c.reply(); code != 552 || !strings.HasPrefix(text[0], "5.2.2") {
		t.Errorf("over-quota recipient: %d %q, want 552 5.2.2", code, text)
	}
	if code, text := c.reply(); code != 250 {
		t.Errorf("other recipient: %d %q, want 250", code, text)
	}
	if n := len(env.inbox(t, "small@example.com")); n != 0 {
		t.Errorf("over-quota INBOX has %d messages", n)
	}
	if n := len(env.inbox(t, "big@example.com")); n != 1 {
		t.Errorf("other INBOX has %d messages, want 1", n)
	}
}

func TestMessageTooBig(t *testing.T) {
	env := newEnv(t, Options{MaxMessageBytes: 1024}, map[string]int64{"bob@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<bob@example.com>", 250)
	c.expect("DATA", 354)
	c.send(dotStuff(testMessage + strings.Repeat("padding line of text\r\n", 100)))
	if code, text := c.reply(); code != 552 || !strings.HasPrefix(text[0], "5.3.4") {
		t.Errorf("too big: %d %q, want 552 5.3.4", code, text)
	}
	c.expect("NOOP", 250) // the session goes on
	if n := len(env.inbox(t, "bob@example.com")); n != 0 {
		t.Errorf("a too-big message was stored")
	}
	// SIZE announced in MAIL is refused at once.
	if code, _ := c.cmd("MAIL FROM:<alice@example.org> SIZE=999999"); code != 552 {
		t.Errorf("MAIL with SIZE over the limit: %d, want 552", code)
	}
}

// TestBadInput: an overlong command line is refused and binary garbage does not hurt the
// server; a normal delivery works afterwards.
func TestBadInput(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"bob@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.send("MAIL FROM:<" + strings.Repeat("x", 100<<10) + "@example.org>\r\n")
	line, _ := c.r.ReadString('\n')
	if !strings.HasPrefix(line, "5") && line != "" {
		t.Errorf("100 KB MAIL FROM: %q, want a 5xx reply or a closed connection", line)
	}

	g := dialRaw(t, env.addr)
	junk := make([]byte, 4096)
	rand.New(rand.NewSource(2033)).Read(junk)
	g.c.Write(append(junk, "\r\n"...))
	g.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, g.r)

	d := dialRaw(t, env.addr)
	d.expect("LHLO mta.example", 250)
	d.expect("MAIL FROM:<alice@example.org>", 250)
	d.expect("RCPT TO:<bob@example.com>", 250)
	d.expect("DATA", 354)
	d.send(dotStuff(testMessage))
	if code, text := d.reply(); code != 250 {
		t.Fatalf("delivery after bad input: %d %q", code, text)
	}
}

// TestShutdownClosesIdleConnections: Shutdown does not wait for an idle client to QUIT,
// and Serve then returns nil.
func TestShutdownClosesIdleConnections(t *testing.T) {
	env := newEnv(t, Options{}, nil)
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-env.done; err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	env.done <- nil // for the cleanup
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Error("the idle connection is still open after Shutdown")
	}
}

// TestShutdownLetsDeliveryFinish: a delivery in progress when Shutdown starts completes,
// is answered 250 and is stored; only then is the connection closed.
func TestShutdownLetsDeliveryFinish(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"bob@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<bob@example.com>", 250)
	c.expect("DATA", 354)
	body := dotStuff(testMessage)
	half := len(body) / 2
	c.send(body[:half])
	waitBusy(t, env.srv)

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- env.srv.Shutdown(ctx)
	}()
	c.send(body[half:])
	if code, text := c.reply(); code != 250 {
		t.Fatalf("DATA status during shutdown: %d %q", code, text)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := len(env.inbox(t, "bob@example.com")); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Error("the connection stayed open after the delivery and Shutdown")
	}
}

// waitBusy waits until some connection of srv is in the middle of a delivery.
func waitBusy(t *testing.T, srv *Server) {
	t.Helper()
	for range 1000 {
		srv.mu.Lock()
		for c := range srv.conns {
			if c.busy.Load() {
				srv.mu.Unlock()
				return
			}
		}
		srv.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no delivery started")
}

// TestOverlongMessageLine: a message line beyond MaxLineLength is refused for every
// recipient and ends the connection (the rest of the stream cannot be trusted).
func TestOverlongMessageLine(t *testing.T) {
	env := newEnv(t, Options{MaxLineLength: 1000}, map[string]int64{"bob@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<bob@example.com>", 250)
	c.expect("DATA", 354)
	c.send("Subject: long\r\n\r\n" + strings.Repeat("y", 5000) + "\r\n.\r\n")
	if code, text := c.reply(); code/100 != 5 {
		t.Errorf("DATA with an overlong line: %d %q, want 5xx", code, text)
	}
	if n := len(env.inbox(t, "bob@example.com")); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

// TestOverlongCommandLine: a command line beyond MaxLineLength is answered 500 and ends
// the connection: the server does not read on to the line's end (a client sending 64 MiB
// without a line end is cut off long before it has sent them all).
func TestOverlongCommandLine(t *testing.T) {
	env := newEnv(t, Options{MaxLineLength: 1000}, map[string]int64{"bob@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	const flood = 64 << 20
	written := make(chan int, 1)
	go func() {
		total, _ := c.c.Write([]byte("MAIL FROM:<"))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for total < flood {
			n, err := c.c.Write(chunk)
			total += n
			if err != nil {
				break
			}
		}
		written <- total
	}()
	// The answer ends in 500 and the connection closes (go-smtp may first answer the part
	// of the line read before the limit tripped, as a command of its own: 501 here).
	out, err := io.ReadAll(c.r)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection stayed open after the overlong line: %q", out)
	}
	if !regexp.MustCompile(`(?m)^500 `).Match(out) || regexp.MustCompile(`(?m)^2`).Match(out) {
		t.Errorf("overlong command line answered %q, want 500 and nothing accepted", out)
	}
	c.c.Close()
	if n := <-written; n >= flood {
		t.Errorf("the server read all %d MiB of one command line", n>>20)
	}
	c2 := dialRaw(t, env.addr)
	c2.expect("LHLO mta.example", 250)
}

// TestMessageQuota: an account at its quota in messages is refused at RCPT with 552 5.2.2;
// the other recipient still gets the message.
func TestMessageQuota(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"one@example.com": 0, "other@example.com": 0})
	if err := env.st.SetQuotaMessages(context.Background(), "one@example.com", 1); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	for i, want := range []int{250, 552} {
		c.expect("MAIL FROM:<alice@example.org>", 250)
		if code, text := c.cmd("RCPT TO:<one@example.com>"); code != want || (want == 552 && !strings.HasPrefix(text, "5.2.2")) {
			t.Errorf("delivery %d: RCPT %d %s, want %d", i+1, code, text, want)
		}
		c.expect("RCPT TO:<other@example.com>", 250)
		c.expect("DATA", 354)
		c.send(dotStuff(testMessage))
		replies := 2 // one per accepted recipient
		if want != 250 {
			replies = 1
		}
		for range replies {
			if code, text := c.reply(); code != 250 {
				t.Errorf("delivery %d: %d %q", i+1, code, text)
			}
		}
	}
	if n := len(env.inbox(t, "one@example.com")); n != 1 {
		t.Errorf("one@example.com: %d messages, want 1", n)
	}
	if n := len(env.inbox(t, "other@example.com")); n != 2 {
		t.Errorf("other@example.com: %d messages, want 2", n)
	}
}

// TestConcurrentSessions: several MTA connections deliver at once (their copies share
// the store's group commits); every 250 is a message stored.
func TestConcurrentSessions(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"bob@example.com": 0})
	const sessions, each = 8, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for range sessions {
		c := dialRaw(t, env.addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.send("LHLO mta.example\r\n")
			c.reply()
			for range each {
				c.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\n")
				c.reply()
				c.reply()
				c.bdat(testMessage, true)
				if code, _ := c.reply(); code == 250 {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if acked != sessions*each {
		t.Errorf("%d deliveries acknowledged, want %d", acked, sessions*each)
	}
	if n := len(env.inbox(t, "bob@example.com")); n != acked {
		t.Errorf("%d messages stored, %d acknowledged", n, acked)
	}
}
