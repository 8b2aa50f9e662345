package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// TestHelperProcess is not a test: it is the "other process" (`letterbox deliver` beside
// `serve`) that the tests below start by running the test binary again.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("LETTERBOX_STORE_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	n, _ := strconv.Atoi(os.Getenv("LETTERBOX_STORE_HELPER_COUNT"))
	// On PostgreSQL the other process is another node on the same database.
	s, err := Open(dir, Options{Logger: quietLogger(), URL: os.Getenv("LETTERBOX_STORE_HELPER_URL")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		os.Exit(2)
	}
	defer s.Close()
	a, err := s.LookupAccount(ctx, os.Getenv("LETTERBOX_STORE_HELPER_USER"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: lookup:", err)
		os.Exit(2)
	}
	for i := 0; i < n; i++ {
		if _, err := s.Deliver(ctx, a.ID, strings.NewReader(simpleMessage(fmt.Sprintf("from helper %d", i))), DeliverOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, "helper: deliver:", err)
			os.Exit(3)
		}
	}
}

func helperCommand(t *testing.T, dir, user string, count int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		"LETTERBOX_STORE_HELPER_DIR="+dir,
		"LETTERBOX_STORE_HELPER_USER="+user,
		"LETTERBOX_STORE_HELPER_COUNT="+strconv.Itoa(count))
	if u := storetest.URL(t, dir); u != "" {
		cmd.Env = append(cmd.Env, "LETTERBOX_STORE_HELPER_URL="+u)
	}
	cmd.Stderr = os.Stderr
	return cmd
}

// waitWatcher waits until the cross-process watcher has seen every change so far (it also
// sees this process's own commits, and wakes their waiters a second time).
func waitWatcher(t *testing.T, s *Store) {
	t.Helper()
	if s.pgListener != nil {
		if err := s.pgListener.Sync(ctx, s.writer); err != nil {
			t.Fatal(err)
		}
		return
	}
	var hi int64
	s.readers.QueryRow(`SELECT coalesce(max(modseq), 0) FROM changes`).Scan(&hi)
	deadline := time.Now().Add(5 * time.Second)
	for s.watcher.lastMod.Load() < hi {
		if time.Now().After(deadline) {
			t.Fatal("change watcher did not catch up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestWatchInProcess(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	ch, cancel := s.Watch(a.ID)
	ch2, cancel2 := s.Watch(a.ID)
	defer cancel2()
	other, cancelOther := s.Watch(b.ID)
	defer cancelOther()
	waitWatcher(t, s) // its echo of the account creations must not count below
	drain(ch)
	drain(ch2)
	drain(other)

	// Coalesced: five commits, one pending wake-up, and the writer never blocked.
	for i := 0; i < 5; i++ {
		deliver(t, s, a.ID, simpleMessage(fmt.Sprint(i)), DeliverOptions{})
	}
	for _, c := range []<-chan struct{}{ch, ch2} {
		select {
		case <-c:
		default:
			t.Fatal("waiter not woken by a commit")
		}
	}
	select {
	case <-other:
		t.Error("bob's waiter woken by alice's mail")
	case <-time.After(100 * time.Millisecond):
	}

	// Each kind of write wakes.
	in := inbox(t, s, a.ID)
	writes := map[string]func() error{
		"flags":   func() error { _, err := s.SetFlags(ctx, in.ID, []uint32{1}, FlagsAdd, []string{FlagSeen}); return err },
		"expunge": func() error { _, err := s.Expunge(ctx, in.ID, []uint32{1}); return err },
		"create":  func() error { _, err := s.CreateMailbox(ctx, a.ID, "New", ""); return err },
		"rename":  func() error { return s.RenameMailbox(ctx, a.ID, "New", "Newer") },
		"delete":  func() error { return s.DeleteMailbox(ctx, a.ID, "Newer") },
	}
	for _, name := range []string{"flags", "expunge", "create", "rename", "delete"} {
		drain(ch)
		if err := writes[name](); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		default:
			t.Errorf("%s did not wake the waiter", name)
		}
	}

	cancel()
	cancel() // twice is fine
	drain(ch)
	deliver(t, s, a.ID, simpleMessage("after cancel"), DeliverOptions{})
	time.Sleep(50 * time.Millisecond)
	select {
	case <-ch:
		t.Error("woken after cancel")
	default:
	}
}

// WatchFunc's function is called, synchronously with the commit as Watch's channel is
// filled, once per commit touching the account, never for another account or after cancel.
func TestWatchFunc(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	waitWatcher(t, s)
	var mu sync.Mutex
	calls := map[string]int{}
	wake := func(name string) func() {
		return func() { mu.Lock(); calls[name]++; mu.Unlock() }
	}
	cancelA := s.WatchFunc(a.ID, wake("alice"))
	cancelB := s.WatchFunc(b.ID, wake("bob"))
	defer cancelB()
	count := func(name string) int { mu.Lock(); defer mu.Unlock(); return calls[name] }

	for i := 0; i < 3; i++ {
		deliver(t, s, a.ID, simpleMessage(fmt.Sprint(i)), DeliverOptions{})
	}
	// The in-process commit notifies before it returns; the database watcher may echo it.
	if n := count("alice"); n < 3 {
		t.Errorf("alice's function called %d times for 3 commits", n)
	}
	if n := count("bob"); n != 0 {
		t.Errorf("bob's function called %d times for alice's mail", n)
	}
	cancelA()
	cancelA() // twice is fine
	waitWatcher(t, s)
	before := count("alice")
	deliver(t, s, a.ID, simpleMessage("after cancel"), DeliverOptions{})
	waitWatcher(t, s)
	if n := count("alice"); n != before {
		t.Errorf("called %d times after cancel", n-before)
	}
}

func TestWatchOtherProcess(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	a := newAccount(t, s, "alice")
	ch, cancel := s.Watch(a.ID)
	defer cancel()
	waitWatcher(t, s)
	drain(ch)

	cmd := helperCommand(t, dir, "alice", 1)
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	committed := time.Now() // the helper's commit happened before it exited
	select {
	case <-ch:
		t.Logf("woken %v after the other process exited", time.Since(committed))
	case <-time.After(time.Second):
		t.Fatal("not woken within 1s of another process's commit")
	}
	msgs := mustMessages(t, s, inbox(t, s, a.ID).ID)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if got := readMessage(t, s, msgs[0].MailboxID, msgs[0].UID); got != simpleMessage("from helper 0") {
		t.Errorf("message from the other process: %q", got)
	}
}

// Many goroutines delivering, flagging and expunging, and another process delivering, all
// at once: afterwards every count, UID and counter must agree and the database be sound.
func TestConcurrency(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	const (
		deliverers   = 6
		perDeliverer = 15
		helperCount  = 25
	)
	helper := helperCommand(t, dir, "alice", helperCount)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}

	var wg, deliverersDone sync.WaitGroup
	errs := make(chan error, 100)
	uidsBy := make([][]uint32, deliverers)
	for g := 0; g < deliverers; g++ {
		deliverersDone.Go(func() {
			for i := 0; i < perDeliverer; i++ {
				msg := simpleMessage(fmt.Sprintf("g%d m%d", g, i)) + strings.Repeat("pad\r\n", rand.IntN(20000))
				d, err := s.Deliver(ctx, a.ID, strings.NewReader(msg), DeliverOptions{})
				if err != nil {
					errs <- err
					return
				}
				if d.Size != int64(len(msg)) {
					errs <- fmt.Errorf("size %d, want %d", d.Size, len(msg))
				}
				uidsBy[g] = append(uidsBy[g], d.UID)
			}
		})
	}
	stop := make(chan struct{})
	var expunged sync.Map
	for g := 0; g < 3; g++ {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				u := uint32(1 + rand.IntN(100))
				if _, err := s.SetFlags(ctx, in.ID, []uint32{u}, FlagsAdd, []string{FlagDeleted, "k"}); err != nil {
					errs <- err
					return
				}
				if g == 0 {
					got, err := s.Expunge(ctx, in.ID, nil)
					if err != nil {
						errs <- err
						return
					}
					for _, u := range got {
						if _, dup := expunged.LoadOrStore(u, true); dup {
							errs <- fmt.Errorf("UID %d expunged twice", u)
						}
					}
				}
				if _, err := s.Messages(ctx, in.ID); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Readers stream bodies meanwhile.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, m := range mustMessagesNoT(s, in.ID) {
				if b, err := s.OpenMessage(ctx, in.ID, m.UID); err == nil {
					buf := make([]byte, 100)
					b.ReadAt(buf, 0)
					b.Close()
				}
			}
		}
	})
	if err := helper.Wait(); err != nil {
		t.Errorf("helper: %v", err)
	}
	deliverersDone.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Each deliverer saw increasing UIDs; all UIDs are distinct.
	all := map[uint32]bool{}
	for g, us := range uidsBy {
		for i, u := range us {
			if i > 0 && u <= us[i-1] {
				t.Errorf("deliverer %d: UIDs not increasing: %v", g, us)
			}
			if all[u] {
				t.Errorf("UID %d handed out twice", u)
			}
			all[u] = true
		}
	}
	total := deliverers*perDeliverer + helperCount
	var nExpunged int
	expunged.Range(func(_, _ any) bool { nExpunged++; return true })
	msgs := mustMessages(t, s, in.ID)
	if len(msgs) != total-nExpunged {
		t.Errorf("%d messages, want %d delivered - %d expunged", len(msgs), total, nExpunged)
	}
	mb := inbox(t, s, a.ID)
	if mb.UIDNext != uint32(total+1) {
		t.Errorf("uid_next %d, want %d", mb.UIDNext, total+1)
	}
	var size int64
	for _, m := range msgs {
		size += m.Size
	}
	acct, _ := s.LookupAccount(ctx, "alice")
	if acct.Messages != int64(len(msgs)) || acct.UsedBytes != size {
		t.Errorf("account counters %d messages %d bytes, want %d %d", acct.Messages, acct.UsedBytes, len(msgs), size)
	}
	st, _ := s.Status(ctx, in.ID)
	if st.Messages != int64(len(msgs)) || st.Size != size {
		t.Errorf("status %+v", st)
	}
	checkIntegrity(t, s)
}

func mustMessagesNoT(s *Store, mailboxID int64) []Message {
	msgs, _ := s.Messages(ctx, mailboxID)
	return msgs
}

func checkIntegrity(t *testing.T, s *Store) {
	t.Helper()
	if !s.pg { // PostgreSQL checks its foreign keys itself, and has no integrity_check
		var result string
		if err := s.readers.QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil || result != "ok" {
			t.Errorf("integrity_check: %q %v", result, err)
		}
		rows, err := s.readers.Query(`PRAGMA foreign_key_check`)
		if err != nil {
			t.Fatal(err)
		}
		if rows.Next() {
			t.Error("foreign key violations")
		}
		rows.Close()
	}
	checks := map[string]string{
		"bodies without messages":   `SELECT count(*) FROM bodies WHERE id NOT IN (SELECT body_id FROM messages)`,
		"chunks without bodies":     `SELECT count(*) FROM body_chunks WHERE body_id NOT IN (SELECT id FROM bodies)`,
		"bodies of wrong size":      `SELECT count(*) FROM bodies b WHERE size != (SELECT coalesce(sum(length(data)), 0) FROM body_chunks WHERE body_id = b.id)`,
		"UIDs at or above uid_next": `SELECT count(*) FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id WHERE m.uid >= x.uid_next`,
		"wrong counters": `SELECT count(*) FROM accounts a WHERE message_count != (SELECT count(*) FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id WHERE x.account_id = a.id)
			OR used_bytes != (SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id WHERE x.account_id = a.id)`,
		"mailbox modseq behind": `SELECT count(*) FROM mailboxes x WHERE modseq < (SELECT coalesce(max(modseq), 0) FROM changes WHERE mailbox_id = x.id)`,
	}
	for what, q := range checks {
		var n int
		if err := s.readers.QueryRow(q).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d (%v)", what, n, err)
		}
	}
}

func TestBackup(t *testing.T) {
	sqliteOnly(t, "Backup writes an SQLite file")
	s := newStore(t)
	a := newAccount(t, s, "alice")
	raw, _ := bigMessage(200 << 10)
	deliver(t, s, a.ID, raw, DeliverOptions{})
	deliver(t, s, a.ID, simpleMessage("two"), DeliverOptions{})
	path := filepath.Join(t.TempDir(), "backup.db")
	os.WriteFile(path, []byte("old backup"), 0o600) // replaced
	if err := s.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	// The copy is a complete store.
	dir := t.TempDir()
	data, _ := os.ReadFile(path)
	os.WriteFile(filepath.Join(dir, DBFile), data, 0o600)
	b := openStore(t, dir)
	acct, err := b.LookupAccount(ctx, "alice")
	if err != nil || acct.Messages != 2 {
		t.Fatalf("backup account %+v %v", acct, err)
	}
	if got := readMessage(t, b, inbox(t, b, acct.ID).ID, 1); got != strings.ReplaceAll(raw, "\n", "\r\n") {
		t.Error("backup message differs")
	}
	if _, err := b.Authenticate(ctx, "alice", "secret"); err != nil {
		t.Errorf("backup auth: %v", err)
	}
	checkIntegrity(t, b)
	matches, _ := filepath.Glob(path + ".tmp-*")
	if len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

// The watcher checks for changes after every commit; reading them must cost what changed,
// not what the change log holds.
func TestChangedAccountsQueryReadsARange(t *testing.T) {
	sqliteOnly(t, "SQLite's query plan of the file watcher")
	s := newStore(t)
	rows, err := s.readers.QueryContext(ctx, `EXPLAIN QUERY PLAN `+changedAccountsQuery, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if len(plan) == 0 || !strings.Contains(plan[0], "INTEGER PRIMARY KEY") {
		t.Errorf("query plan %q: want a search of the modseq range", plan)
	}
}

// Callers that ask the same question while a query runs share the next query, instead of
// making one each.
func TestSharedReadsShareQueries(t *testing.T) {
	var r sharedReads
	var queries atomic.Int32
	release := make(chan struct{})
	query := func(context.Context) (any, error) {
		n := queries.Add(1)
		if n == 1 {
			<-release
		}
		return int(n), nil
	}
	key := readKey{kind: readChanges, id: 1}
	first := make(chan any)
	go func() {
		out, _ := r.read(ctx, key, nil, query)
		first <- out
	}()
	for queries.Load() == 0 { // the first query is running
		time.Sleep(time.Millisecond)
	}
	const callers = 100
	var wg sync.WaitGroup
	results := make(chan any, callers)
	for range callers {
		wg.Go(func() {
			out, err := r.read(ctx, key, nil, query)
			if err != nil {
				t.Error(err)
			}
			results <- out
		})
	}
	time.Sleep(50 * time.Millisecond) // let them join (a late one only makes another query)
	close(release)
	wg.Wait()
	close(results)
	if out := <-first; out != 1 {
		t.Errorf("first caller got %v, want the first query's answer", out)
	}
	for out := range results {
		if out == 1 {
			t.Fatal("a caller got the answer of a query that began before it called")
		}
	}
	if n := queries.Load(); n > 10 {
		t.Errorf("%d callers made %d queries", callers+1, n)
	}
}

// However many sessions share reads of the change log, each sees every change committed
// before it asked (Changes), or every change it was woken for (the AsOf reads).
func TestChangesSharedAreFresh(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "a@example.com")
	in := inbox(t, s, a.ID)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 { // readers keep shared queries in flight and answers kept
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := s.Notified(a.ID)
				_, err1 := s.Changes(ctx, a.ID, 0)
				_, err2 := s.ChangesAsOf(ctx, a.ID, 0, n)
				_, err3 := s.MessagesAfterAsOf(ctx, a.ID, in.ID, 0, n)
				if err := errors.Join(err1, err2, err3); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 100 {
		d := deliver(t, s, a.ID, simpleMessage(fmt.Sprint("fresh ", i)), DeliverOptions{})
		changes, err := s.Changes(ctx, a.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) == 0 || changes[len(changes)-1].ModSeq < d.ModSeq {
			t.Fatalf("delivery %d (modseq %d) missing from Changes", i, d.ModSeq)
		}
		// Deliver returned after waking the watchers: notification n covers it.
		n := s.Notified(a.ID)
		changes, err = s.ChangesAsOf(ctx, a.ID, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) == 0 || changes[len(changes)-1].ModSeq < d.ModSeq {
			t.Fatalf("delivery %d (modseq %d) missing from ChangesAsOf", i, d.ModSeq)
		}
		msgs, err := s.MessagesAfterAsOf(ctx, a.ID, in.ID, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != i+1 || msgs[i].UID != d.UID {
			t.Fatalf("delivery %d (UID %d) missing from MessagesAfterAsOf: %d messages", i, d.UID, len(msgs))
		}
	}
	close(stop)
	wg.Wait()
}

// The watcher skips this process's own commits only when nothing came between: a commit
// of another process just before one of ours still wakes its account's waiters here.
func TestWatchOtherProcessJustBeforeOwnCommit(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	other := openStore(t, dir) // another process, as far as s can tell
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	waitWatcher(t, s)
	ch, cancel := s.Watch(a.ID)
	defer cancel()
	for i := range 20 {
		drain(ch)
		deliver(t, other, a.ID, simpleMessage(fmt.Sprint("other ", i)), DeliverOptions{})
		deliver(t, s, b.ID, simpleMessage(fmt.Sprint("own ", i)), DeliverOptions{})
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: alice's waiter not woken for the other process's delivery", i)
		}
	}
}
