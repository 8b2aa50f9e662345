package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/textproto"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/pkg/letterboxtest"
)

// Soak test sizes: 200 clients at once (docs/security.md, "soak").
const (
	soakIdlers     = 40      // IMAP IDLE, woken by deliveries
	soakFetchers   = 50      // IMAP FETCH of listings and whole messages
	soakAppenders  = 40      // IMAP APPEND
	soakPOP3       = 30      // POP3 download sessions
	soakLMTP       = 40      // LMTP deliveries
	soakIMAPUsers  = 10      // accounts the IMAP clients share
	soakPOP3Users  = 15      // accounts the POP3 clients share, two each (the other's lock: [IN-USE], try again)
	soakHeapGrowth = 8 << 20 // live heap after GC may grow this much (caches)
)

// soakRun is what the clients report: protocol errors (each a failure) and work done.
type soakRun struct {
	mu     sync.Mutex
	errs   []string
	nerrs  int
	counts map[string]*atomic.Int64
}

func (r *soakRun) fail(who string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nerrs++
	if len(r.errs) < 20 {
		r.errs = append(r.errs, fmt.Sprintf("%s: %v", who, err))
	}
}

func (r *soakRun) did(what string) { r.counts[what].Add(1) }

// TestSoak runs 200 concurrent mixed clients against an in-process server on loopback for
// LETTERBOX_SOAK_DURATION (default 10s): IMAP IDLE, FETCH and APPEND, POP3 downloads, LMTP
// deliveries. Every answer must be a success: zero protocol errors. After the clients have
// logged out, the goroutine count must come back to what it was before they started, and
// the heap, after GC, must not have grown by more than soakHeapGrowth. Loopback is exempt
// from limits.max_connections_per_ip, letterboxtest turns limits.max_userip_connections off
// (13 IMAP sessions share each account here), and 200 is below limits.max_connections
// (1000).
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test")
	}
	duration := 10 * time.Second
	if v := os.Getenv("LETTERBOX_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LETTERBOX_SOAK_DURATION: %v", err)
		}
		duration = d
	}
	srv := letterboxtest.Start(t)
	imapUsers := make([]string, soakIMAPUsers)
	for i := range imapUsers {
		imapUsers[i] = fmt.Sprintf("imap%d@example.net", i)
		srv.AddUser(imapUsers[i], "pw")
		for j := 0; j < 5; j++ {
			srv.Deliver(imapUsers[i], soakMessage(fmt.Sprintf("seed%d", j), 2000))
		}
	}
	popUsers := make([]string, soakPOP3Users)
	for i := range popUsers {
		popUsers[i] = fmt.Sprintf("pop%d@example.net", i)
		srv.AddUser(popUsers[i], "pw")
	}
	everyone := append(append([]string{}, imapUsers...), popUsers...)
	// One login per account first, as a long-running server has had: the 200 clients then
	// meet the login cache, not 200 argon2id hashes at once (which under -race on a small
	// machine would take most of the soak).
	for _, u := range everyone {
		if _, err := srv.Store().Authenticate(context.Background(), u, "pw"); err != nil {
			t.Fatal(err)
		}
	}

	baseGoroutines, baseHeap := settledGoroutines(), heapAfterGC()

	run := &soakRun{counts: map[string]*atomic.Int64{}}
	for _, k := range []string{"idle wake-up", "fetch", "append", "pop3 session", "lmtp"} {
		run.counts[k] = new(atomic.Int64)
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	deadline := time.Now().Add(duration + 2*time.Minute) // every read and write: a hang guard
	var wg sync.WaitGroup
	var seed int64
	start := func(n int, client func(i int, r *rand.Rand)) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			seed++
			r := rand.New(rand.NewSource(seed))
			go func() {
				defer wg.Done()
				client(i, r)
			}()
		}
	}
	imapAddr, pop3Addr, lmtpAddr := srv.IMAPAddr(), srv.POP3Addr(), srv.LMTPAddr()
	start(soakIdlers, func(i int, r *rand.Rand) {
		soakIdle(ctx, run, imapAddr, imapUsers[i%len(imapUsers)], deadline)
	})
	start(soakFetchers, func(i int, r *rand.Rand) {
		soakFetch(ctx, run, r, imapAddr, imapUsers[i%len(imapUsers)], deadline)
	})
	start(soakAppenders, func(i int, r *rand.Rand) {
		soakAppend(ctx, run, r, imapAddr, imapUsers[i%len(imapUsers)], deadline)
	})
	start(soakPOP3, func(i int, r *rand.Rand) {
		for ctx.Err() == nil {
			soakPOP3Session(run, r, pop3Addr, popUsers[i%len(popUsers)], deadline)
			pause(ctx, r)
		}
	})
	start(soakLMTP, func(i int, r *rand.Rand) {
		soakLMTPClient(ctx, run, r, lmtpAddr, everyone, deadline)
	})
	wg.Wait()

	counts := map[string]int64{}
	for k, c := range run.counts {
		counts[k] = c.Load()
	}
	t.Logf("%v of 200 clients: %v", duration, counts)
	if run.nerrs > 0 {
		t.Errorf("%d protocol errors, the first ones:\n%s", run.nerrs, strings.Join(run.errs, "\n"))
	}
	for k, n := range counts {
		if n == 0 {
			t.Errorf("no %s happened: the soak proved nothing about it", k)
		}
	}

	// Every session has ended: its goroutines must go. The server's own (listeners, the
	// store's watcher) were counted in the baseline. Poll with a generous deadline: this
	// checks for leaks, not for speed.
	var now int
	for wait := time.Now().Add(30 * time.Second); ; {
		if now = runtime.NumGoroutine(); now <= baseGoroutines || time.Now().After(wait) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if now > baseGoroutines {
		buf := make([]byte, 64<<10)
		t.Errorf("goroutines: %d before the clients, %d after they left\n%s", baseGoroutines, now, buf[:runtime.Stack(buf, true)])
	}
	if heap := heapAfterGC(); heap > baseHeap+soakHeapGrowth {
		t.Errorf("heap after GC: %d MiB before the clients, %d MiB after they left (bound +%d MiB)",
			baseHeap>>20, heap>>20, soakHeapGrowth>>20)
	} else {
		t.Logf("heap after GC: %.1f MiB before the clients, %.1f MiB after", float64(baseHeap)/(1<<20), float64(heap)/(1<<20))
	}
}

// settledGoroutines is the goroutine count once it has stopped falling (goroutines of
// the set-up, such as the store's commits' wake-ups, finish).
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return n
		}
		n = m
	}
	return n
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// pause is a client's think time, so that 200 clients interleave rather than spin.
func pause(ctx context.Context, r *rand.Rand) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(5+r.Intn(45)) * time.Millisecond):
	}
}

func soakMessage(tag string, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: alice@example.org\r\nTo: soak@example.net\r\nSubject: soak %s\r\nMessage-ID: <%s.soak@letterbox.test>\r\n\r\n", tag, tag)
	for b.Len() < size {
		b.WriteString("a line of a soak test message, long enough to be a line\r\n")
	}
	return b.String()
}

// soakIMAP logs in and selects INBOX; handler gets unilateral mailbox data.
func soakIMAP(run *soakRun, addr, user string, deadline time.Time, handler *imapclient.UnilateralDataHandler) *imapclient.Client {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		run.fail("imap dial", err)
		return nil
	}
	conn.SetDeadline(deadline)
	c := imapclient.New(conn, &imapclient.Options{UnilateralDataHandler: handler})
	if err := c.Login(user, "pw").Wait(); err != nil {
		run.fail("imap LOGIN", err)
		c.Close()
		return nil
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		run.fail("imap SELECT", err)
		c.Close()
		return nil
	}
	return c
}

func soakLogout(run *soakRun, c *imapclient.Client) {
	if err := c.Logout().Wait(); err != nil {
		run.fail("imap LOGOUT", err)
	}
	c.Close()
}

// soakIdle IDLEs, and counts the EXISTS that deliveries and APPENDs cause, until ctx ends.
func soakIdle(ctx context.Context, run *soakRun, addr, user string, deadline time.Time) {
	c := soakIMAP(run, addr, user, deadline, &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				run.did("idle wake-up")
			}
		},
	})
	if c == nil {
		return
	}
	idle, err := c.Idle()
	if err != nil {
		run.fail("imap IDLE", err)
		c.Close()
		return
	}
	<-ctx.Done()
	if err := idle.Close(); err != nil {
		run.fail("imap DONE", err)
	}
	if err := idle.Wait(); err != nil {
		run.fail("imap IDLE", err)
	}
	soakLogout(run, c)
}

// soakFetch lists the first messages and fetches one whole, checking that BODY[] is as
// long as RFC822.SIZE said.
func soakFetch(ctx context.Context, run *soakRun, r *rand.Rand, addr, user string, deadline time.Time) {
	c := soakIMAP(run, addr, user, deadline, nil)
	if c == nil {
		return
	}
	defer soakLogout(run, c)
	for ctx.Err() == nil {
		msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3, 4, 5), &imap.FetchOptions{
			UID: true, Flags: true, RFC822Size: true, Envelope: true}).Collect()
		if err != nil {
			run.fail("imap FETCH listing", err)
			return
		}
		m := msgs[r.Intn(len(msgs))]
		body, err := c.Fetch(imap.UIDSetNum(m.UID), &imap.FetchOptions{
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil || len(body) != 1 || len(body[0].BodySection) != 1 {
			run.fail("imap UID FETCH BODY.PEEK[]", fmt.Errorf("%d messages, %v", len(body), err))
			return
		}
		if got := int64(len(body[0].BodySection[0].Bytes)); got != m.RFC822Size {
			run.fail("imap UID FETCH BODY.PEEK[]", fmt.Errorf("UID %d: %d octets, RFC822.SIZE %d", m.UID, got, m.RFC822Size))
		}
		run.did("fetch")
		pause(ctx, r)
	}
}

func soakAppend(ctx context.Context, run *soakRun, r *rand.Rand, addr, user string, deadline time.Time) {
	c := soakIMAP(run, addr, user, deadline, nil)
	if c == nil {
		return
	}
	defer soakLogout(run, c)
	for i := 0; ctx.Err() == nil; i++ {
		msg := soakMessage(fmt.Sprintf("append%d", r.Int63()), 500+r.Intn(20000))
		cmd := c.Append("INBOX", int64(len(msg)), nil)
		if _, err := io.WriteString(cmd, msg); err != nil {
			run.fail("imap APPEND", err)
			return
		}
		if err := cmd.Close(); err != nil {
			run.fail("imap APPEND", err)
			return
		}
		if d, err := cmd.Wait(); err != nil || d.UID == 0 {
			run.fail("imap APPEND", fmt.Errorf("%v (APPENDUID %v)", err, d))
			return
		}
		run.did("append")
		pause(ctx, r)
	}
}

// soakPOP3Session logs in, lists, retrieves a few messages, deletes one, and QUITs.
func soakPOP3Session(run *soakRun, r *rand.Rand, addr, user string, deadline time.Time) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		run.fail("pop3 dial", err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	tp := textproto.NewConn(conn)
	ok := func(format string, args ...any) (string, bool) {
		if format != "" {
			if err := tp.PrintfLine(format, args...); err != nil {
				run.fail("pop3", err)
				return "", false
			}
		}
		l, err := tp.ReadLine()
		if err != nil || !strings.HasPrefix(l, "+OK") {
			if strings.Contains(l, "[IN-USE]") { // the last session's lock, being released
				return l, false
			}
			run.fail("pop3 "+strings.Fields(format + " x")[0], fmt.Errorf("%q %v", l, err))
			return l, false
		}
		return l, true
	}
	if _, good := ok(""); !good {
		return
	}
	if _, good := ok("USER %s", user); !good {
		return
	}
	if _, good := ok("PASS pw"); !good {
		return
	}
	stat, good := ok("STAT")
	if !good {
		return
	}
	var n int
	fmt.Sscanf(stat, "+OK %d", &n)
	for _, multi := range []string{"LIST", "UIDL"} {
		if _, good := ok("%s", multi); !good {
			return
		}
		if lines, err := tp.ReadDotLines(); err != nil || len(lines) != n {
			run.fail("pop3 "+multi, fmt.Errorf("%d lines for %d messages, %v", len(lines), n, err))
			return
		}
	}
	for _, i := range r.Perm(n)[:min(n, 3)] {
		if _, good := ok("RETR %d", i+1); !good {
			return
		}
		if _, err := tp.ReadDotBytes(); err != nil {
			run.fail("pop3 RETR", err)
			return
		}
	}
	if n > 0 {
		if _, good := ok("DELE %d", 1+r.Intn(n)); !good {
			return
		}
	}
	if _, good := ok("QUIT"); good {
		run.did("pop3 session")
	}
}

func soakLMTPClient(ctx context.Context, run *soakRun, r *rand.Rand, addr string, users []string, deadline time.Time) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		run.fail("lmtp dial", err)
		return
	}
	conn.SetDeadline(deadline)
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("soak.test"); err != nil {
		run.fail("lmtp LHLO", err)
		return
	}
	for ctx.Err() == nil {
		to := []string{users[r.Intn(len(users))]}
		if other := users[r.Intn(len(users))]; other != to[0] && r.Intn(4) == 0 {
			to = append(to, other) // one body stored for two accounts
		}
		msg := soakMessage(fmt.Sprintf("lmtp%d", r.Int63()), 500+r.Intn(20000))
		if err := c.SendMail("alice@example.org", to, bytes.NewReader([]byte(msg))); err != nil {
			var lerr smtp.LMTPDataError
			if errors.As(err, &lerr) {
				err = fmt.Errorf("per recipient: %v", lerr)
			}
			run.fail("lmtp", err)
			return
		}
		run.did("lmtp")
		pause(ctx, r)
	}
	if err := c.Quit(); err != nil {
		run.fail("lmtp QUIT", err)
	}
}
