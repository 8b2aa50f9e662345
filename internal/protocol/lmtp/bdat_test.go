package lmtp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// bdat sends one BDAT chunk (RFC 3030 §2): the command, then exactly len(chunk) octets,
// with no dot-stuffing and no terminator.
func (r *raw) bdat(chunk string, last bool) {
	r.t.Helper()
	cmd := fmt.Sprintf("BDAT %d", len(chunk))
	if last {
		cmd += " LAST"
	}
	r.send(cmd + "\r\n" + chunk)
}

// expectReplies reads one reply per recipient after DATA or BDAT LAST and checks each
// code and that it names its recipient (RFC 2033 §4.2: one reply per accepted RCPT, in
// order).
func (r *raw) expectReplies(rcpts []string, codes []int) {
	r.t.Helper()
	for i, rcpt := range rcpts {
		code, text := r.reply()
		if code != codes[i] || !strings.Contains(strings.Join(text, " "), rcpt) {
			r.t.Errorf("reply %d for %s: %d %q, want %d", i+1, rcpt, code, text, codes[i])
		}
	}
}

func TestLHLOAnnouncesChunking(t *testing.T) {
	env := newEnv(t, Options{MaxRecipients: 7}, nil)
	c := dialRaw(t, env.addr)
	text := c.expect("LHLO mta.example", 250)
	for _, ext := range []string{"CHUNKING", "LIMITS RCPTMAX=7"} {
		if !strings.Contains(text, ext) {
			t.Errorf("LHLO lacks %s: %s", ext, text)
		}
	}
}

// TestBDAT sends a message in three chunks, split inside a line and right after a line
// that starts with a dot (BDAT has no dot-stuffing), to three recipients of which one is
// refused only at delivery (over quota): after BDAT LAST come one reply per recipient in
// RCPT order, and the stored copies are byte for byte what was sent.
func TestBDAT(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"a@example.com": 0, "tiny@example.com": 50, "b@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	rcpts := []string{"a@example.com", "tiny@example.com", "b@example.com"}
	for _, r := range rcpts {
		c.expect("RCPT TO:<"+r+">", 250)
	}
	cut1 := strings.Index(testMessage, "Hello") + 3
	cut2 := strings.Index(testMessage, "..two") + 1
	c.bdat(testMessage[:cut1], false)
	if code, text := c.reply(); code != 250 {
		t.Fatalf("first chunk: %d %q", code, text)
	}
	c.bdat(testMessage[cut1:cut2], false)
	if code, text := c.reply(); code != 250 {
		t.Fatalf("second chunk: %d %q", code, text)
	}
	c.bdat(testMessage[cut2:], true)
	c.expectReplies(rcpts, []int{250, 552, 250})

	for _, acct := range []string{"a@example.com", "b@example.com"} {
		msgs := env.inbox(t, acct)
		want := "Return-Path: <alice@example.org>\r\nDelivered-To: " + acct + "\r\n" + testMessage
		if len(msgs) != 1 || string(msgs[0]) != want {
			t.Errorf("%s: stored %q, want [%q]", acct, msgs, want)
		}
	}
	if n := len(env.inbox(t, "tiny@example.com")); n != 0 {
		t.Errorf("over-quota recipient got %d messages", n)
	}

	// The session goes on: a second transaction with DATA, then one with a single BDAT LAST.
	c.expect("MAIL FROM:<>", 250)
	c.expect("RCPT TO:<a@example.com>", 250)
	c.bdat(testMessage, true)
	c.expectReplies([]string{"a@example.com"}, []int{250})
	if n := len(env.inbox(t, "a@example.com")); n != 2 {
		t.Errorf("after a one-chunk BDAT: %d messages, want 2", n)
	}
}

// TestBDATAborted: BDAT outside a transaction is refused and its chunk skipped; RSET
// between chunks stores nothing; the session then delivers normally. (It delivers with
// DATA: go-smtp v0.25.1 lets the aborted transfer's goroutine race with the next BDAT on
// the same connection over a field of its own, which -race reports; the replies are
// right either way, since they come from per-transaction channels.)
func TestBDATAborted(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"bob@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.bdat(testMessage, true)
	if code, text := c.reply(); code/100 != 5 {
		t.Errorf("BDAT without a transaction: %d %q, want 5xx", code, text)
	}
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<bob@example.com>", 250)
	c.bdat(testMessage[:40], false)
	if code, text := c.reply(); code != 250 {
		t.Fatalf("chunk: %d %q", code, text)
	}
	c.expect("RSET", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<bob@example.com>", 250)
	c.expect("DATA", 354)
	c.send(dotStuff(testMessage))
	c.expectReplies([]string{"bob@example.com"}, []int{250})
	c.expect("QUIT", 221)
	msgs := env.inbox(t, "bob@example.com")
	if len(msgs) != 1 || !bytes.HasSuffix(msgs[0], []byte(testMessage)) {
		t.Errorf("stored %d messages (%q), want only the complete one", len(msgs), msgs)
	}
}

// TestBDATTooBig: chunks adding up to more than the size limit get 552 5.3.4 and nothing
// is stored.
func TestBDATTooBig(t *testing.T) {
	env := newEnv(t, Options{MaxMessageBytes: 300}, map[string]int64{"bob@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<bob@example.com>", 250)
	c.bdat(testMessage, false)
	if code, text := c.reply(); code != 250 {
		t.Fatalf("first chunk: %d %q", code, text)
	}
	c.bdat(strings.Repeat("padding line of text\r\n", 10), true)
	if code, text := c.reply(); code != 552 || !strings.HasPrefix(text[0], "5.3.4") {
		t.Errorf("too big: %d %q, want 552 5.3.4", code, text)
	}
	c.expect("NOOP", 250)
	if n := len(env.inbox(t, "bob@example.com")); n != 0 {
		t.Errorf("a too-big message was stored")
	}
}

// TestRecipientLimit: RCPT beyond Options.MaxRecipients gets 452 4.5.3 (RFC 5321
// §4.5.3.1.10: the client sends the rest in another transaction), and the recipients
// accepted before it still get the message.
func TestRecipientLimit(t *testing.T) {
	env := newEnv(t, Options{MaxRecipients: 2}, map[string]int64{"a@example.com": 0, "b@example.com": 0, "c@example.com": 0})
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<a@example.com>", 250)
	c.expect("RCPT TO:<b@example.com>", 250)
	if text := c.expect("RCPT TO:<c@example.com>", 452); !strings.HasPrefix(text, "4.5.3") {
		t.Errorf("third RCPT: %s, want 452 4.5.3", text)
	}
	c.expect("DATA", 354)
	c.send(dotStuff(testMessage))
	c.expectReplies([]string{"a@example.com", "b@example.com"}, []int{250, 250})
	// A new transaction may name the recipient that did not fit.
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<c@example.com>", 250)
	c.bdat(testMessage, true)
	c.expectReplies([]string{"c@example.com"}, []int{250})
	for _, acct := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if n := len(env.inbox(t, acct)); n != 1 {
			t.Errorf("%s: %d messages, want 1", acct, n)
		}
	}
}

// fullStore is a store whose disk is full for spooling (spoolFull) or for storing the
// copies of the accounts in full.
type fullStore struct {
	*store.Store
	spoolFull bool
	full      map[int64]bool
}

var errDiskFull = fmt.Errorf("store: deliver: %w: database or disk is full", store.ErrStorageFull)

func (f *fullStore) Spool(r io.Reader, opts store.SpoolOptions) (*store.Spooled, error) {
	if f.spoolFull {
		io.CopyN(io.Discard, r, 10) // fail part way, as a full spool directory would
		return nil, errDiskFull
	}
	return f.Store.Spool(r, opts)
}

func (f *fullStore) DeliverSpooled(ctx context.Context, accountID int64, sp *store.Spooled, opts store.DeliverOptions) (store.Delivered, error) {
	if f.full[accountID] {
		return store.Delivered{}, errDiskFull
	}
	return f.Store.DeliverSpooled(ctx, accountID, sp, opts)
}

// TestStorageFull: when the store is full (store.ErrStorageFull), each recipient concerned
// gets 452 4.2.2 so the MTA keeps the message and retries, with DATA and with BDAT; a
// recipient whose copy could be stored still gets 250.
func TestStorageFull(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"full@example.com": 0, "ok@example.com": 0})
	ctx := context.Background()
	fullAcct, err := env.st.LookupAccount(ctx, "full@example.com")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fullStore{Store: env.st, full: map[int64]bool{fullAcct.ID: true}}
	srv := newServer(fs, Options{Logger: slog.New(slog.DiscardHandler)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	rcpts := []string{"full@example.com", "ok@example.com"}
	check := func(c *raw, codes []int) {
		t.Helper()
		for i, rcpt := range rcpts {
			code, text := c.reply()
			want := "2.0.0"
			if codes[i] == 452 {
				want = "4.2.2"
			}
			if code != codes[i] || !strings.HasPrefix(text[0], want) || !strings.Contains(text[0], rcpt) {
				t.Errorf("reply for %s: %d %q, want %d %s", rcpt, code, text, codes[i], want)
			}
		}
	}
	start := func(c *raw) {
		c.expect("MAIL FROM:<alice@example.org>", 250)
		for _, r := range rcpts {
			c.expect("RCPT TO:<"+r+">", 250)
		}
	}
	c := dialRaw(t, l.Addr().String())
	c.expect("LHLO mta.example", 250)
	start(c)
	c.expect("DATA", 354)
	c.send(dotStuff(testMessage))
	check(c, []int{452, 250})
	start(c)
	c.bdat(testMessage, true)
	check(c, []int{452, 250})

	// A spool that fails part way: every recipient gets 452 4.2.2, also after BDAT chunks
	// that arrive once the store has given up reading.
	fs.spoolFull = true
	start(c)
	c.expect("DATA", 354)
	c.send(dotStuff(testMessage))
	check(c, []int{452, 452})
	start(c)
	c.bdat(testMessage[:20], false)
	if code, text := c.reply(); code != 250 {
		t.Fatalf("chunk: %d %q", code, text)
	}
	c.bdat(testMessage[20:], true)
	check(c, []int{452, 452})
	c.expect("NOOP", 250)

	if n := len(env.inbox(t, "ok@example.com")); n != 2 {
		t.Errorf("ok@example.com: %d messages, want 2", n)
	}
	if n := len(env.inbox(t, "full@example.com")); n != 0 {
		t.Errorf("full@example.com: %d messages, want 0", n)
	}
}
