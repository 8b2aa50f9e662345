package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Timings of Watcher. The fallback poll is slower when the file system tells us about
// writes, and fast enough without that to keep the one-second promise.
const watchDebounce = 10 * time.Millisecond // gathers the several writes of one commit

var (
	watchPollNotify   = time.Second // while fsnotify works (a var for tests)
	watchPollFallback = 250 * time.Millisecond
)

// Watcher notices commits made by other connections and processes (`letterbox deliver`
// beside `serve`) to a database file. fsnotify reports writes to the database and its WAL;
// a slow timer covers file systems that do not. Either way the check is cheap: PRAGMA
// data_version on a dedicated connection changes only when another connection committed,
// and only then is the caller's function run (the store reads its change log there).
type Watcher struct {
	log     *slog.Logger
	db      *sql.DB
	conn    *sql.Conn
	fs      *fsnotify.Watcher // nil if unavailable
	version int64
	changed func(ctx context.Context, conn *sql.Conn) error

	quit chan struct{}
	done chan struct{}
}

// Watch starts watching the database file at path on a Reader connection of its own.
// first runs once on that connection before Watch returns; changed runs on it, from the
// watcher's goroutine, whenever another connection has committed since the last call of
// changed that returned nil (a failing call is logged and tried again at the next check).
func Watch(path string, busyTimeout time.Duration, log *slog.Logger, first, changed func(ctx context.Context, conn *sql.Conn) error) (*Watcher, error) {
	ctx := context.Background()
	w := &Watcher{log: log, changed: changed, quit: make(chan struct{}), done: make(chan struct{})}
	var err error
	if w.db, err = Open(path, Reader, busyTimeout); err != nil {
		return nil, err
	}
	w.db.SetMaxOpenConns(1)
	if w.conn, err = w.db.Conn(ctx); err != nil {
		w.db.Close()
		return nil, err
	}
	if err := w.conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&w.version); err != nil {
		w.close()
		return nil, err
	}
	if err := first(ctx, w.conn); err != nil {
		w.close()
		return nil, err
	}
	poll := watchPollNotify
	if w.fs, err = fsnotify.NewWatcher(); err == nil {
		err = w.fs.Add(filepath.Dir(path))
	}
	if err != nil {
		log.Warn("store: cannot watch the data directory; polling for other processes' changes", "err", err)
		if w.fs != nil {
			w.fs.Close()
			w.fs = nil
		}
		poll = watchPollFallback
	}
	go w.run(filepath.Dir(path), filepath.Base(path), poll)
	return w, nil
}

func (w *Watcher) run(dir, dbName string, poll time.Duration) {
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
				// One event is enough until the check: the rest of this commit's writes,
				// and the next commits', would each cost an event to make and read (this
				// process's own writer makes most of them: a fifth of its CPU under a
				// stream of APPENDs). The watch is back before the check, so a commit
				// after the check is noticed and one before it is seen by it.
				if err := w.fs.Remove(dir); err != nil {
					w.log.Warn("store: watching the data directory", "err", err)
				}
				debounce.Reset(watchDebounce)
				armed = true
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.log.Warn("store: watching the data directory", "err", err)
		case <-debounce.C:
			armed = false
			if err := w.fs.Add(dir); err != nil {
				w.log.Warn("store: watching the data directory; the slow poll goes on", "err", err)
			}
			w.check()
		case <-ticker.C:
			w.check()
		}
	}
}

// check runs changed if any other connection (of this process or another) committed since
// it last succeeded.
func (w *Watcher) check() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var version int64
	if err := w.conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&version); err != nil {
		w.log.Warn("store: change watcher", "err", err)
		return
	}
	if version == w.version {
		return
	}
	if err := w.changed(ctx, w.conn); err != nil {
		w.log.Warn("store: change watcher", "err", err)
		return
	}
	w.version = version
}

// Stop ends the watching and closes the watcher's connection.
func (w *Watcher) Stop() {
	close(w.quit)
	<-w.done
	w.close()
}

func (w *Watcher) close() {
	if w.fs != nil {
		w.fs.Close()
	}
	if w.conn != nil {
		w.conn.Close()
	}
	w.db.Close()
}
