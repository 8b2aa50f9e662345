package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
	"github.com/letterbox-mail/letterbox/internal/store/postgres"
	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

// Options configures Open.
type Options struct {
	Logger *slog.Logger
	// URL is store.url: empty for SQLite in the data directory, or a postgres:// URL
	// for PostgreSQL (pgstore.go), with dir still the spool's directory.
	URL string
	// Now is the clock for INTERNALDATE and account creation; nil means time.Now.
	Now func() time.Time
	// UIDValidity proposes the UIDVALIDITY of a new mailbox, given the highest one its
	// account has handed out so far (0 for a new account). The store uses the proposal if it
	// is above last, else last+1, so UIDVALIDITY still never repeats. nil means the clock's
	// seconds (Now). Tests set it for repeatable transcripts (pkg/letterboxtest).
	UIDValidity func(last uint32) uint32
	// MmapSize is how much of the SQLite database file the writer and the readers read
	// through a memory map (sqlite.OpenMapped): 0 means sqlite.DefaultMmapSize, negative
	// none. PostgreSQL ignores it.
	MmapSize int64
	// MaxMessageSize refuses larger messages with ErrTooBig; 0 means 50 MiB.
	MaxMessageSize int64
	// MaxHeaderSize refuses new mail with a header section (the message's, or any MIME
	// part's) above this many octets, and MaxMIMEDepth new mail nested deeper than this many
	// levels of multipart and message/rfc822, both with a *ContentLimitError and without
	// reading further (see SpoolOptions; migrated mail is never refused). 0 means the
	// default (DefaultMaxHeaderSize, DefaultMaxMIMEDepth); negative means no limit.
	MaxHeaderSize int64
	MaxMIMEDepth  int
	// Folders are the mailboxes every new account gets besides INBOX: name -> special use.
	// nil means Sent, Drafts, Trash, Junk and Archives with their special-use attributes.
	Folders map[string]string
	// QuotaGrace is how far past its quota an account may go with the delivery (or copy)
	// that crosses it, given the quota (as Dovecot's quota_grace): an addition is accepted
	// while usage before it is below the quota and usage after it within quota+grace. nil
	// means no grace. QuotaMessageGrace is the same for the quota in messages.
	QuotaGrace, QuotaMessageGrace func(quota int64) int64
	// ExpungeRetention is how long the change log keeps an expunge's tombstone, from
	// which QRESYNC tells a client what vanished since it last looked (Vanished; as
	// Dovecot's expunge log). Older tombstones are pruned in the background; a client
	// that last looked before the newest one pruned gets a full resync. 0 means
	// DefaultExpungeRetention; negative means tombstones are never pruned.
	ExpungeRetention time.Duration
}

// DefaultExpungeRetention is Options.ExpungeRetention when 0: 30 days.
const DefaultExpungeRetention = 30 * 24 * time.Hour

// DefaultMaxMessageSize is the message size limit when Options.MaxMessageSize is 0.
const DefaultMaxMessageSize = 50 << 20

// Defaults of Options.MaxHeaderSize and MaxMIMEDepth: the header a message may keep for
// parsing, and the nesting the store describes whole (internal/mailmsg/parse.go).
const (
	DefaultMaxHeaderSize = mailmsg.MaxHeaderBytes
	DefaultMaxMIMEDepth  = mailmsg.MaxDepth
)

// limitOrDefault turns an Options limit (0: the default, negative: none) into the limit
// to apply (0: none).
func limitOrDefault(n, def int64) int64 {
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return n
}

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
	sorts sortCache  // SortData's rows of recently sorted mailboxes (sortcache.go)
	flags flagsCache // MessageFlags' rows of recently selected mailboxes (viewflags.go)

	dir     string
	log     *slog.Logger
	now     func() time.Time
	maxSize int64
	limits  mailmsg.Limits // new mail's header size and nesting (0: none)
	folders map[string]string

	uidValidity      func(last uint32) uint32 // Options.UIDValidity; nil: the clock
	byteGrace        func(quota int64) int64  // Options.QuotaGrace; nil: none
	messageGrace     func(quota int64) int64  // Options.QuotaMessageGrace; nil: none
	expungeRetention time.Duration            // Options.ExpungeRetention; 0: never prune

	writer  *sql.DB // the one writer connection: every write transaction, serialised
	readers *sql.DB // read-only connections (query_only) for everything else

	writes     chan *writeRequest // to the writer goroutine (runWriter); unbuffered
	closing    chan struct{}      // closed by Close: no more writes are taken
	writerDone chan struct{}      // closed when the writer goroutine has ended

	hub     hub
	watcher *dbWatcher
	logins  *loginCache   // recently verified passwords (authcache.go)
	checks  chan struct{} // a slot per password check allowed to run at once (password.go)
	observe observer      // timing of write transactions, for metrics (observe.go)
	search  searchIndex   // the full-text index for SEARCH (fts.go)
	shared  sharedReads   // concurrent identical reads of Changes and MessagesAfter (changes.go)
	recent  recentMarks   // lower bounds of mailboxes' \Recent watermarks (ClaimRecent)
	pruner  pruner        // the background pruning of old tombstones (condstore.go)

	pg         bool               // the engine is PostgreSQL (pgstore.go), not SQLite
	pgListener *postgres.Listener // PostgreSQL's change notifications; nil on SQLite
	locks      *sql.DB            // PostgreSQL: connections holding maildrop locks (maildroplock.go)

	penalties      *sql.DB       // PostgreSQL: connections counting login failures (loginpenalty.go)
	penaltyCounted atomic.Uint64 // failures counted there, for pruning

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the store in directory dir, applying pending migrations.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, wrapErr("create data directory", err)
	}
	// SQLite cannot open a WAL database on a read-only filesystem and says only "unable
	// to open database file"; say what it is.
	if err := syscall.Access(dir, 2 /* W_OK */); errors.Is(err, syscall.EROFS) {
		return nil, wrapErr("open "+dir, err)
	}
	s := &Store{
		dir:     dir,
		log:     opts.Logger,
		now:     opts.Now,
		maxSize: opts.MaxMessageSize,
		folders: opts.Folders,
		hub:     newMemHub(),
		logins:  newLoginCache(loginCacheTTL, loginCacheMax),
		checks:  make(chan struct{}, maxPasswordChecks()),

		uidValidity:  opts.UIDValidity,
		byteGrace:    opts.QuotaGrace,
		messageGrace: opts.QuotaMessageGrace,

		writes:     make(chan *writeRequest),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
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
	s.limits = mailmsg.Limits{
		HeaderSize: limitOrDefault(opts.MaxHeaderSize, DefaultMaxHeaderSize),
		MIMEDepth:  int(limitOrDefault(int64(opts.MaxMIMEDepth), DefaultMaxMIMEDepth)),
	}
	if s.folders == nil {
		s.folders = defaultFolders
	}
	switch {
	case opts.ExpungeRetention == 0:
		s.expungeRetention = DefaultExpungeRetention
	case opts.ExpungeRetention > 0:
		s.expungeRetention = opts.ExpungeRetention
	}
	if err := os.MkdirAll(s.tmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("store: create spool directory: %w", err)
	}

	switch {
	case postgres.IsURL(opts.URL):
		return s.openPostgres(opts.URL)
	case opts.URL != "":
		return nil, fmt.Errorf("store: store.url %q: not a postgres:// URL (empty means SQLite in the data directory)", opts.URL)
	}

	path := filepath.Join(dir, DBFile)
	var err error
	// The writer is opened (and migrated) first: it sets WAL mode, which is persistent in
	// the file, before any read-only connection exists.
	mmapSize := opts.MmapSize
	if mmapSize == 0 {
		mmapSize = sqlite.DefaultMmapSize
	}
	s.writer, err = sqlite.OpenMapped(path, sqlite.Writer, busyTimeout, mmapSize)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxIdleTime(0)
	s.writer.SetConnMaxLifetime(0)
	if err := s.migrate(context.Background()); err != nil {
		s.writer.Close()
		return nil, err
	}
	// From here on, writes go through the writer goroutine (write); stopWriter undoes it
	// when Open fails after all.
	go s.runWriter()
	stopWriter := func() {
		close(s.closing)
		<-s.writerDone
		s.writer.Close()
	}
	if err := s.openSearchIndex(context.Background()); err != nil {
		stopWriter()
		return nil, err
	}

	s.readers, err = sqlite.OpenMapped(path, sqlite.Reader, busyTimeout, mmapSize)
	if err != nil {
		stopWriter()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.readers.SetMaxOpenConns(n)
	s.readers.SetMaxIdleConns(n)

	s.watcher, err = startWatcher(s, path)
	if err != nil {
		s.readers.Close()
		stopWriter()
		return nil, err
	}
	s.startIndexer()
	s.startPruner()
	s.log.Debug("store opened", "dir", dir)
	return s, nil
}

// Close stops the change watcher and closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopIndexer() // it writes: before the writer stops
		s.stopPruner()  // so does it
		close(s.closing)
		<-s.writerDone // the transaction running finishes and answers its writers
		if s.watcher != nil {
			s.watcher.stop()
		}
		if s.pgListener != nil {
			s.pgListener.Close()
			s.locks.Close()
			s.penalties.Close()
		}
		s.closeErr = errors.Join(s.readers.Close(), s.writer.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("store: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// Dir is the data directory the store was opened on.
func (s *Store) Dir() string { return s.dir }

func (s *Store) tmpDir() string { return filepath.Join(s.dir, "tmp") }

// --- errors ---

// wrapErr adds context to err and marks the engines' transient conditions (a lock held
// too long by another connection or process, a full disk, an I/O error: sqlite.Temporary,
// postgres.Temporary) as ErrTemporary, so that callers answer "try again later" (LMTP 4xx, exit 75, [SYS/TEMP]); a full disk or a
// read-only store is ErrStorageFull, a kind of ErrTemporary.
func wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrTemporary):
		return fmt.Errorf("store: %s: %w", op, err)
	case storageFull(err):
		return fmt.Errorf("store: %s: %w: %w", op, ErrStorageFull, err)
	case postgres.Temporary(err):
		return fmt.Errorf("store: %s: %w: %w", op, ErrTemporary, err)
	case sqlite.Temporary(err):
		return fmt.Errorf("store: %s: %w: %w", op, ErrTemporary, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// storageFull reports whether err says the store cannot take more data: SQLite's
// SQLITE_FULL or SQLITE_READONLY, or a full disk, an exhausted filesystem quota or a
// read-only filesystem under SQLite (an I/O error carrying that errno) or under the spool
// (sqlite.StorageFull), or PostgreSQL's disk_full or read-only mode (postgres.StorageFull).
func storageFull(err error) bool {
	return postgres.StorageFull(err) || sqlite.StorageFull(err)
}

// --- write transactions ---

// maxBatch bounds how many queued writes one transaction takes (group commit).
const maxBatch = 64

// errClosed answers writes made after Close.
var errClosed = errors.New("store: closed")

// writeTx is one write request's view of the write transaction on the writer connection.
// It collects what must happen after the commit: the mailboxes whose modseq moved and the
// accounts whose watchers must be woken.
type writeTx struct {
	ctx     context.Context
	tx      *sql.Tx
	s       *Store
	mboxMod map[int64]int64 // mailbox id -> highest modseq written by this request
	touched map[int64]struct{}
	at      time.Time // the store's clock as of this request (now), once read
}

// now is the store's clock as of this write request, read once: everything one request
// records (INTERNALDATE when none is given, creation times, UIDVALIDITY, the change log's
// times, save dates) is one instant, and a stepping test clock (letterboxtest's
// deterministic mode) moves once per request, not once per row.
func (wt *writeTx) now() time.Time {
	if wt.at.IsZero() {
		wt.at = wt.s.now()
	}
	return wt.at
}

// writeRequest is one write waiting for the writer goroutine.
type writeRequest struct {
	ctx  context.Context
	op   string
	fn   func(wt *writeTx) error
	done chan error // the outcome, once committed (or failed); buffered
}

// write runs fn in a write transaction and returns once that transaction is committed
// (durable) or fn's work undone. It wakes the touched accounts' watchers after the commit
// (never before: a woken session must see the change).
//
// Group commit: fn runs on the writer goroutine (runWriter), in one transaction together
// with the other writes queued meanwhile, each inside its own savepoint, so that many
// concurrent writers share one commit (one fsync) and a failing fn undoes only its own
// work. fn must therefore touch the database only through wt and must not call a Store
// write method (that would wait for the writer, which is running fn).
func (s *Store) write(ctx context.Context, op string, fn func(wt *writeTx) error) error {
	defer s.observe.done(op, time.Now())
	req := &writeRequest{ctx: ctx, op: op, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		return wrapErr(op, ctx.Err())
	case <-s.closing:
		return fmt.Errorf("store: %s: %w", op, errClosed)
	}
	// Once taken, a request is always answered; fn may still be running until then.
	return <-req.done
}

// runWriter is the writer goroutine: it takes the writes queued while the previous
// transaction ran (at most maxBatch) and runs them in one transaction, until Close.
// Nothing waits to fill a batch: a lone writer commits at once, and writers that arrive
// during a commit share the next one.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	var batch []*writeRequest
	for {
		if len(batch) == 0 {
			select {
			case <-s.closing:
				return
			default:
			}
			select {
			case req := <-s.writes:
				batch = append(batch, req)
			case <-s.closing:
				return
			}
		}
	more:
		for len(batch) < maxBatch {
			select {
			case req := <-s.writes:
				batch = append(batch, req)
			default:
				break more
			}
		}
		batch = s.commitBatch(batch)
	}
}

// commitBatch runs the requests in one transaction, each in a savepoint (runRequest: a
// lone request needs none), commits, wakes the watchers and answers every request it
// ran. If the transaction itself fails (BEGIN, COMMIT, or SQLite abandoning it after a
// request's error, as it may on a full disk), the requests run so far fail with that
// error and those not yet run are returned, to run in the next transaction.
func (s *Store) commitBatch(batch []*writeRequest) (notRun []*writeRequest) {
	tx, err := s.writer.BeginTx(context.Background(), nil)
	if err != nil {
		for _, req := range batch {
			req.done <- wrapErr(req.op, err)
		}
		return nil
	}
	var ran []*writeRequest // run without error, awaiting the commit
	touched := map[int64]struct{}{}
	fail := func(err error) {
		tx.Rollback()
		for _, req := range ran {
			req.done <- temporary(wrapErr(req.op, err))
		}
	}
	for i, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.done <- wrapErr(req.op, err)
			continue
		}
		wt, err, txErr := s.runRequest(tx, req, len(batch) == 1)
		if txErr != nil {
			req.done <- wrapErr(req.op, err)
			fail(txErr)
			return batch[i+1:]
		}
		if err != nil {
			req.done <- wrapErr(req.op, err)
			continue
		}
		ran = append(ran, req)
		for id := range wt.touched {
			touched[id] = struct{}{}
		}
	}
	if err := tx.Commit(); err != nil {
		fail(err)
		return nil
	}
	if len(touched) > 0 {
		ids := make([]int64, 0, len(touched))
		for id := range touched {
			ids = append(ids, id)
		}
		s.hub.notify(ids...)
	}
	for _, req := range ran {
		req.done <- nil
	}
	return nil
}

// runRequest runs one request's fn inside a savepoint of tx. err is the request's own
// failure, its work undone; txErr says the transaction can no longer be used (its
// savepoint could not be taken, rolled back to or released).
//
// A request alone in its transaction (the batch of one that a lone writer gets) takes no
// savepoint: the transaction is its savepoint, and its failure is the transaction's
// (txErr), which commitBatch rolls back. The savepoint is not free in SQLite: a statement
// journal of the pages the request changes, which spills to a temporary file beyond 64
// KiB (under the benchmark: an open, some 30 writes and a close per APPEND).
// Keeping that journal in memory (temp_store=MEMORY) made big requests several times
// slower instead, such as deleting a mailbox of 10,000 messages.
func (s *Store) runRequest(tx *sql.Tx, req *writeRequest, alone bool) (wt *writeTx, err, txErr error) {
	// Statements run without the request's cancellation: interrupting one would make
	// SQLite roll back the whole shared transaction. The deadline was checked before.
	ctx := context.WithoutCancel(req.ctx)
	wt = &writeTx{ctx: ctx, tx: tx, s: s, mboxMod: map[int64]int64{}, touched: map[int64]struct{}{}}
	run := func() error {
		if err := runFn(req.fn, wt); err != nil {
			return err
		}
		return wt.flushModSeqs()
	}
	if alone {
		err = run()
		return wt, err, err
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT request`); err != nil {
		return nil, err, err
	}
	if err = run(); err != nil {
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO request`); rerr != nil {
			return nil, err, fmt.Errorf("%w (undoing it: %w)", err, rerr)
		}
	}
	if _, rerr := tx.ExecContext(ctx, `RELEASE request`); rerr != nil {
		return nil, cmp.Or(err, rerr), rerr
	}
	return wt, err, nil
}

// runFn calls fn, turning a panic into an error: the writer goroutine serves every
// session and must outlive a bug in one write.
func runFn(fn func(wt *writeTx) error, wt *writeTx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			wt.s.log.Error("panic in a store write", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(wt)
}

// temporary marks err as ErrTemporary unless it is already: a write that failed only
// because the transaction it shared failed is worth retrying.
func temporary(err error) error {
	if errors.Is(err, ErrTemporary) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrTemporary, err)
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
	res, err := wt.exec(`INSERT INTO changes (account_id, mailbox_id, uid, kind, at) VALUES (?, ?, ?, ?, ?)`,
		accountID, mailboxID, uid, kind, wt.now().Unix())
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

// IntegrityCheck runs SQLite's PRAGMA integrity_check and returns an error listing what
// it found unless the database is sound.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	rows, err := s.readers.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return wrapErr("integrity check", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return wrapErr("integrity check", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return wrapErr("integrity check", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: integrity check: %s", strings.Join(problems, "; "))
	}
	return nil
}
