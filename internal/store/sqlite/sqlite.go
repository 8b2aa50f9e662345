// Package sqlite is what the store needs of SQLite that PostgreSQL does not share: the
// schema (Migrations, in PRAGMA user_version's numbering), the full-text index's schema
// (SearchSchema, FTS5), the connections and their parameters (Open, one Role per use),
// the watching of the database files for other processes' commits (Watch), and the
// classification of SQLite's errors (Temporary, StorageFull). It is the mirror of
// internal/store/postgres. The domain logic stays in package store, which uses this package when
// store.url is empty (SQLite in the data directory); this package knows nothing of the
// store's types.
//
// Implementation notes:
//
//   - The driver is mattn/go-sqlite3 (cgo), used through a connector of ours (Open) that
//     sets what its DSN has no key for; it also registers itself as "sqlite3". Nothing else
//     of the module imports it but the store's tests, which build its error values
//     (cmd/letterbox's tests open the "sqlite3" driver by name). FTS5 is compiled in only
//     with the build tag sqlite_fts5 (the Makefile's default TAGS); without it
//     SearchSchema cannot be created and the store searches by reading every message.
//   - Connection parameters are DSN keys of go-sqlite3 (dsn). foreign_keys and
//     busy_timeout are per connection, so every connection of the store sets them
//     (commonParams); the writer sets WAL mode (persistent in the file), synchronous=FULL
//     and BEGIN IMMEDIATE; readers are query_only with deferred transactions. The store's
//     writer and readers read the file through a memory map (OpenMapped).
//   - The migration runner stays in package store (migrate.go): after two of the
//     migrations (MigrationSortKeys, MigrationThreadKeys) it fills sort_keys from the
//     store's parsed envelopes in the same transaction, which is domain logic.
//   - Watch notices other processes' commits (fsnotify on the data directory, a slow poll
//     where that fails, and PRAGMA data_version on a connection of its own) and then runs
//     the store's function, which reads the change log (the store's changes.go) and wakes
//     its sessions: what it reads is the store's SQL, as are the FTS5 queries of SEARCH
//     (fts.go), Backup's VACUUM INTO and Restore's carrying of counters (backup.go), which
//     stay in package store and open their connections here.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3" // also registers the "sqlite3" database/sql driver
)

// DefaultMmapSize is how much of the database file the store's own connections read
// through a memory map when the configuration says nothing (store.mmap_size): SQLite's
// ceiling, SQLITE_MAX_MMAP_SIZE.
const DefaultMmapSize = 0x7fff0000

// Role says what a pool of connections is for; each has its connection parameters.
type Role int

const (
	// Writer is the store's one writer connection: WAL mode, synchronous=FULL, and the
	// write lock taken at BEGIN (BEGIN IMMEDIATE): no deadlock-prone lock upgrades.
	Writer Role = iota
	// Reader connections are read-only (query_only) with deferred transactions.
	Reader
	// Admin connections have only the common parameters (Backup's VACUUM INTO, Restore's
	// carrying of counters).
	Admin
	// ReadOnlyFile opens the file read-only (mode=ro): a backup checked before a restore.
	ReadOnlyFile
	// Snapshot opens the file read-only, query_only, with deferred transactions: a backup
	// read by a store copy.
	Snapshot
	// QueryOnly connections are query_only (a target store checked for emptiness).
	QueryOnly
	// TakeOver has a one-second busy timeout and nothing else: Restore's check that no
	// other connection has the database open (leaving WAL mode).
	TakeOver
)

// Open opens a pool of connections to the SQLite database file at path, for role. A
// connection waits up to busyTimeout for a lock held by another connection (or process)
// before failing with SQLITE_BUSY, which Temporary reports (TakeOver waits one second).
func Open(path string, role Role, busyTimeout time.Duration) (*sql.DB, error) {
	return OpenMapped(path, role, busyTimeout, 0)
}

// OpenMapped is Open with the first mmapSize bytes of the database file read through a
// memory map (https://sqlite.org/mmap.html; 0 or less: none): a page read is then a
// pointer into the kernel's page cache instead of a pread and a copy into SQLite's own
// cache (a FETCH of 10,000 bodies reads most of its pages once; pread was a tenth of its
// CPU). Pages past mmapSize, and those still in the WAL, are read as before; writes never
// go through the map (SQLite is built without SQLITE_MMAP_READWRITE). The price: an I/O
// error reading a mapped page is a signal that ends the process, not an error SQLite can
// return, which is why it can be turned off (store.mmap_size: 0).
func OpenMapped(path string, role Role, busyTimeout time.Duration, mmapSize int64) (*sql.DB, error) {
	return sql.OpenDB(connector{dsn: dsn(path, role.params(busyTimeout)), mmapSize: mmapSize}), nil
}

// connector opens go-sqlite3 connections and sets what its DSN has no key for.
type connector struct {
	dsn      string
	mmapSize int64
}

var sqliteDriver = &sqlite3.SQLiteDriver{}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	conn, err := sqliteDriver.Open(c.dsn)
	if err != nil || c.mmapSize <= 0 {
		return conn, err
	}
	// PRAGMA takes no bound parameters; mmapSize is an integer.
	if _, err := conn.(*sqlite3.SQLiteConn).Exec(fmt.Sprintf("PRAGMA mmap_size = %d", c.mmapSize), nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sqlite: set mmap_size: %w", err)
	}
	return conn, nil
}

func (c connector) Driver() driver.Driver { return sqliteDriver }

func (r Role) params(busyTimeout time.Duration) []string {
	switch r {
	case Writer:
		return writerParams(busyTimeout)
	case Reader:
		return readerParams(busyTimeout)
	case ReadOnlyFile:
		return append([]string{"mode=ro"}, commonParams(busyTimeout)...)
	case Snapshot:
		return append([]string{"mode=ro", "_query_only=on", "_txlock=deferred"}, commonParams(busyTimeout)...)
	case QueryOnly:
		return append([]string{"_query_only=on"}, commonParams(busyTimeout)...)
	case TakeOver:
		return []string{"_busy_timeout=1000"}
	}
	return commonParams(busyTimeout)
}

// Connection parameters (mattn/go-sqlite3 DSN keys). foreign_keys and busy_timeout are per
// connection, so every connection sets them. The statement cache keeps the prepared
// statements of the hot paths (chunk reads, message listings, change-log inserts) per
// connection, keyed by their SQL text.
func commonParams(busyTimeout time.Duration) []string {
	return []string{
		"_foreign_keys=on",
		fmt.Sprintf("_busy_timeout=%d", busyTimeout.Milliseconds()),
		"_stmt_cache_size=64",
	}
}

func writerParams(busyTimeout time.Duration) []string {
	return append([]string{
		"_journal_mode=WAL",
		"_synchronous=FULL",
		"_txlock=immediate", // take the write lock at BEGIN: no deadlock-prone lock upgrades
	}, commonParams(busyTimeout)...)
}

func readerParams(busyTimeout time.Duration) []string {
	return append([]string{
		"_query_only=on",
		"_txlock=deferred",
	}, commonParams(busyTimeout)...)
}

func dsn(path string, params []string) string {
	u := url.URL{Scheme: "file", Path: path}
	return "file:" + u.EscapedPath() + "?" + strings.Join(params, "&")
}
