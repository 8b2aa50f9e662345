package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Options configures Open.
type Options struct {
	Logger *slog.Logger
	// Now is the clock for INTERNALDATE and account creation; nil means time.Now.
	Now func() time.Time
	// UIDValidity proposes the UIDVALIDITY of a new mailbox, given the highest one its
	// account has handed out so far (0 for a new account). The store uses the proposal if it
	// is above last, else last+1, so UIDVALIDITY still never repeats. nil means the clock's
	// seconds (Now). Tests set it for repeatable transcripts (pkg/letterboxtest).
	UIDValidity func(last uint32) uint32
	// MaxMessageSize refuses larger messages with ErrTooBig; 0 means 50 MiB.
	MaxMessageSize int64
	// Folders are the mailboxes every new account gets besides INBOX: name -> special use.
	// nil means Sent, Drafts, Trash, Junk and Archives with their special-use attributes.
	Folders map[string]string
	// QuotaGrace is how far past its quota an account may go with the delivery (or copy)
	// that crosses it, given the quota (as Dovecot's quota_grace): an addition is accepted
	// while usage before it is below the quota and usage after it within quota+grace. nil
	// means no grace.
	QuotaGrace func(quota int64) int64
}

// DefaultMaxMessageSize is the message size limit when Options.MaxMessageSize is 0.
const DefaultMaxMessageSize = 50 << 20

// DBFile is the name of the database file inside the data directory.
const DBFile = "letterbox.db"

// busyTimeout is how long a connection waits for a lock held by another connection (or
// another process, such as `letterbox deliver` beside `serve`) before giving up with
// SQLITE_BUSY, which the store reports as ErrTemporary.
// A variable so that tests need not wait that long.
var busyTimeout = 10 * time.Second

// defaultFolders are the mailboxes a new account gets besides INBOX.
var defaultFolders = map[string]string{
	"Sent":     SpecialSent,
	"Drafts":   SpecialDrafts,
	"Trash":    SpecialTrash,
	"Junk":     SpecialJunk,
	"Archives": SpecialArchive,
}

// Store is an open Letterbox store. It is safe for concurrent use.
type Store struct {
	dir     string
	log     *slog.Logger
	now     func() time.Time
	maxSize int64
	folders map[string]string
	uidv    func(last uint32) uint32 // Options.UIDValidity; nil: the clock
	grace   func(quota int64) int64  // Options.QuotaGrace; nil: none

	w *sql.DB // the one writer connection: every write transaction, serialised
	r *sql.DB // read-only connections (query_only) for everything else

	hub     hub
	watcher *dbWatcher
	logins  *loginCache // recently verified passwords (authcache.go)
	observe observer    // timing of write transactions, for metrics (observe.go)
	search  searchIndex // the full-text index for SEARCH (fts.go)
	shared  sharedReads // concurrent identical reads of Changes and MessagesAfter (changes.go)

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the store in directory dir, applying pending migrations.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	s := &Store{
		dir:     dir,
		log:     opts.Logger,
		now:     opts.Now,
		maxSize: opts.MaxMessageSize,
		folders: opts.Folders,
		uidv:    opts.UIDValidity,
		grace:   opts.QuotaGrace,
		hub:     newMemHub(),
		logins:  newLoginCache(loginCacheTTL, loginCacheMax),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxMessageSize
	}
	if s.folders == nil {
		s.folders = defaultFolders
	}
	if err := os.MkdirAll(s.tmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("store: create spool directory: %w", err)
	}

	path := filepath.Join(dir, DBFile)
	var err error
	// The writer is opened (and migrated) first: it sets WAL mode, which is persistent in
	// the file, before any read-only connection exists.
	s.w, err = sql.Open("sqlite3", dsn(path, writerParams()))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxIdleTime(0)
	s.w.SetConnMaxLifetime(0)
	if err := s.migrate(context.Background()); err != nil {
		s.w.Close()
		return nil, err
	}
	if err := s.openSearchIndex(context.Background()); err != nil {
		s.w.Close()
		return nil, err
	}

	s.r, err = sql.Open("sqlite3", dsn(path, readerParams()))
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)

	s.watcher, err = startWatcher(s, path)
	if err != nil {
		s.r.Close()
		s.w.Close()
		return nil, err
	}
	s.startIndexer()
	s.log.Debug("store opened", "dir", dir)
	return s, nil
}

// Close stops the change watcher and closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopIndexer()
		s.watcher.stop()
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("store: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// Dir is the data directory the store was opened on.
func (s *Store) Dir() string { return s.dir }

func (s *Store) tmpDir() string { return filepath.Join(s.dir, "tmp") }

// Connection parameters (mattn/go-sqlite3 DSN keys). foreign_keys and busy_timeout are per
// connection, so every connection sets them. The statement cache keeps the prepared
// statements of the hot paths (chunk reads, message listings, change-log inserts) per
// connection, keyed by their SQL text.
func commonParams() []string {
	return []string{
		"_foreign_keys=on",
		fmt.Sprintf("_busy_timeout=%d", busyTimeout.Milliseconds()),
		"_stmt_cache_size=64",
	}
}

func writerParams() []string {
	return append([]string{
		"_journal_mode=WAL",
		"_synchronous=FULL",
		"_txlock=immediate", // take the write lock at BEGIN: no deadlock-prone lock upgrades
	}, commonParams()...)
}

func readerParams() []string {
	return append([]string{
		"_query_only=on",
		"_txlock=deferred",
	}, commonParams()...)
}

func dsn(path string, params []string) string {
	u := url.URL{Scheme: "file", Path: path}
	return "file:" + u.EscapedPath() + "?" + strings.Join(params, "&")
}

// --- errors ---

// wrapErr adds context to err and marks SQLite's transient conditions (a lock held too long
// by another connection or process, a full disk, an I/O error) as ErrTemporary, so that
// callers answer "try again later" (LMTP 4xx, exit 75, [SYS/TEMP]).
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var se sqlite3.Error
	if errors.As(err, &se) && !errors.Is(err, ErrTemporary) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrFull, sqlite3.ErrIoErr:
			return fmt.Errorf("store: %s: %w: %w", op, ErrTemporary, err)
		}
	}
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("store: %s: %w: %w", op, ErrTemporary, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// --- write transactions ---

// writeTx is one BEGIN IMMEDIATE transaction on the writer connection. It collects what
// must happen after the commit: the mailboxes whose modseq moved and the accounts whose
// watchers must be woken.
type writeTx struct {
	ctx     context.Context
	tx      *sql.Tx
	s       *Store
	mboxMod map[int64]int64 // mailbox id -> highest modseq written in this transaction
	touched map[int64]struct{}
	modseqs [2]int64 // the first and last modseq written (consecutive), or zeros
}

// write runs fn in one write transaction and wakes the touched accounts' watchers after
// the commit (never before: a woken session must see the change).
func (s *Store) write(ctx context.Context, op string, fn func(wt *writeTx) error) error {
	defer s.observe.done(op, time.Now())
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr(op, err)
	}
	wt := &writeTx{ctx: ctx, tx: tx, s: s, mboxMod: map[int64]int64{}, touched: map[int64]struct{}{}}
	if err := fn(wt); err != nil {
		tx.Rollback()
		return wrapErr(op, err)
	}
	if err := wt.flushModSeqs(); err != nil {
		tx.Rollback()
		return wrapErr(op, err)
	}
	if err := tx.Commit(); err != nil {
		return wrapErr(op, err)
	}
	s.watcher.committed(wt.modseqs) // its waiters are woken here, not again by the watcher
	if len(wt.touched) > 0 {
		ids := make([]int64, 0, len(wt.touched))
		for id := range wt.touched {
			ids = append(ids, id)
		}
		s.hub.notify(ids...)
	}
	return nil
}

func (wt *writeTx) exec(query string, args ...any) (sql.Result, error) {
	return wt.tx.ExecContext(wt.ctx, query, args...)
}

func (wt *writeTx) queryRow(query string, args ...any) *sql.Row {
	return wt.tx.QueryRowContext(wt.ctx, query, args...)
}

// logChange appends a change-log row and returns its modseq: the store-wide, strictly
// increasing modification sequence (the AUTOINCREMENT key never hands out a value twice,
// even after rows are deleted).
func (wt *writeTx) logChange(accountID, mailboxID int64, uid uint32, kind ChangeKind) (int64, error) {
	res, err := wt.exec(`INSERT INTO changes (account_id, mailbox_id, uid, kind) VALUES (?, ?, ?, ?)`,
		accountID, mailboxID, uid, kind)
	if err != nil {
		return 0, fmt.Errorf("log change: %w", err)
	}
	modseq, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("log change: %w", err)
	}
	if modseq > wt.mboxMod[mailboxID] {
		wt.mboxMod[mailboxID] = modseq
	}
	if wt.modseqs[0] == 0 {
		wt.modseqs[0] = modseq
	}
	wt.modseqs[1] = modseq
	wt.touched[accountID] = struct{}{}
	return modseq, nil
}

// flushModSeqs records, once per mailbox, the highest modseq this transaction gave it.
func (wt *writeTx) flushModSeqs() error {
	for id, modseq := range wt.mboxMod {
		if _, err := wt.exec(`UPDATE mailboxes SET modseq = max(modseq, ?) WHERE id = ?`, modseq, id); err != nil {
			return fmt.Errorf("update mailbox modseq: %w", err)
		}
	}
	return nil
}

// noRows turns sql.ErrNoRows into sentinel.
func noRows(err, sentinel error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return sentinel
	}
	return err
}
