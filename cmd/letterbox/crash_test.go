package main

// The crash test: the real binary under a burst of LMTP deliveries, IMAP APPENDs and POP3
// DELE+QUIT sessions, killed with SIGKILL at a random moment, restarted, and checked
// against what every client was told, several rounds over the same data directory.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// crashLedger is what the clients of one round were told, and what they tried.
type crashLedger struct {
	mu     sync.Mutex
	bodies map[string][]byte // every message a client tried to store, by Message-ID
	owner  map[string]string // Message-ID -> account it was sent to
	acked  map[string]uint32 // got LMTP 250 or APPEND OK this round: Message-ID -> APPENDUID (0 for LMTP)
	quits  []pop3Quit        // POP3 sessions of this round that sent QUIT
	counts map[string]int    // what was acknowledged, over all rounds: "lmtp", "append", "quit"
	busy   chan struct{}     // closed once this round has acknowledged an APPEND and a QUIT
	round  map[string]bool   // kinds acknowledged this round
}

// startRound forgets the previous round's acknowledgements (checked by now).
func (l *crashLedger) startRound() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked = map[string]uint32{}
	l.quits = nil
	l.round = map[string]bool{}
	l.busy = make(chan struct{})
}

// counted records one acknowledgement of kind; l.mu is held.
func (l *crashLedger) counted(kind string) {
	l.counts[kind]++
	if !l.round["append"] || !l.round["quit"] {
		l.round[kind] = true
		if l.round["append"] && l.round["quit"] {
			close(l.busy)
		}
	}
}

// pop3Quit is one POP3 session that marked ids deleted and sent QUIT; ok when +OK came.
type pop3Quit struct {
	account string
	ids     []string
	ok      bool
}

func (l *crashLedger) newMessage(id, account string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: alice@example.org\r\nTo: %s\r\nSubject: crash test\r\nMessage-ID: %s\r\n\r\n", account, id)
	for b.Len() < size {
		fmt.Fprintf(&b, "%s line %d of a message that must come back whole\r\n", id, b.Len())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bodies[id] = b.Bytes()
	l.owner[id] = account
	return b.Bytes()
}

func (l *crashLedger) ack(kind, id string, uid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[id] = uid
	l.counted(kind)
}

// quit records a QUIT before it is sent and returns a function to call on +OK.
func (l *crashLedger) quit(account string, ids []string) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.quits = append(l.quits, pop3Quit{account: account, ids: ids})
	i := len(l.quits) - 1
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.quits[i].ok = true
		l.counted("quit")
	}
}

// mailboxState is what the previous check found in an account's INBOX.
type mailboxState struct {
	uidValidity uint32
	uidNext     uint32
	present     map[string]uint32 // Message-ID -> UID
}

// TestCrashRounds: acknowledged means durable, under kill -9 at random moments. Each round
// starts `letterbox serve`, runs LMTP, IMAP APPEND and POP3 clients at once, kills the
// server with SIGKILL, and then, with the server dead, checks:
//
//   - PRAGMA integrity_check is ok;
//   - every message that got LMTP 250 or APPEND OK is there, whole, once, and at the UID
//     APPENDUID named;
//   - nothing that was there is gone unless a POP3 session marked it and sent QUIT. RFC
//     1939 §6: the deletions happen in the UPDATE state, entered by QUIT; a QUIT answered
//     +OK has removed all of its session's messages, a QUIT left unanswered by the kill has
//     removed all or none of them (one transaction), and a session that never sent QUIT
//     has removed none;
//   - UIDVALIDITY never changes, UIDNEXT never shrinks, and a message new since the last
//     check has a UID at or above the UIDNEXT seen then (UIDs are never reused).
//
// LETTERBOX_CRASH_SEED repeats a run's random choices (the kill moments, the POP3 sessions'
// choices, message sizes); LETTERBOX_CRASH_ROUNDS sets the number of rounds (default 5).
func TestCrashRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	seed := time.Now().UnixNano()
	if v := os.Getenv("LETTERBOX_CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("LETTERBOX_CRASH_SEED: %v", err)
		}
	}
	rounds := 5
	if v := os.Getenv("LETTERBOX_CRASH_ROUNDS"); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			t.Fatalf("LETTERBOX_CRASH_ROUNDS=%q", v)
		}
	}
	t.Logf("seed %d (LETTERBOX_CRASH_SEED=%d repeats it)", seed, seed)
	rng := rand.New(rand.NewSource(seed))

	accounts := []string{"crash0@example.net", "crash1@example.net"}
	data := t.TempDir()
	led := &crashLedger{bodies: map[string][]byte{}, owner: map[string]string{}, counts: map[string]int{}}
	states := map[string]*mailboxState{}

	for round := 1; round <= rounds; round++ {
		led.startRound()
		srv := startE2E(t, data)
		if round == 1 {
			for _, a := range accounts {
				srv.addUser(a, "pw")
				for i := 0; i < 5; i++ { // something for POP3 to delete from the start
					id := fmt.Sprintf("<seed.%d@%s>", i, a)
					if err := lmtpDeliverBody(srv.ports["lmtp"], a, led.newMessage(id, a, 200)); err != nil {
						t.Fatal(err)
					}
					led.ack("lmtp", id, 0)
				}
			}
		}

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		run := func(worker func(ctx context.Context, rng *rand.Rand)) {
			wg.Add(1)
			r := rand.New(rand.NewSource(rng.Int63()))
			go func() {
				defer wg.Done()
				worker(ctx, r)
			}()
		}
		for w := 0; w < 2; w++ {
			run(func(ctx context.Context, r *rand.Rand) {
				for i := 0; ctx.Err() == nil; i++ {
					a := accounts[r.Intn(len(accounts))]
					id := fmt.Sprintf("<r%d.lmtp%d.%d@letterbox.test>", round, w, i)
					if lmtpDeliverBody(srv.ports["lmtp"], a, led.newMessage(id, a, crashSize(r))) != nil {
						return
					}
					led.ack("lmtp", id, 0)
				}
			})
		}
		for w := 0; w < 4; w++ {
			a := accounts[w%len(accounts)]
			run(func(ctx context.Context, r *rand.Rand) {
				crashAppender(ctx, r, srv.ports["imap"], a, fmt.Sprintf("r%d.imap%d", round, w), led)
			})
		}
		for _, a := range accounts {
			run(func(ctx context.Context, r *rand.Rand) {
				crashPOP3(ctx, r, srv.ports["pop3"], a, led)
			})
		}
		// The kill comes at a random moment once every kind of client is at work (logins
		// hash passwords, which takes a while on a loaded machine).
		select {
		case <-led.busy:
		case <-time.After(30 * time.Second): // a guard; the counts below then fail the test
		}
		time.Sleep(time.Duration(rng.Intn(1000)) * time.Millisecond)
		srv.kill()
		cancel()
		wg.Wait()

		for _, q := range led.quits {
			if !q.ok {
				led.counts["quit cut off"]++
			}
		}
		checkIntegrity(t, data)
		checkAfterCrash(t, round, data, accounts, led, states)
	}
	for _, kind := range []string{"lmtp", "append", "quit"} {
		if led.counts[kind] == 0 {
			t.Errorf("no %s was acknowledged in %d rounds: the test proved nothing about it", kind, rounds)
		}
	}
	t.Logf("acknowledged over %d rounds: %v", rounds, led.counts)
}

// crashSize is a message size: mostly small, sometimes over the store's 64 KiB chunk.
func crashSize(r *rand.Rand) int {
	if r.Intn(5) == 0 {
		return 64<<10 + r.Intn(128<<10)
	}
	return 200 + r.Intn(4000)
}

// checkIntegrity runs PRAGMA integrity_check on the dead server's database, read-only.
func checkIntegrity(t *testing.T, data string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, store.DBFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&result); err != nil || result != "ok" {
		t.Fatalf("integrity_check after kill -9: %q, %v", result, err)
	}
}

var messageIDHeader = regexp.MustCompile(`(?m)^Message-ID: (\S+)\r$`)

// checkAfterCrash compares each account's INBOX, read from the store with the server
// dead, with what the clients of this round were told, then remembers it for the next.
func checkAfterCrash(t *testing.T, round int, data string, accounts []string, led *crashLedger, states map[string]*mailboxState) {
	t.Helper()
	for _, a := range accounts {
		mb, msgs, bodies := readMailbox(t, data, a, "INBOX")
		now := &mailboxState{uidValidity: mb.UIDValidity, uidNext: mb.UIDNext, present: map[string]uint32{}}
		for i, m := range msgs {
			raw := bodies[i]
			id := messageIDHeader.FindSubmatch(raw)
			if id == nil {
				t.Fatalf("round %d, %s: UID %d has no Message-ID", round, a, m.UID)
			}
			mid := string(id[1])
			if sent, ok := led.bodies[mid]; !ok || led.owner[mid] != a || !bytes.HasSuffix(raw, sent) {
				t.Fatalf("round %d, %s: UID %d (%s) is not a whole message sent to this account", round, a, m.UID, mid)
			}
			if prev, dup := now.present[mid]; dup {
				t.Fatalf("round %d, %s: %s stored twice, UIDs %d and %d", round, a, mid, prev, m.UID)
			}
			now.present[mid] = m.UID
			if m.UID >= mb.UIDNext {
				t.Fatalf("round %d, %s: UID %d not below UIDNEXT %d", round, a, m.UID, mb.UIDNext)
			}
		}

		mayGo := map[string]bool{}
		for _, q := range led.quits {
			if q.account != a {
				continue
			}
			gone := 0
			for _, id := range q.ids {
				mayGo[id] = true
				if _, ok := now.present[id]; !ok {
					gone++
				}
			}
			switch {
			case q.ok && gone != len(q.ids):
				t.Errorf("round %d, %s: QUIT got +OK, yet %d of the deleted %v are still there", round, a, len(q.ids)-gone, q.ids)
			case !q.ok && gone != 0 && gone != len(q.ids):
				t.Errorf("round %d, %s: a QUIT cut off by the kill removed %d of %v: not all or nothing", round, a, gone, q.ids)
			}
		}

		must := map[string]bool{} // was there at the last check, or acknowledged since
		if prev := states[a]; prev != nil {
			if mb.UIDValidity != prev.uidValidity {
				t.Errorf("round %d, %s: UIDVALIDITY changed from %d to %d", round, a, prev.uidValidity, mb.UIDValidity)
			}
			if mb.UIDNext < prev.uidNext {
				t.Errorf("round %d, %s: UIDNEXT went back from %d to %d", round, a, prev.uidNext, mb.UIDNext)
			}
			for id, uid := range now.present {
				if old, seen := prev.present[id]; seen && old != uid {
					t.Errorf("round %d, %s: %s moved from UID %d to %d", round, a, id, old, uid)
				} else if !seen && uid < prev.uidNext {
					t.Errorf("round %d, %s: new message %s got UID %d, below the earlier UIDNEXT %d: a UID was reused", round, a, id, uid, prev.uidNext)
				}
			}
			for id := range prev.present {
				must[id] = true
			}
		}
		for id, appendUID := range led.acked {
			if led.owner[id] != a {
				continue
			}
			must[id] = true
			if uid, ok := now.present[id]; ok && appendUID != 0 && uid != appendUID {
				t.Errorf("round %d, %s: %s is at UID %d, APPENDUID said %d", round, a, id, uid, appendUID)
			}
		}
		for id := range must {
			if _, ok := now.present[id]; !ok && !mayGo[id] {
				t.Errorf("round %d, %s: %s was acknowledged or stored, no POP3 QUIT removed it, and it is gone", round, a, id)
			}
		}
		states[a] = now
	}
}

func lmtpDeliverBody(addr, rcpt string, msg []byte) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	tp := textproto.NewConn(conn)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return err
	}
	for _, s := range []struct {
		cmd  string
		code int
	}{{"LHLO crash.test", 250}, {"MAIL FROM:<alice@example.org>", 250}, {"RCPT TO:<" + rcpt + ">", 250}, {"DATA", 354}} {
		if err := tp.PrintfLine("%s", s.cmd); err != nil {
			return err
		}
		if _, _, err := tp.ReadResponse(s.code); err != nil {
			return err
		}
	}
	w := tp.DotWriter()
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	_, _, err = tp.ReadResponse(250)
	return err
}

var appendUID = regexp.MustCompile(`^A\d+ OK \[APPENDUID \d+ (\d+)\]`)

// crashAppender APPENDs to account's INBOX on one IMAP connection until it fails.
func crashAppender(ctx context.Context, r *rand.Rand, addr, account, prefix string, led *crashLedger) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(conn)
	line := func() string {
		l, err := br.ReadString('\n')
		if err != nil {
			return ""
		}
		return strings.TrimRight(l, "\r\n")
	}
	if !strings.HasPrefix(line(), "* OK") {
		return
	}
	fmt.Fprintf(conn, "L LOGIN %s pw\r\n", account)
	for l := line(); !strings.HasPrefix(l, "L "); l = line() {
		if l == "" {
			return
		}
	}
	for i := 0; ctx.Err() == nil; i++ {
		id := fmt.Sprintf("<%s.%d@letterbox.test>", prefix, i)
		msg := led.newMessage(id, account, crashSize(r))
		if _, err := fmt.Fprintf(conn, "A%d APPEND INBOX {%d}\r\n", i, len(msg)); err != nil {
			return
		}
		if !strings.HasPrefix(line(), "+") {
			return
		}
		if _, err := conn.Write(append(msg, "\r\n"...)); err != nil {
			return
		}
		l := line()
		for strings.HasPrefix(l, "* ") {
			l = line()
		}
		m := appendUID.FindStringSubmatch(l)
		if m == nil {
			return
		}
		uid, _ := strconv.ParseUint(m[1], 10, 32)
		led.ack("append", id, uint32(uid))
	}
}

// crashPOP3 runs POP3 sessions on account until one fails: each marks a few messages
// deleted (learning their Message-IDs with TOP n 0) and mostly QUITs, sometimes just hangs
// up (which must delete nothing).
func crashPOP3(ctx context.Context, r *rand.Rand, addr, account string, led *crashLedger) {
	for ctx.Err() == nil {
		if !crashPOP3Session(r, addr, account, led) {
			return
		}
	}
}

func crashPOP3Session(r *rand.Rand, addr, account string, led *crashLedger) bool {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(conn)
	cmd := func(format string, args ...any) (string, bool) {
		if tp.PrintfLine(format, args...) != nil {
			return "", false
		}
		l, err := tp.ReadLine()
		return l, err == nil
	}
	if l, err := tp.ReadLine(); err != nil || !strings.HasPrefix(l, "+OK") {
		return false
	}
	if _, ok := cmd("USER %s", account); !ok {
		return false
	}
	l, ok := cmd("PASS pw")
	if !ok {
		return false
	}
	if strings.Contains(l, "[IN-USE]") { // the previous session's lock, just released
		time.Sleep(20 * time.Millisecond)
		return true
	}
	if !strings.HasPrefix(l, "+OK") {
		return false
	}
	l, ok = cmd("STAT")
	var n int
	if !ok || !strings.HasPrefix(l, "+OK") {
		return false
	}
	fmt.Sscanf(l, "+OK %d", &n)
	var ids []string
	for _, i := range r.Perm(n)[:min(n, 1+r.Intn(3))] {
		if l, ok := cmd("TOP %d 0", i+1); !ok || !strings.HasPrefix(l, "+OK") {
			return false
		}
		head, err := tp.ReadDotBytes()
		if err != nil {
			return false
		}
		m := messageIDHeader.FindSubmatch(bytes.ReplaceAll(head, []byte("\n"), []byte("\r\n")))
		if m == nil {
			return false
		}
		if l, ok := cmd("DELE %d", i+1); !ok || !strings.HasPrefix(l, "+OK") {
			return false
		}
		ids = append(ids, string(m[1]))
	}
	if r.Intn(6) == 0 {
		return true // hang up without QUIT: nothing may be deleted
	}
	acked := led.quit(account, ids)
	if l, ok := cmd("QUIT"); !ok || !strings.HasPrefix(l, "+OK") {
		return false
	}
	acked()
	return true
}
