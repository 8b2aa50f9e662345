package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/letterbox-mail/letterbox/internal/store/postgres"
	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

// Copying a whole store into an empty one, of either engine (`letterbox store copy`,
// docs/operations.md): table by table, row for row, with every id as it is, so that
// UIDVALIDITY, UIDs, UIDNEXT, modseqs, RFC 8474's MAILBOXID, EMAILID and THREADID, POP3
// UIDLs and IMAP clients' caches (QRESYNC's tombstones included) stay valid.
//
// Implementation notes:
//
//   - Both engines have the same tables and columns (docs/architecture.md, "Two
//     backends"), and both stores are at this program's schema version (Open migrates;
//     CopyBackup refuses another version), so the copy is one list of tables (copyTables),
//     in the order their foreign keys need.
//   - The source is read in one read transaction: one snapshot (SQLite's WAL read
//     transaction, PostgreSQL's REPEATABLE READ), so a copy of a store that a server is
//     writing meanwhile is still one moment of it. Every table is read in pages in key
//     order (keyset: WHERE key > last), one query at a time on that transaction, so no
//     page holds more than copyPage rows, and a body's chunks are read a few at a time:
//     neither a whole mailbox nor a whole message is ever in memory.
//   - The target is written through its writer (write), in transactions of at most
//     copyTxBytes or copyTxRows rows, each a few multi-row INSERTs. A failed copy leaves
//     what was committed: the target must be emptied before a new attempt (Copy refuses a
//     target that is not empty).
//   - What is derived is not copied but rebuilt: the account counters (used_bytes,
//     message_count) by the triggers on messages, the search index (bodies_fts) by the
//     target's background indexer, and PREVIEW texts that were never computed stay to be
//     computed when asked for. PostgreSQL's login_penalties are a cluster's short-lived
//     state and are not copied either.
//   - The generators go past everything the source ever handed out, not only past the
//     rows it still has (a pruned tombstone's modseq, a deleted account's ids): SQLite's
//     sqlite_sequence, PostgreSQL's identity sequences and modseq_counter.
//   - Values keep their meaning across engines: what PostgreSQL keeps as BYTEA and SQLite
//     as TEXT (a header, a subject) is written to SQLite as text, so that its comparisons
//     (message_id != '') hold; what SQLite keeps as a BLOB stays one.

// ErrNotEmpty is returned by Copy, CopyBackup and CheckEmpty for a target store that
// holds anything already.
var ErrNotEmpty = errors.New("store: the target store is not empty")

// CopyProgress is how far a copy has got; Copy reports it after every transaction it
// commits on the target, and returns the last one.
type CopyProgress struct {
	Accounts, Mailboxes int64 // copied so far
	Messages            int64 // messages rows copied so far, of MessagesTotal
	Bytes               int64 // message octets (body chunks) copied so far, of BytesTotal
	MessagesTotal       int64
	BytesTotal          int64
}

// copyTable is one table Copy copies: its columns, the key its pages are read in order
// of (a prefix of cols), and the columns SQLite keeps as BLOB (every other column that
// holds octets is TEXT there).
type copyTable struct {
	name  string
	cols  []string
	key   int // the first key columns of cols are the primary key
	blobs map[string]bool
	page  int // rows per page read
}

// copyTables are the tables Copy copies, in an order their foreign keys allow. bodies is
// followed by its chunks and sort keys page by page (copyBodies), not as a table of its
// own. The account counters are left out: the triggers on messages count them again.
var copyTables = []copyTable{
	{name: "accounts", key: 1, page: 500, cols: []string{"id", "address", "password_hash", "quota_bytes",
		"quota_messages", "protocols", "disabled", "created", "last_uidvalidity"}},
	{name: "aliases", key: 1, page: 1000, cols: []string{"address", "account_id"}},
	{name: "subscriptions", key: 2, page: 1000, cols: []string{"account_id", "name"}},
	{name: "mailboxes", key: 1, page: 1000, cols: []string{"id", "account_id", "name", "special_use",
		"uidvalidity", "uid_next", "subscribed", "modseq", "recent_uid", "expunge_floor"}},
	{name: "bodies", key: 1, page: 32, blobs: map[string]bool{"envelope": true, "structure": true},
		cols: []string{"id", "size", "header_size", "lines", "envelope", "structure", "header", "body_text", "preview"}},
	{name: "messages", key: 1, page: 1000, cols: []string{"id", "mailbox_id", "uid", "body_id", "sysflags",
		"keywords", "internal_date", "internal_tz", "size", "modseq", "save_date", "thread_id"}},
	{name: "changes", key: 1, page: 2000, cols: []string{"modseq", "account_id", "mailbox_id", "uid", "kind", "at"}},
}

var (
	chunkTable = copyTable{name: "body_chunks", key: 2, page: 16, blobs: map[string]bool{"data": true},
		cols: []string{"body_id", "seq", "data"}}
	sortKeysTable = copyTable{name: "sort_keys", key: 1, page: 1000,
		cols: []string{"body_id", "sent_date", "subject", "message_id", "in_reply_to", "refs"}}
)

// copiedTables are every table CheckEmpty and Copy look at for rows.
var copiedTables = []string{"accounts", "aliases", "subscriptions", "mailboxes", "bodies", "body_chunks", "sort_keys", "messages", "changes"}

// sequenced are the tables whose generated key the target must take past the source's:
// SQLite's AUTOINCREMENT tables (sqlite_sequence), PostgreSQL's identity columns, and the
// change log's modseq (modseq_counter on PostgreSQL).
var sequenced = []string{"accounts", "mailboxes", "bodies", "messages", "changes"}

// Bounds of one transaction on the target, and of one multi-row INSERT. Variables so that
// tests can make a small store take many transactions.
var (
	copyTxBytes   = 4 << 20
	copyTxRows    = 5000
	copyStmtRows  = 100
	copyStmtBytes = 512 << 10 // a statement's values (one row may be more: a 64 KiB chunk, a 1 MiB text)
)

// Copy copies the whole store src into dst, which must be empty (ErrNotEmpty), keeping
// every id, UID, UIDVALIDITY and modseq (see the notes above). progress, if not nil, is
// called after every transaction committed on dst. src may be in use meanwhile: it is
// read in one snapshot.
func Copy(ctx context.Context, src, dst *Store, progress func(CopyProgress)) (CopyProgress, error) {
	tx, err := src.readers.BeginTx(ctx, nil)
	if err != nil {
		return CopyProgress{}, wrapErr("copy: read the source", err)
	}
	defer tx.Rollback()
	return copyFrom(ctx, tx, src.pg, dst, progress)
}

// CopyBackup is Copy from a backup file (Backup's, `letterbox backup`), opened read-only:
// nothing is written to it. It must have this program's schema version; an older backup
// is restored (Restore) into a scratch data directory first, which migrates it.
func CopyBackup(ctx context.Context, path string, dst *Store, progress func(CopyProgress)) (CopyProgress, error) {
	if _, err := os.Stat(path); err != nil {
		return CopyProgress{}, fmt.Errorf("store: copy: %w", err)
	}
	db, err := sqlite.Open(path, sqlite.Snapshot, busyTimeout)
	if err != nil {
		return CopyProgress{}, fmt.Errorf("store: copy: open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return CopyProgress{}, wrapErr("copy: open "+path, err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return CopyProgress{}, fmt.Errorf("store: copy: %s is not a database: %w", path, err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'accounts'`).Scan(&n); err != nil || n == 0 {
		return CopyProgress{}, fmt.Errorf("store: copy: %s is not a Letterbox store (%v)", path, err)
	}
	if version != len(migrations) {
		return CopyProgress{}, fmt.Errorf("store: copy: %s has schema version %d, this program's is %d: restore it into a scratch data directory first (letterbox --data DIR restore FILE, which migrates it) and copy from there", path, version, len(migrations))
	}
	return copyFrom(ctx, tx, false, dst, progress)
}

// CheckEmpty reports ErrNotEmpty if the store in data directory dir (url empty), or the
// PostgreSQL database url names, holds any row of what Copy copies, without creating or
// migrating anything: a store that does not exist yet is empty. Copy checks again on the
// target it opened; this lets a command refuse before Open migrates a store it must not
// touch.
func CheckEmpty(ctx context.Context, dir, url string) error {
	var db *sql.DB
	var tables string
	var err error
	if postgres.IsURL(url) {
		if db, err = postgres.Open(url, postgres.Reader, busyTimeout); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		tables = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	} else {
		path := filepath.Join(dir, DBFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if db, err = sqlite.Open(path, sqlite.QueryOnly, busyTimeout); err != nil {
			return fmt.Errorf("store: open %s: %w", path, err)
		}
		tables = `SELECT name FROM sqlite_master WHERE type = 'table'`
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, tables)
	if err != nil {
		return wrapErr("check the target store", err)
	}
	present := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return wrapErr("check the target store", err)
		}
		present[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrapErr("check the target store", err)
	}
	var names []string
	for _, t := range copiedTables {
		if present[t] {
			names = append(names, t)
		}
	}
	return checkEmpty(ctx, db, names)
}

// queryRower is a *sql.DB or a *sql.Tx.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkEmpty reports ErrNotEmpty, saying what is there, if any of tables has a row.
func checkEmpty(ctx context.Context, db queryRower, tables []string) error {
	for _, t := range tables {
		var found bool
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+t+`)`).Scan(&found); err != nil {
			return wrapErr("check the target store", err)
		}
		if found {
			what := t
			if t == "accounts" {
				var n int64
				if err := db.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err == nil {
					what = fmt.Sprintf("%d account(s)", n)
				}
			} else {
				what = "rows in " + t
			}
			return fmt.Errorf("%w: it holds %s", ErrNotEmpty, what)
		}
	}
	return nil
}

// copier is one copy under way: the source's snapshot, the target, and the rows read but
// not yet written.
type copier struct {
	ctx      context.Context
	src      *sql.Tx
	srcPG    bool
	dst      *Store
	progress func(CopyProgress)
	done     CopyProgress // committed on dst
	pending  CopyProgress // done, once the pending rows are committed
	batches  []*rowBatch  // in the order they must be inserted
	rows     int
	bytes    int
}

// rowBatch is rows of one table waiting for the next transaction.
type rowBatch struct {
	table *copyTable
	rows  [][]any
}

func copyFrom(ctx context.Context, src *sql.Tx, srcPG bool, dst *Store, progress func(CopyProgress)) (CopyProgress, error) {
	c := &copier{ctx: ctx, src: src, srcPG: srcPG, dst: dst, progress: progress}
	if err := checkEmpty(ctx, dst.readers, copiedTables); err != nil {
		return CopyProgress{}, err
	}
	// The snapshot is taken at the transaction's first read: this one.
	if err := src.QueryRowContext(ctx, `SELECT count(*), (SELECT CAST(coalesce(sum(size), 0) AS BIGINT) FROM bodies) FROM messages`).
		Scan(&c.done.MessagesTotal, &c.done.BytesTotal); err != nil {
		return CopyProgress{}, wrapErr("copy: read the source", err)
	}
	counters, err := c.sourceCounters()
	if err != nil {
		return c.done, err
	}
	c.pending = c.done
	if progress != nil {
		progress(c.done)
	}
	for i := range copyTables {
		t := &copyTables[i]
		if t.name == "bodies" {
			err = c.copyBodies(t)
		} else {
			err = c.copyRows(t, "", nil, nil)
		}
		if err != nil {
			return c.done, err
		}
	}
	if err := c.flush(); err != nil {
		return c.done, err
	}
	if err := c.setCounters(counters); err != nil {
		return c.done, err
	}
	return c.done, nil
}

// copyRows copies the rows of t that match where (a condition on t's columns, with
// args), page by page in key order, calling seen with each row as read.
func (c *copier) copyRows(t *copyTable, where string, args []any, seen func(row []any)) error {
	var last []any
	for {
		conds := where
		qargs := append([]any(nil), args...)
		if last != nil {
			keys := strings.Join(t.cols[:t.key], ", ")
			marks := strings.TrimSuffix(strings.Repeat("?, ", t.key), ", ")
			if t.key > 1 {
				keys, marks = "("+keys+")", "("+marks+")"
			}
			if conds != "" {
				conds += " AND "
			}
			conds += keys + " > " + marks
			qargs = append(qargs, last...)
		}
		q := `SELECT ` + strings.Join(t.cols, ", ") + ` FROM ` + t.name
		if conds != "" {
			q += ` WHERE ` + conds
		}
		q += ` ORDER BY ` + strings.Join(t.cols[:t.key], ", ") + fmt.Sprintf(` LIMIT %d`, t.page)
		page, size, err := c.readPage(t, q, qargs)
		if err != nil {
			return err
		}
		if seen != nil {
			for _, row := range page {
				seen(row)
			}
		}
		if len(page) > 0 {
			last = page[len(page)-1][:t.key]
			if err := c.queue(t, page, size); err != nil {
				return err
			}
		}
		if len(page) < t.page {
			return nil
		}
	}
}

// readPage reads one page of rows of t, with each value as the target's engine must be
// given it, and their size in octets.
func (c *copier) readPage(t *copyTable, q string, args []any) ([][]any, int, error) {
	rows, err := c.src.QueryContext(c.ctx, q, args...)
	if err != nil {
		return nil, 0, wrapErr("copy: read "+t.name, err)
	}
	defer rows.Close()
	var page [][]any
	size := 0
	for rows.Next() {
		row := make([]any, len(t.cols))
		ptrs := make([]any, len(row))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, 0, wrapErr("copy: read "+t.name, err)
		}
		size += rowSize(row)
		for i, v := range row {
			switch x := v.(type) {
			case []byte:
				// Octets SQLite keeps as TEXT (PostgreSQL's BYTEA, or pgx's text) go to
				// SQLite as a string; PostgreSQL takes either.
				if !c.dst.pg && !t.blobs[t.cols[i]] {
					row[i] = string(x)
				}
			case string:
				if !c.dst.pg && t.blobs[t.cols[i]] {
					row[i] = []byte(x)
				}
			}
		}
		page = append(page, row)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, wrapErr("copy: read "+t.name, err)
	}
	return page, size, nil
}

// copyBodies copies the bodies, each page followed by its chunks and sort keys, so that
// every chunk's body is written before it (or in the same transaction).
func (c *copier) copyBodies(t *copyTable) error {
	var last int64
	for {
		page, size, err := c.readPage(t, `SELECT `+strings.Join(t.cols, ", ")+` FROM bodies WHERE id > ? ORDER BY id LIMIT ?`, []any{last, t.page})
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		first, ok1 := page[0][0].(int64)
		end, ok2 := page[len(page)-1][0].(int64)
		if !ok1 || !ok2 {
			return fmt.Errorf("store: copy: read bodies: an id of type %T", page[0][0])
		}
		last = end
		if err := c.queue(t, page, size); err != nil {
			return err
		}
		between := `body_id BETWEEN ? AND ?`
		if err := c.copyRows(&chunkTable, between, []any{first, last}, func(row []any) {
			switch data := row[2].(type) {
			case []byte:
				c.pending.Bytes += int64(len(data))
			case string:
				c.pending.Bytes += int64(len(data))
			}
		}); err != nil {
			return err
		}
		if err := c.copyRows(&sortKeysTable, between, []any{first, last}, nil); err != nil {
			return err
		}
		if len(page) < t.page {
			return nil
		}
	}
}

// queue adds rows of t to what the next transaction writes, and writes them once that is
// as much as a transaction takes.
func (c *copier) queue(t *copyTable, rows [][]any, size int) error {
	switch t.name {
	case "accounts":
		c.pending.Accounts += int64(len(rows))
	case "mailboxes":
		c.pending.Mailboxes += int64(len(rows))
	case "messages":
		c.pending.Messages += int64(len(rows))
	}
	if n := len(c.batches); n > 0 && c.batches[n-1].table == t {
		c.batches[n-1].rows = append(c.batches[n-1].rows, rows...)
	} else {
		c.batches = append(c.batches, &rowBatch{table: t, rows: rows})
	}
	c.rows += len(rows)
	c.bytes += size
	if c.rows >= copyTxRows || c.bytes >= copyTxBytes {
		return c.flush()
	}
	return nil
}

// flush writes the queued rows in one transaction on the target.
func (c *copier) flush() error {
	if len(c.batches) == 0 {
		return nil
	}
	batches := c.batches
	err := c.dst.write(c.ctx, "copy rows", func(wt *writeTx) error {
		for _, b := range batches {
			for rows := b.rows; len(rows) > 0; {
				n, size := 0, 0
				for n < len(rows) && n < copyStmtRows && (n == 0 || size < copyStmtBytes) {
					size += rowSize(rows[n])
					n++
				}
				if err := insertRows(wt, b.table, rows[:n]); err != nil {
					return err
				}
				rows = rows[n:]
			}
		}
		return nil
	})
	if err != nil {
		return err // "store: copy rows: ..."
	}
	c.batches, c.rows, c.bytes = nil, 0, 0
	c.done = c.pending
	if c.progress != nil {
		c.progress(c.done)
	}
	return nil
}

// rowSize is about how many octets a row read by readPage holds.
func rowSize(row []any) int {
	size := 0
	for _, v := range row {
		switch x := v.(type) {
		case []byte:
			size += len(x)
		case string:
			size += len(x)
		default:
			size += 8
		}
	}
	return size
}

// insertRows inserts rows into t with one multi-row INSERT.
func insertRows(wt *writeTx, t *copyTable, rows [][]any) error {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
	var q strings.Builder
	q.WriteString("INSERT INTO " + t.name + " (" + strings.Join(t.cols, ", ") + ") VALUES ")
	args := make([]any, 0, len(rows)*len(t.cols))
	for i, row := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(one)
		args = append(args, row...)
	}
	if _, err := wt.exec(q.String(), args...); err != nil {
		return fmt.Errorf("insert into %s: %w", t.name, err)
	}
	return nil
}

// sourceCounters reads, per sequenced table, the highest key the source has ever handed
// out.
func (c *copier) sourceCounters() (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range sequenced {
		var q string
		switch {
		case !c.srcPG:
			q = `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = '` + t + `'), 0)`
		case t == "changes":
			q = `SELECT last FROM modseq_counter`
		default:
			q = `SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('` + t + `', 'id')::regclass), 0)`
		}
		var n int64
		if err := c.src.QueryRowContext(c.ctx, q).Scan(&n); err != nil {
			return nil, wrapErr("copy: read the source's "+t+" sequence", err)
		}
		out[t] = n
	}
	return out, nil
}

// setCounters takes the target's generators past the source's counters and past every
// key copied.
func (c *copier) setCounters(counters map[string]int64) error {
	err := c.dst.write(c.ctx, "copy sequences", func(wt *writeTx) error {
		for _, t := range sequenced {
			key := "id"
			if t == "changes" {
				key = "modseq"
			}
			var maxKey int64
			if err := wt.queryRow(`SELECT coalesce(max(` + key + `), 0) FROM ` + t).Scan(&maxKey); err != nil {
				return fmt.Errorf("highest %s key: %w", t, err)
			}
			n := max(maxKey, counters[t])
			if n == 0 {
				continue
			}
			var err error
			switch {
			case !c.dst.pg:
				var res sql.Result
				if res, err = wt.exec(`UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?`, n, t); err == nil {
					if changed, _ := res.RowsAffected(); changed == 0 {
						_, err = wt.exec(`INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)`, t, n)
					}
				}
			case t == "changes":
				_, err = wt.exec(`UPDATE modseq_counter SET last = max(last, ?)`, n)
			default:
				seq := `pg_get_serial_sequence('` + t + `', 'id')`
				_, err = wt.exec(`SELECT setval(`+seq+`, max(?, coalesce(pg_sequence_last_value(`+seq+`::regclass), 0)))`, n)
			}
			if err != nil {
				return fmt.Errorf("set the %s sequence: %w", t, err)
			}
		}
		return nil
	})
	return err
}
