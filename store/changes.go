package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Changes returns an account's change-log rows with modseq greater than since, ascending.
func (s *Store) Changes(ctx context.Context, accountID int64, since int64) ([]Change, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT modseq, account_id, mailbox_id, uid, kind FROM changes
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

// HighestModSeq is the highest modseq of any change in the account (0 if none).
func (s *Store) HighestModSeq(ctx context.Context, accountID int64) (int64, error) {
	var modseq int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(modseq), 0) FROM changes WHERE account_id = ?`, accountID).Scan(&modseq)
	return modseq, wrapErr("read highest modseq", err)
}

// Watch registers a waiter for changes to an account. The channel receives (coalesced,
// never blocking the writer) after every commit that touches the account, from this
// process or another one on the same data directory. cancel unregisters it.
func (s *Store) Watch(accountID int64) (ch <-chan struct{}, cancel func()) {
	return s.hub.watch(accountID)
}

// hub fans "account N changed" out to the waiters of this process. It is an interface so
// that another backend can feed it differently (PostgreSQL's LISTEN/NOTIFY, say); with
// SQLite, commits of this process notify it directly and dbWatcher notices the others.
type hub interface {
	watch(accountID int64) (<-chan struct{}, func())
	notify(accountIDs ...int64)
}

// memHub is the in-process hub. Each waiter has a channel with a buffer of one; a notify
// that finds it full drops the signal, since one pending wake-up already says "look at
// Changes again".
type memHub struct {
	mu      sync.Mutex
	waiters map[int64]map[chan struct{}]struct{}
}

func newMemHub() *memHub {
	return &memHub{waiters: map[int64]map[chan struct{}]struct{}{}}
}

func (h *memHub) watch(accountID int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.waiters[accountID] == nil {
		h.waiters[accountID] = map[chan struct{}]struct{}{}
	}
	h.waiters[accountID][ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(h.waiters[accountID], ch)
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
		for ch := range h.waiters[id] {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	for _, id := range accountIDs {
		wake(id)
	}
	if len(accountIDs) > 0 {
		wake(anyAccount) // WatchAll
	}
}

// Timings of dbWatcher. The fallback poll is slower when the file system tells us about
// writes, and fast enough without that to keep the one-second promise.
const (
	watchDebounce     = 10 * time.Millisecond // gathers the several writes of one commit
	watchPollNotify   = time.Second           // while fsnotify works
	watchPollFallback = 250 * time.Millisecond
)

// dbWatcher notices commits made by other processes (`letterbox deliver` beside `serve`)
// and wakes this process's waiters. fsnotify reports writes to the database and its WAL; a
// slow timer covers file systems that do not. Either way the check is cheap: PRAGMA
// data_version on a dedicated connection changes only when another connection committed,
// and only then are the change-log rows above the last modseq seen read.
type dbWatcher struct {
	s       *Store
	db      *sql.DB
	conn    *sql.Conn
	fs      *fsnotify.Watcher // nil if unavailable
	version int64
	lastMod atomic.Int64 // highest modseq whose waiters were woken

	quit chan struct{}
	done chan struct{}
}

func startWatcher(s *Store, path string) (*dbWatcher, error) {
	ctx := context.Background()
	w := &dbWatcher{s: s, quit: make(chan struct{}), done: make(chan struct{})}
	var err error
	if w.db, err = sql.Open("sqlite3", dsn(path, readerParams())); err != nil {
		return nil, fmt.Errorf("store: open change watcher: %w", err)
	}
	w.db.SetMaxOpenConns(1)
	if w.conn, err = w.db.Conn(ctx); err != nil {
		w.db.Close()
		return nil, wrapErr("open change watcher", err)
	}
	if err := w.conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&w.version); err != nil {
		w.close()
		return nil, wrapErr("open change watcher", err)
	}
	var lastMod int64
	if err := w.conn.QueryRowContext(ctx, `SELECT coalesce(max(modseq), 0) FROM changes`).Scan(&lastMod); err != nil {
		w.close()
		return nil, wrapErr("open change watcher", err)
	}
	w.lastMod.Store(lastMod)
	poll := watchPollNotify
	if w.fs, err = fsnotify.NewWatcher(); err == nil {
		err = w.fs.Add(filepath.Dir(path))
	}
	if err != nil {
		s.log.Warn("store: cannot watch the data directory; polling for other processes' changes", "err", err)
		if w.fs != nil {
			w.fs.Close()
			w.fs = nil
		}
		poll = watchPollFallback
	}
	go w.run(filepath.Base(path), poll)
	return w, nil
}

func (w *dbWatcher) run(dbName string, poll time.Duration) {
	defer close(w.done)
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	armed := false

	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fs != nil {
		events, errs = w.fs.Events, w.fs.Errors
	}
	for {
		select {
		case <-w.quit:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			name := filepath.Base(ev.Name)
			if (name == dbName || name == dbName+"-wal") && ev.Has(fsnotify.Write|fsnotify.Create) && !armed {
				debounce.Reset(watchDebounce)
				armed = true
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.s.log.Warn("store: watching the data directory", "err", err)
		case <-debounce.C:
			armed = false
			w.check()
		case <-ticker.C:
			w.check()
		}
	}
}

// changedAccountsQuery lists the accounts with changes above a modseq. NOT INDEXED: those
// changes are a range of the rowid (modseq); left to itself, SQLite answers GROUP BY by
// scanning the whole changes_account index, which made every commit (each one is checked)
// cost time in proportion to the length of the change log.
const changedAccountsQuery = `SELECT account_id, max(modseq) FROM changes NOT INDEXED
	WHERE modseq > ? GROUP BY account_id`

// check wakes the waiters of every account changed since the last check, if any other
// connection (of this process or another) committed meanwhile. Waiters of this process's
// own commits may be woken twice; wake-ups are hints, so that is harmless.
func (w *dbWatcher) check() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var version int64
	if err := w.conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&version); err != nil {
		w.s.log.Warn("store: change watcher", "err", err)
		return
	}
	if version == w.version {
		return
	}
	rows, err := w.conn.QueryContext(ctx, changedAccountsQuery, w.lastMod.Load())
	if err != nil {
		w.s.log.Warn("store: change watcher", "err", err)
		return
	}
	defer rows.Close()
	var ids []int64
	last := w.lastMod.Load()
	for rows.Next() {
		var id, modseq int64
		if err := rows.Scan(&id, &modseq); err != nil {
			w.s.log.Warn("store: change watcher", "err", err)
			return
		}
		ids = append(ids, id)
		last = max(last, modseq)
	}
	if err := rows.Err(); err != nil {
		w.s.log.Warn("store: change watcher", "err", err)
		return
	}
	w.version = version
	w.lastMod.Store(last)
	if len(ids) > 0 {
		w.s.hub.notify(ids...)
	}
}

func (w *dbWatcher) stop() {
	close(w.quit)
	<-w.done
	w.close()
}

func (w *dbWatcher) close() {
	if w.fs != nil {
		w.fs.Close()
	}
	if w.conn != nil {
		w.conn.Close()
	}
	w.db.Close()
}
