package pop3

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

func TestMaildropLocks(t *testing.T) {
	var l maildropLocks
	ctx := context.Background()
	k1, k2 := lockKey{nil, 1}, lockKey{nil, 2}
	if !l.acquire(ctx, k1, 0) {
		t.Fatal("first acquire failed")
	}
	if l.acquire(ctx, k1, 0) {
		t.Fatal("second acquire of a held lock succeeded")
	}
	if !l.acquire(ctx, k2, 0) {
		t.Fatal("another account's lock is not independent")
	}
	// A waiter gets the lock once the holder releases it.
	got := make(chan bool)
	go func() { got <- l.acquire(ctx, k1, time.Hour) }()
	l.release(k1)
	if !<-got {
		t.Fatal("waiter did not get the released lock")
	}
	// A cancelled context stops the wait.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if l.acquire(cctx, k1, time.Hour) {
		t.Fatal("acquire with a cancelled context succeeded")
	}
	l.release(k1)
	l.release(k1) // releasing a free lock is harmless
	if !l.acquire(ctx, k1, 0) {
		t.Fatal("acquire after release failed")
	}
}

func TestLoginDelays(t *testing.T) {
	var d loginDelays
	now := time.Unix(1_000_000, 0)
	if w := d.wait(1, now, time.Minute); w != 0 {
		t.Errorf("first login waits %v", w)
	}
	d.record(1, now, time.Minute)
	if w := d.wait(1, now.Add(20*time.Second), time.Minute); w != 40*time.Second {
		t.Errorf("login after 20 s waits %v, want 40s", w)
	}
	if w := d.wait(2, now, time.Minute); w != 0 {
		t.Errorf("another account waits %v", w)
	}
	if w := d.wait(1, now.Add(time.Minute), time.Minute); w != 0 {
		t.Errorf("login after the delay waits %v", w)
	}
	if w := d.wait(1, now, 0); w != 0 {
		t.Errorf("no delay configured, waits %v", w)
	}
	for i := range int64(2000) {
		d.record(100+i, now.Add(-time.Hour), time.Minute)
	}
	d.record(1, now, time.Minute)
	if len(d.last) > 1100 {
		t.Errorf("%d entries kept, old ones are not pruned", len(d.last))
	}
}

func TestInUse(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("locked", "x\r\n"))
	first := e.login()
	second := e.dial()
	second.ok("USER " + testUser)
	if got := second.err("PASS " + testPassword); !strings.HasPrefix(got, "-ERR [IN-USE] ") {
		t.Errorf("second session: %q, want -ERR [IN-USE] (RFC 2449 §8.1)", got)
	}
	if got := second.err("AUTH PLAIN " + b64("\x00"+testUser+"\x00"+testPassword)); !strings.HasPrefix(got, "-ERR [IN-USE] ") {
		t.Errorf("second session, AUTH: %q, want -ERR [IN-USE]", got)
	}
	// The store (IMAP) is not locked out.
	if n := len(e.inbox()); n != 1 {
		t.Errorf("INBOX through the store: %d messages", n)
	}
	if got := first.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Errorf("first session STAT = %q", got)
	}
	// QUIT releases the maildrop before it answers: an immediate new login succeeds.
	first.ok("QUIT")
	second.ok("USER " + testUser)
	second.ok("PASS " + testPassword)
}

func TestInUseReleasedOnDrop(t *testing.T) {
	e := newEnv(t)
	first := e.login()
	first.conn.Close()
	waitFor(t, func() bool {
		c := e.dial()
		defer c.conn.Close()
		c.ok("USER " + testUser)
		return strings.HasPrefix(c.cmd("PASS "+testPassword), "+OK")
	})
}

func TestLoginDelay(t *testing.T) {
	e := newEnv(t, withOptions(func(o *Options) { o.LoginDelay = time.Hour }))
	c := e.login()
	c.ok("QUIT")
	c.closed()
	c = e.dial()
	c.ok("USER " + testUser)
	if got := c.err("PASS " + testPassword); !strings.HasPrefix(got, "-ERR [LOGIN-DELAY] ") {
		t.Errorf("login within the delay: %q, want -ERR [LOGIN-DELAY]", got)
	}
	// A refused login leaves the maildrop free and does not restart the delay for others.
	key := e.srv.maildropKey(e.acct.ID)
	if !maildrops.acquire(context.Background(), key, 0) {
		t.Error("the maildrop is still locked after a LOGIN-DELAY refusal")
	}
	maildrops.release(key)
}

// TestInUseAcrossServers: a POP3 and a POP3S server on the same store share the locks.
func TestInUseAcrossServers(t *testing.T) {
	e := newEnv(t)
	other := newServer(e.st, e.srv.opts)
	other.lockWait = 0
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- other.Serve(l) }()
	defer func() {
		other.Shutdown(context.Background())
		<-served
	}()
	first := e.login()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.line()
	c.ok("USER " + testUser)
	if got := c.err("PASS " + testPassword); !strings.HasPrefix(got, "-ERR [IN-USE]") {
		t.Errorf("login on the other server: %q, want -ERR [IN-USE]", got)
	}
	first.ok("QUIT")
	c.ok("USER " + testUser)
	c.ok("PASS " + testPassword)
}

// otherNodeStore is a store whose maildrop lock between nodes is held elsewhere (another
// node of a PostgreSQL cluster) or cannot be taken, and which counts the releases.
type otherNodeStore struct {
	*store.Store
	err      error
	locks    atomic.Int32
	releases atomic.Int32
}

func (o *otherNodeStore) LockMaildrop(ctx context.Context, accountID int64) (func(), error) {
	if o.err != nil {
		return nil, o.err
	}
	o.locks.Add(1)
	return func() { o.releases.Add(1) }, nil
}

// A maildrop locked on another node is [IN-USE] here too (RFC 2449 §8.1), and a lock that
// cannot be taken is [SYS/TEMP] (RFC 3206 §4); neither keeps this node's own lock. A
// session that got both locks releases the other node's at QUIT, once.
func TestInUseOnAnotherNode(t *testing.T) {
	st := openStore(t)
	o := &otherNodeStore{Store: st, err: store.ErrMaildropInUse}
	e := newEnvWith(t, st, o)
	c := e.dial()
	c.ok("USER " + testUser)
	if got := c.err("PASS " + testPassword); !strings.HasPrefix(got, "-ERR [IN-USE] ") {
		t.Errorf("maildrop locked on another node: %q, want -ERR [IN-USE]", got)
	}
	o.err = fmt.Errorf("lost the server: %w", store.ErrTemporary)
	c.ok("USER " + testUser)
	if got := c.err("PASS " + testPassword); !strings.HasPrefix(got, "-ERR [SYS/TEMP] ") {
		t.Errorf("maildrop lock unavailable: %q, want -ERR [SYS/TEMP]", got)
	}
	// Neither refusal kept this node's lock: with the other node's free, a login succeeds.
	o.err = nil
	c.ok("USER " + testUser)
	c.ok("PASS " + testPassword)
	c.ok("QUIT")
	if o.locks.Load() != 1 || o.releases.Load() != 1 {
		t.Errorf("other node's lock taken %d times, released %d times; want 1 and 1", o.locks.Load(), o.releases.Load())
	}
}
