package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// request makes a write request as write does, for driving commitBatch directly.
func request(ctx context.Context, op string, fn func(wt *writeTx) error) *writeRequest {
	return &writeRequest{ctx: ctx, op: op, fn: fn, done: make(chan error, 1)}
}

// deliverRequest is the transaction body of a delivery of msg into accountID's mailbox,
// the way DeliverSpooled runs it.
func deliverRequest(t *testing.T, s *Store, accountID int64, mailbox, msg string) *writeRequest {
	t.Helper()
	sp, err := s.Spool(strings.NewReader(msg), SpoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return request(ctx, "deliver", func(wt *writeTx) error {
		m, err := wt.mailboxByName(accountID, mailbox)
		if err != nil {
			return err
		}
		bodyID, err := wt.spooledBody(sp, nil, sp.size)
		if err != nil {
			return err
		}
		if _, _, err := wt.insertMessage(m, m.UIDNext, bodyID, flagSet{}, 0, 0, sp.size); err != nil {
			return err
		}
		return wt.setUIDNext(m, int64(m.UIDNext)+1)
	})
}

func outcome(req *writeRequest) error {
	select {
	case err := <-req.done:
		return err
	default:
		return errors.New("not answered")
	}
}

// checkMailbox checks that a mailbox holds exactly UIDs 1..n, each with its append in the
// change log, and uid_next n+1.
func checkMailbox(t *testing.T, s *Store, accountID int64, name string, n int) {
	t.Helper()
	m, err := s.MailboxByName(ctx, accountID, name)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Messages(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	var uids []uint32
	for _, msg := range msgs {
		uids = append(uids, msg.UID)
	}
	var want []uint32
	for u := uint32(1); u <= uint32(n); u++ {
		want = append(want, u)
	}
	if !slices.Equal(uids, want) || m.UIDNext != uint32(n+1) {
		t.Errorf("%s: UIDs %v, uid_next %d; want 1..%d, %d", name, uids, m.UIDNext, n, n+1)
	}
	changes, err := s.Changes(ctx, accountID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var appended []uint32
	var last, lastHere int64
	for _, c := range changes {
		if c.ModSeq <= last {
			t.Errorf("change log not increasing: %d after %d", c.ModSeq, last)
		}
		last = c.ModSeq
		if c.MailboxID == m.ID {
			lastHere = c.ModSeq
			if c.Kind == ChangeAppend {
				appended = append(appended, c.UID)
			}
		}
	}
	if !slices.Equal(appended, want) {
		t.Errorf("%s: change log appends %v, want %v", name, appended, want)
	}
	if m.ModSeq != lastHere {
		t.Errorf("%s: mailbox modseq %d, its last change %d", name, m.ModSeq, lastHere)
	}
}

// TestBatchOneFailing runs deliveries for two accounts in one transaction with failures
// between them (no such mailbox, a panic, an expired context, an error after work done): each failure
// undoes only its own work, every other request is committed and answered, UIDs stay
// dense, and the accounts with commits are woken.
func TestBatchOneFailing(t *testing.T) {
	s := newStore(t)
	alice, bob := newAccount(t, s, "alice"), newAccount(t, s, "bob")
	wakeA, cancelA := s.Watch(alice.ID)
	defer cancelA()

	expired, cancel := context.WithCancel(ctx)
	cancel()
	undone := deliverRequest(t, s, bob.ID, "INBOX", simpleMessage("undone"))
	batch := []*writeRequest{
		deliverRequest(t, s, alice.ID, "INBOX", simpleMessage("a1")),
		deliverRequest(t, s, alice.ID, "Nope", simpleMessage("lost")),
		deliverRequest(t, s, bob.ID, "INBOX", simpleMessage("b1")),
		request(ctx, "panics", func(wt *writeTx) error {
			if _, err := wt.exec(`UPDATE mailboxes SET uid_next = 1000 WHERE account_id = ?`, alice.ID); err != nil {
				return err
			}
			panic("a bug")
		}),
		deliverRequest(t, s, alice.ID, "INBOX", simpleMessage("a2")),
		request(expired, "expired", func(wt *writeTx) error { return errors.New("must not run") }),
		// Work done, then an error: the savepoint undoes the work.
		request(ctx, "half done", func(wt *writeTx) error {
			if err := undone.fn(wt); err != nil {
				return err
			}
			return fmt.Errorf("after the work: %w", ErrOverQuota)
		}),
		deliverRequest(t, s, bob.ID, "INBOX", simpleMessage("b2")),
	}
	if left := s.commitBatch(batch); len(left) != 0 {
		t.Fatalf("%d requests left over", len(left))
	}
	want := []error{nil, ErrNoSuchMailbox, nil, errors.New("panic"), nil, context.Canceled, ErrOverQuota, nil}
	for i, req := range batch {
		err := outcome(req)
		switch {
		case want[i] == nil && err != nil:
			t.Errorf("request %d (%s): %v, want success", i, req.op, err)
		case want[i] != nil && err == nil:
			t.Errorf("request %d (%s) succeeded, want %v", i, req.op, want[i])
		case want[i] != nil && !errors.Is(err, want[i]) && !strings.Contains(err.Error(), want[i].Error()):
			t.Errorf("request %d (%s): %v, want %v", i, req.op, err, want[i])
		}
	}
	checkMailbox(t, s, alice.ID, "INBOX", 2)
	checkMailbox(t, s, bob.ID, "INBOX", 2)
	select {
	case <-wakeA:
	case <-time.After(10 * time.Second):
		t.Error("alice's watcher was not woken")
	}
	// The writer goroutine still works.
	deliver(t, s, alice.ID, simpleMessage("a3"), DeliverOptions{})
	checkMailbox(t, s, alice.ID, "INBOX", 3)
}

// TestLoneRequestFailing: a request alone in its transaction runs without a savepoint
// (runRequest); when it fails after doing work, or panics, its work is undone all the
// same, its answer is its own error (not ErrTemporary: nothing else failed), and the next
// request is stored.
func TestLoneRequestFailing(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	undone := deliverRequest(t, s, a.ID, "INBOX", simpleMessage("undone"))
	for _, req := range []*writeRequest{
		request(ctx, "half done", func(wt *writeTx) error {
			if err := undone.fn(wt); err != nil {
				return err
			}
			return fmt.Errorf("after the work: %w", ErrOverQuota)
		}),
		request(ctx, "panics", func(wt *writeTx) error {
			if err := undone.fn(wt); err != nil {
				return err
			}
			panic("a bug")
		}),
	} {
		if left := s.commitBatch([]*writeRequest{req}); len(left) != 0 {
			t.Fatalf("%s: %d requests left over", req.op, len(left))
		}
		err := outcome(req)
		if err == nil || errors.Is(err, ErrTemporary) {
			t.Errorf("%s: %v, want its own error", req.op, err)
		}
		checkMailbox(t, s, a.ID, "INBOX", 0)
	}
	ok := deliverRequest(t, s, a.ID, "INBOX", simpleMessage("stored"))
	if left := s.commitBatch([]*writeRequest{ok}); len(left) != 0 || outcome(ok) != nil {
		t.Fatal("the delivery after them failed")
	}
	checkMailbox(t, s, a.ID, "INBOX", 1)
}

// TestBatchTransactionLost: when a request leaves the shared transaction unusable (SQLite
// rolls a transaction back by itself on some errors, such as a full disk; here the request
// ends it), the requests run before it fail as temporary, nothing of theirs is stored, and
// those after it are handed back to run in the next transaction.
func TestBatchTransactionLost(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	first := deliverRequest(t, s, a.ID, "INBOX", simpleMessage("first"))
	breaker := request(ctx, "breaks", func(wt *writeTx) error {
		if _, err := wt.exec(`ROLLBACK`); err != nil {
			return err
		}
		return errors.New("disk full, say")
	})
	after := deliverRequest(t, s, a.ID, "INBOX", simpleMessage("after"))
	left := s.commitBatch([]*writeRequest{first, breaker, after})
	if len(left) != 1 || left[0] != after {
		t.Fatalf("left over %d requests, want the one after the failure", len(left))
	}
	if err := outcome(first); !errors.Is(err, ErrTemporary) {
		t.Errorf("request before the failure: %v, want ErrTemporary", err)
	}
	if err := outcome(breaker); err == nil {
		t.Error("failing request succeeded")
	}
	checkMailbox(t, s, a.ID, "INBOX", 0)
	if left := s.commitBatch(left); len(left) != 0 || outcome(after) != nil {
		t.Fatalf("retry: %d left, %v", len(left), outcome(after))
	}
	checkMailbox(t, s, a.ID, "INBOX", 1)
}

// TestConcurrentDeliveries: many senders deliver at once into a few accounts through the
// writer goroutine, some of them failing (no such mailbox, over quota). Every delivery
// that returned nil is there, with the UID it was told, UIDs are dense per mailbox, and
// the change log agrees.
func TestConcurrentDeliveries(t *testing.T) {
	s := newStore(t)
	accounts := []Account{newAccount(t, s, "a"), newAccount(t, s, "b"), newAccount(t, s, "c")}
	msg := simpleMessage("concurrent")
	// c takes three messages, then is over quota (no grace).
	if err := s.SetQuota(ctx, "c", int64(3*len(msg))); err != nil {
		t.Fatal(err)
	}
	const senders, each = 16, 15
	var mu sync.Mutex
	got := map[int64][]uint32{} // account -> UIDs acknowledged
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				a := accounts[(i+j)%len(accounts)]
				opts := DeliverOptions{}
				if j%5 == 4 {
					opts.Mailbox = "Nope"
				}
				d, err := s.Deliver(ctx, a.ID, strings.NewReader(msg), opts)
				switch {
				case err == nil:
					mu.Lock()
					got[a.ID] = append(got[a.ID], d.UID)
					mu.Unlock()
				case opts.Mailbox == "Nope" && errors.Is(err, ErrNoSuchMailbox):
				case a.Address == "c" && errors.Is(err, ErrOverQuota):
				default:
					t.Errorf("deliver to %s: %v", a.Address, err)
				}
			}
		}()
	}
	wg.Wait()
	for _, a := range accounts {
		uids := got[a.ID]
		slices.Sort(uids)
		checkMailbox(t, s, a.ID, "INBOX", len(uids))
		for i, u := range uids {
			if u != uint32(i+1) {
				t.Errorf("%s: acknowledged UIDs %v", a.Address, uids)
				break
			}
		}
	}
	if n := len(got[accounts[2].ID]); n != 3 {
		t.Errorf("c (quota: three messages) got %d", n)
	}
}

// TestWriteAfterClose: a write after Close fails at once rather than waiting forever.
func TestWriteAfterClose(t *testing.T) {
	s := openStore(t, t.TempDir())
	a := newAccount(t, s, "alice")
	s.Close()
	done := make(chan error, 1)
	go func() {
		_, err := s.Deliver(ctx, a.ID, strings.NewReader(simpleMessage("late")), DeliverOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errClosed) {
			t.Errorf("deliver after Close: %v, want errClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deliver after Close hangs")
	}
}
