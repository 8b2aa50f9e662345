package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests of PostgreSQL as a cluster: several stores (nodes) opened on one database.
// They need a PostgreSQL server (LETTERBOX_TEST_PG_URL, scripts/pg-test-cluster) and skip
// without one, whatever LETTERBOX_TEST_STORE says.

func openNode(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{Logger: quietLogger(), URL: url})
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Writers on two nodes deliver and change flags at once: UIDs come out dense and unique,
// UIDNEXT follows them, modseqs are unique and without gaps, and a session on one node
// that follows the change log (as IMAP does after every wake-up) sees every change once:
// modseqs are committed in order, so nothing commits below a modseq already read.
func TestPostgresNodesAllocateUIDsAndModSeqs(t *testing.T) {
	url := pgTestDatabase(t)
	a, b := openNode(t, url), openNode(t, url)
	acct := newAccount(t, a, "alice")
	inA := inbox(t, a, acct.ID)
	if inB := inbox(t, b, acct.ID); inB.ID != inA.ID || inB.UIDValidity != inA.UIDValidity {
		t.Fatalf("node B's INBOX %+v, node A's %+v", inB, inA)
	}

	// The follower: node B's view of the change log, read after every wake-up.
	since := int64(0)
	if cs, err := b.Changes(ctx, acct.ID, 0); err != nil {
		t.Fatal(err)
	} else if len(cs) > 0 {
		since = cs[len(cs)-1].ModSeq
	}
	start := since
	wake, cancel := b.Watch(acct.ID)
	defer cancel()
	stop := make(chan struct{})
	followed := make(chan []Change)
	follow := func() ([]Change, error) {
		cs, err := b.Changes(ctx, acct.ID, since)
		if len(cs) > 0 {
			since = cs[len(cs)-1].ModSeq
		}
		return cs, err
	}
	go func() {
		var seen []Change
		for {
			select {
			case <-wake:
			case <-stop:
				cs, err := follow()
				if err != nil {
					t.Error(err)
				}
				followed <- append(seen, cs...)
				return
			}
			cs, err := follow()
			if err != nil {
				t.Error(err)
			}
			seen = append(seen, cs...)
		}
	}()

	const writers, each = 4, 10
	var mu sync.Mutex
	var got []uint32
	var wg sync.WaitGroup
	for _, node := range []*Store{a, b} {
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					d, err := node.Deliver(ctx, acct.ID, strings.NewReader(simpleMessage(fmt.Sprintf("w%d m%d", w, i))), DeliverOptions{})
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := node.SetFlags(ctx, d.MailboxID, []uint32{d.UID}, FlagsAdd, []string{`\Seen`}); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got = append(got, d.UID)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(stop)
	seen := <-followed
	if t.Failed() {
		return
	}

	const total = 2 * writers * each
	slices.Sort(got)
	for i, uid := range got {
		if uid != uint32(i+1) {
			t.Fatalf("UIDs handed out %v, want 1..%d each once", got, total)
		}
	}
	msgs, err := a.Messages(ctx, inA.ID)
	if err != nil || !slices.Equal(uids(msgs), got) {
		t.Fatalf("node A lists UIDs %v (%v), want 1..%d", uids(msgs), err, total)
	}
	if m := inbox(t, b, acct.ID); m.UIDNext != total+1 {
		t.Errorf("UIDNEXT %d, want %d", m.UIDNext, total+1)
	}

	all, err := a.Changes(ctx, acct.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The only account: its change log is every modseq handed out, 1, 2, 3, ...
	for i, c := range all {
		if c.ModSeq != int64(i+1) {
			t.Fatalf("change %d has modseq %d: modseqs with a gap or out of order", i, c.ModSeq)
		}
	}
	if n := len(all) - int(start); n != 2*total {
		t.Errorf("%d changes after the account's creation, want %d (an append and a flag change per message)", n, 2*total)
	}
	var want []Change
	for _, c := range all {
		if c.ModSeq > start {
			want = append(want, c)
		}
	}
	if !slices.Equal(seen, want) {
		t.Errorf("node B's follower saw %d changes, the log has %d after modseq %d: a change committed below a modseq already read", len(seen), len(want), start)
	}
	modseqs := map[int64]bool{}
	for _, m := range msgs {
		if modseqs[m.ModSeq] {
			t.Errorf("two messages with modseq %d", m.ModSeq)
		}
		modseqs[m.ModSeq] = true
	}
	if m := inbox(t, a, acct.ID); m.ModSeq != all[len(all)-1].ModSeq {
		t.Errorf("HIGHESTMODSEQ %d, want the last change's %d", m.ModSeq, all[len(all)-1].ModSeq)
	}
	checkIntegrity(t, a)
}

// A commit on one node wakes the watchers of its account on the other (LISTEN/NOTIFY),
// and what woke them is in the change log they read.
func TestPostgresNodesNotifyEachOther(t *testing.T) {
	url := pgTestDatabase(t)
	a, b := openNode(t, url), openNode(t, url)
	acct := newAccount(t, a, "alice")
	other := newAccount(t, a, "bob")
	in := inbox(t, a, acct.ID)

	wakeB, cancelB := b.Watch(acct.ID)
	defer cancelB()
	wakeA, cancelA := a.Watch(acct.ID)
	defer cancelA()
	woken := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no wake-up", what)
		}
	}

	d := deliver(t, a, acct.ID, simpleMessage("to node A"), DeliverOptions{})
	woken(wakeB, "a delivery on node A, watched on node B")
	cs, err := b.Changes(ctx, acct.ID, d.ModSeq-1)
	if err != nil || len(cs) != 1 || cs[0].Kind != ChangeAppend || cs[0].UID != d.UID {
		t.Fatalf("node B reads %+v (%v), want the append of UID %d", cs, err, d.UID)
	}

	// Node B expunges; node A's watcher wakes and reads the tombstone.
	drain(wakeA)
	if _, err := b.SetFlags(ctx, in.ID, []uint32{d.UID}, FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	gone, err := b.Expunge(ctx, in.ID, nil)
	if err != nil || !slices.Equal(gone, []uint32{d.UID}) {
		t.Fatalf("Expunge on node B: %v, %v", gone, err)
	}
	woken(wakeA, "an expunge on node B, watched on node A")
	v, err := a.Vanished(ctx, in.ID, d.ModSeq)
	if err != nil || !v.Exact || len(v.UIDs) != 1 || v.UIDs[0].Start != d.UID {
		t.Errorf("node A's Vanished after the expunge: %+v, %v", v, err)
	}

	// Another account's commits do not wake alice's watchers: waking is per account. Node
	// B's own expunge woke its watcher twice, directly and by its notification, which may
	// still be on its way: wait for it before draining.
	if err := b.pgListener.Sync(ctx, b.writer); err != nil {
		t.Fatal(err)
	}
	drain(wakeB)
	deliver(t, a, other.ID, simpleMessage("to bob"), DeliverOptions{})
	if err := b.pgListener.Sync(ctx, b.writer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wakeB:
		t.Error("a delivery to bob woke alice's watcher on node B")
	default:
	}
}

// One POP3 maildrop lock per account across the nodes: a second node is refused while the
// first holds it, gets it once released, and gets it when the holding node goes away
// (its connection ends) without releasing.
func TestPostgresMaildropLock(t *testing.T) {
	url := pgTestDatabase(t)
	a, b := openNode(t, url), openNode(t, url)
	alice := newAccount(t, a, "alice")
	bob := newAccount(t, a, "bob")

	release, err := a.LockMaildrop(ctx, alice.ID)
	if err != nil {
		t.Fatalf("node A locks alice: %v", err)
	}
	if _, err := b.LockMaildrop(ctx, alice.ID); !errors.Is(err, ErrMaildropInUse) {
		t.Fatalf("node B locks alice while node A holds her maildrop: %v, want ErrMaildropInUse", err)
	}
	if _, err := a.LockMaildrop(ctx, alice.ID); !errors.Is(err, ErrMaildropInUse) {
		t.Fatalf("node A locks alice a second time: %v, want ErrMaildropInUse (another session of the same node)", err)
	}
	releaseBob, err := b.LockMaildrop(ctx, bob.ID)
	if err != nil {
		t.Fatalf("node B locks bob while alice is locked: %v", err)
	}
	releaseBob()
	release()
	release() // a second call is harmless
	releaseB, err := b.LockMaildrop(ctx, alice.ID)
	if err != nil {
		t.Fatalf("node B locks alice after node A released her: %v", err)
	}

	// Node B goes away holding the lock: its connections end, and so does the lock.
	b.Close()
	releaseB() // after Close: must not hang or panic
	c := openNode(t, url)
	r, err := c.LockMaildrop(ctx, alice.ID)
	for i := 0; errors.Is(err, ErrMaildropInUse) && i < 100; i++ {
		// The server notices a closed connection at once, but its backend ends a moment
		// later; the lock goes with it.
		time.Sleep(50 * time.Millisecond)
		r, err = c.LockMaildrop(ctx, alice.ID)
	}
	if err != nil {
		t.Fatalf("node C locks alice after node B closed: %v", err)
	}
	r()
}

// On SQLite there is one serving process: the lock between nodes is always granted.
func TestMaildropLockSQLite(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := newAccount(t, s, "alice")
	r1, err1 := s.LockMaildrop(ctx, a.ID)
	r2, err2 := s.LockMaildrop(ctx, a.ID)
	if err1 != nil || err2 != nil {
		t.Fatalf("LockMaildrop on SQLite: %v, %v", err1, err2)
	}
	r1()
	r2()
}
