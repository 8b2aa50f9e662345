package store

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

// Changes returns an account's change-log rows with modseq greater than since, ascending:
// every change committed before the call. Concurrent calls with the same account and since
// share one query (sharedReads).
func (s *Store) Changes(ctx context.Context, accountID int64, since int64) ([]Change, error) {
	out, err := s.shared.read(ctx, readKey{kind: readChanges, id: accountID, from: since}, nil, func(ctx context.Context) (any, error) {
		return s.changes(ctx, accountID, since)
	})
	changes, _ := out.([]Change)
	return slices.Clone(changes), err
}

// Notified is how many times this process has woken the account's watchers (Watch); a
// session woken by Watch reads it afterwards and passes it to ChangesAsOf and
// MessagesAfterAsOf.
func (s *Store) Notified(accountID int64) uint64 { return s.hub.notified(accountID) }

// ChangesAsOf is Changes as of notification n of the account (from Notified) or later: it
// has every change this process had woken the account's watchers for by then, maybe not
// those committed since. That is what a session woken by Watch needs (a later change wakes
// it again), and it lets the sessions woken by one delivery share one answer: 10,000
// sessions in IDLE make one query, not 10,000.
func (s *Store) ChangesAsOf(ctx context.Context, accountID, since int64, n uint64) ([]Change, error) {
	asOf := func() uint64 { return s.hub.notified(accountID) }
	out, err := s.shared.readAsOf(ctx, readKey{kind: readChangesAsOf, id: accountID, from: since}, n, asOf, func(ctx context.Context) (any, error) {
		return s.changes(ctx, accountID, since)
	})
	changes, _ := out.([]Change)
	return slices.Clone(changes), err
}

// MessagesAfterAsOf lists the messages of a mailbox of the account with UIDs above uid, in
// ascending order, as of notification n or later (see ChangesAsOf). The Flags slices of
// the result are shared between callers: read them, never modify them in place.
func (s *Store) MessagesAfterAsOf(ctx context.Context, accountID, mailboxID int64, uid uint32, n uint64) ([]Message, error) {
	asOf := func() uint64 { return s.hub.notified(accountID) }
	out, err := s.shared.readAsOf(ctx, readKey{kind: readMessagesAsOf, id: mailboxID, from: int64(uid)}, n, asOf, func(ctx context.Context) (any, error) {
		return s.Messages(ctx, mailboxID, UIDRange{Start: uid + 1, Stop: 0})
	})
	msgs, _ := out.([]Message)
	return slices.Clone(msgs), err
}

func (s *Store) changes(ctx context.Context, accountID int64, since int64) ([]Change, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT modseq, account_id, mailbox_id, uid, kind FROM changes
		WHERE account_id = ? AND modseq > ? ORDER BY modseq`, accountID, since)
	if err != nil {
		return nil, wrapErr("read changes", err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.ModSeq, &c.AccountID, &c.MailboxID, &c.UID, &c.Kind); err != nil {
			return nil, wrapErr("read changes", err)
		}
		out = append(out, c)
	}
	return out, wrapErr("read changes", rows.Err())
}

// sharedReads lets concurrent identical reads share one query, without ever answering a
// caller from a query that began before it called: a caller joins the next query of its
// key, which starts only when the one running (if any) has finished. So each query serves
// everyone who asked while the previous one ran, and the queries of one key never overlap.
//
// Reads "as of notification n" (readAsOf) also keep the last answer of their key's kind
// and id with the notification count read before its query began, and answer from it any
// caller whose n is not above that. Only small answers are kept (up to keepRows rows), and
// only one per kind and id, the latest, so the memory stays small and bounded by the
// accounts and mailboxes in use.
type sharedReads struct {
	mu      sync.Mutex
	running map[readKey]*sharedRead
	next    map[readKey]*sharedRead // not started yet: callers join it
	last    map[readKey]*sharedRead // readAsOf's last answers; the key without from
}

// Kinds of shared reads.
const (
	readChanges = iota
	readChangesAsOf
	readMessagesAsOf
)

// keepRows bounds the answers sharedReads keeps after their query.
const keepRows = 1000

type readKey struct {
	kind     int
	id, from int64
}

type sharedRead struct {
	done chan struct{}
	from int64  // the key's from (in last)
	asOf uint64 // the notification count read before the query began
	out  any
	err  error
}

func answerRows(out any) int {
	switch v := out.(type) {
	case []Change:
		return len(v)
	case []Message:
		return len(v)
	}
	return 0
}

// readAsOf answers from the last answer of key when it is as of n or later, else reads as
// read does, noting asOf() before the query begins.
func (r *sharedReads) readAsOf(ctx context.Context, key readKey, n uint64, asOf func() uint64, query func(context.Context) (any, error)) (any, error) {
	lastKey := readKey{kind: key.kind, id: key.id}
	r.mu.Lock()
	if f := r.last[lastKey]; f != nil && f.from == key.from && f.asOf >= n {
		r.mu.Unlock()
		return f.out, nil
	}
	r.mu.Unlock()
	return r.read(ctx, key, asOf, query)
}

func (r *sharedReads) read(ctx context.Context, key readKey, asOf func() uint64, query func(context.Context) (any, error)) (any, error) {
	r.mu.Lock()
	if r.running == nil {
		r.running, r.next, r.last = map[readKey]*sharedRead{}, map[readKey]*sharedRead{}, map[readKey]*sharedRead{}
	}
	if f := r.next[key]; f != nil {
		r.mu.Unlock()
		select {
		case <-f.done:
			return f.out, f.err
		case <-ctx.Done():
			return nil, wrapErr("read", ctx.Err())
		}
	}
	f := &sharedRead{done: make(chan struct{}), from: key.from}
	r.next[key] = f
	prev := r.running[key]
	r.mu.Unlock()
	if prev != nil {
		<-prev.done // the followers wait for f, so f runs whatever this caller's ctx does
	}
	r.mu.Lock()
	delete(r.next, key) // from here on, a caller starts another query
	r.running[key] = f
	r.mu.Unlock()
	if asOf != nil {
		f.asOf = asOf() // after every follower's n was read
	}
	// The query serves the followers too: it must not end with this caller's context.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	f.out, f.err = query(qctx)
	cancel()
	r.mu.Lock()
	delete(r.running, key)
	if asOf != nil && f.err == nil && answerRows(f.out) <= keepRows {
		lastKey := readKey{kind: key.kind, id: key.id}
		if old := r.last[lastKey]; old == nil || old.asOf <= f.asOf {
			r.last[lastKey] = f
		}
	}
	r.mu.Unlock()
	close(f.done)
	return f.out, f.err
}

// HighestModSeq is the highest modseq of any change in the account (0 if none). It never
// falls: a tombstone pruned (Options.ExpungeRetention) still counts through its mailbox's
// modseq, and the tombstones of a deleted mailbox are followed by its (kept) deletion.
func (s *Store) HighestModSeq(ctx context.Context, accountID int64) (int64, error) {
	var modseq int64
	err := s.readers.QueryRowContext(ctx, `SELECT max(
		(SELECT coalesce(max(modseq), 0) FROM changes WHERE account_id = ?),
		(SELECT coalesce(max(modseq), 0) FROM mailboxes WHERE account_id = ?))`, accountID, accountID).Scan(&modseq)
	return modseq, wrapErr("read highest modseq", err)
}

// Watch registers a waiter for changes to an account. The channel receives (coalesced,
// never blocking the writer) after every commit that touches the account, from this
// process or another one on the same data directory. cancel unregisters it.
func (s *Store) Watch(accountID int64) (ch <-chan struct{}, cancel func()) {
	return s.hub.watch(accountID)
}

// WatchFunc registers wake to be called after every commit that touches the account, as
// Watch's channel would receive, but with no channel and no goroutine waiting on one: an
// IMAP session in IDLE waits on nothing but its connection. wake runs on the notifying
// goroutine with the hub's lock held, so it must return at once (start a goroutine, set a
// flag); it must not call the store. After cancel returns, wake is not called again.
func (s *Store) WatchFunc(accountID int64, wake func()) (cancel func()) {
	return s.hub.watchFunc(accountID, wake)
}

// hub fans "account N changed" out to the waiters of this process. It is an interface so
// that another backend can feed it differently (PostgreSQL's LISTEN/NOTIFY, say); with
// SQLite, commits of this process notify it directly and dbWatcher notices the others.
type hub interface {
	watch(accountID int64) (<-chan struct{}, func())
	watchFunc(accountID int64, wake func()) func()
	notify(accountIDs ...int64)
	notified(accountID int64) uint64 // how many notifies named the account
}

// memHub is the in-process hub. Each waiter has a channel with a buffer of one, or a
// function (WatchFunc); a notify that finds the channel full drops the signal, since one
// pending wake-up already says "look at Changes again".
type memHub struct {
	mu      sync.Mutex
	waiters map[int64]map[*hubWaiter]struct{}
	counts  map[int64]uint64 // notifies per account, counted before waking its waiters
}

// hubWaiter is one waiter of a memHub: ch (Watch) or fn (WatchFunc).
type hubWaiter struct {
	ch chan struct{}
	fn func()
}

func newMemHub() *memHub {
	return &memHub{waiters: map[int64]map[*hubWaiter]struct{}{}, counts: map[int64]uint64{}}
}

func (h *memHub) notified(accountID int64) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[accountID]
}

func (h *memHub) watch(accountID int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	return ch, h.add(accountID, &hubWaiter{ch: ch})
}

func (h *memHub) watchFunc(accountID int64, wake func()) func() {
	return h.add(accountID, &hubWaiter{fn: wake})
}

// add registers w and returns its cancel.
func (h *memHub) add(accountID int64, w *hubWaiter) func() {
	h.mu.Lock()
	if h.waiters[accountID] == nil {
		h.waiters[accountID] = map[*hubWaiter]struct{}{}
	}
	h.waiters[accountID][w] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(h.waiters[accountID], w)
			if len(h.waiters[accountID]) == 0 {
				delete(h.waiters, accountID)
			}
		})
	}
}

func (h *memHub) notify(accountIDs ...int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wake := func(id int64) {
		for w := range h.waiters[id] {
			if w.fn != nil {
				w.fn()
				continue
			}
			select {
			case w.ch <- struct{}{}:
			default:
			}
		}
	}
	for _, id := range accountIDs {
		h.counts[id]++
		wake(id)
	}
	if len(accountIDs) > 0 {
		wake(anyAccount) // WatchAll
	}
}

// dbWatcher notices commits made by other processes (`letterbox deliver` beside `serve`)
// and wakes this process's waiters: internal/store/sqlite's Watcher watches the database files and
// PRAGMA data_version, and runs check when another connection committed; only then are the
// change-log rows above the last modseq seen read.
type dbWatcher struct {
	s       *Store
	w       *sqlite.Watcher
	lastMod atomic.Int64 // highest modseq whose waiters were woken
}

func startWatcher(s *Store, path string) (*dbWatcher, error) {
	w := &dbWatcher{s: s}
	first := func(ctx context.Context, conn *sql.Conn) error {
		var lastMod int64
		if err := conn.QueryRowContext(ctx, `SELECT coalesce(max(modseq), 0) FROM changes`).Scan(&lastMod); err != nil {
			return err
		}
		w.lastMod.Store(lastMod)
		return nil
	}
	var err error
	if w.w, err = sqlite.Watch(path, busyTimeout, s.log, first, w.check); err != nil {
		return nil, wrapErr("open change watcher", err)
	}
	return w, nil
}

// changedAccountsQuery lists the accounts with changes above a modseq. NOT INDEXED: those
// changes are a range of the rowid (modseq); left to itself, SQLite answers GROUP BY by
// scanning the whole changes_account index, which made every commit (each one is checked)
// cost time in proportion to the length of the change log.
const changedAccountsQuery = `SELECT account_id, max(modseq) FROM changes NOT INDEXED
	WHERE modseq > ? GROUP BY account_id`

// check wakes the waiters of every account changed since the last check; the Watcher runs
// it when another connection (of this process or another) committed meanwhile. Waiters of
// this process's own commits are woken twice (by the commit and here); wake-ups are hints,
// so that is harmless.
func (w *dbWatcher) check(ctx context.Context, conn *sql.Conn) error {
	rows, err := conn.QueryContext(ctx, changedAccountsQuery, w.lastMod.Load())
	if err != nil {
		return err
	}
	defer rows.Close()
	var ids []int64
	last := w.lastMod.Load()
	for rows.Next() {
		var id, modseq int64
		if err := rows.Scan(&id, &modseq); err != nil {
			return err
		}
		ids = append(ids, id)
		last = max(last, modseq)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	w.lastMod.Store(last)
	if len(ids) > 0 {
		w.s.hub.notify(ids...)
	}
	return nil
}

func (w *dbWatcher) stop() { w.w.Stop() }
