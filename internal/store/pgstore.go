package store

import (
	"context"
	"fmt"
	"runtime"

	"github.com/letterbox-mail/letterbox/internal/store/postgres"
)

// PostgreSQL as the store's engine (store.url postgres://...; docs/architecture.md, "Two
// backends"). The domain logic
// is the same code as on SQLite: every method's SQL runs on both engines, translated for
// PostgreSQL by internal/store/postgres's driver, which also holds the schema, takes the cluster's
// write lock at the start of every write transaction, and reports generated keys. What
// differs is here: opening (no migrate.go, no WAL, no file watcher), the change
// notifications (LISTEN/NOTIFY instead of watching the database files) and the search
// index (pg_trgm instead of FTS5: postgres.SearchSchema). See docs/architecture.md, "Two backends".

// IsPostgresURL reports whether a store.url names a PostgreSQL server.
func IsPostgresURL(url string) bool { return postgres.IsURL(url) }

// openPostgres finishes Open for a PostgreSQL store.url: s has its options, and dir its
// spool directory.
func (s *Store) openPostgres(url string) (*Store, error) {
	ctx := context.Background()
	admin, err := postgres.Open(url, postgres.Admin, 0)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	covers, err := postgres.Migrate(ctx, admin)
	admin.Close()
	if err != nil {
		return nil, wrapErr("open PostgreSQL store", err)
	}
	if covers != len(migrations) {
		return nil, fmt.Errorf("store: the PostgreSQL schema matches SQLite schema %d, this program's SQLite schema is %d: internal/store/postgres needs the counterpart of migration %d", covers, len(migrations), covers+1)
	}
	s.pg = true
	if s.writer, err = postgres.Open(url, postgres.Writer, busyTimeout); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// One writer connection, as on SQLite: the group commit (runWriter) is the same.
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxIdleTime(0)
	s.writer.SetConnMaxLifetime(0)
	if err := s.writer.PingContext(ctx); err != nil {
		s.writer.Close()
		return nil, wrapErr("connect to PostgreSQL", err)
	}
	if s.readers, err = postgres.Open(url, postgres.Reader, busyTimeout); err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.readers.SetMaxOpenConns(n)
	s.readers.SetMaxIdleConns(n)
	if s.locks, err = postgres.Open(url, postgres.Admin, busyTimeout); err != nil {
		s.readers.Close()
		s.writer.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	s.locks.SetMaxOpenConns(maxMaildropLocks)
	s.locks.SetMaxIdleConns(2)
	if s.penalties, err = postgres.Open(url, postgres.Admin, busyTimeout); err != nil {
		s.readers.Close()
		s.writer.Close()
		s.locks.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	s.penalties.SetMaxOpenConns(maxPenaltyConns)
	s.penalties.SetMaxIdleConns(1)
	// Listen before the first write is taken, so that no commit of another node after
	// Open goes unnoticed. On a reconnection, commits may have been missed: every
	// watcher is woken (a wake-up is only a hint to read the change log).
	s.pgListener, err = postgres.Listen(ctx, url, s.log, func(ids []int64) { s.hub.notify(ids...) }, s.wakeAll)
	if err != nil {
		s.readers.Close()
		s.writer.Close()
		s.locks.Close()
		s.penalties.Close()
		return nil, wrapErr("listen for PostgreSQL change notifications", err)
	}
	go s.runWriter()
	if err := s.openSearchIndex(ctx); err != nil {
		close(s.closing)
		<-s.writerDone
		s.pgListener.Close()
		s.readers.Close()
		s.writer.Close()
		s.locks.Close()
		return nil, err
	}
	s.startIndexer()
	s.startPruner()
	s.log.Debug("store opened", "dir", s.dir, "engine", "postgres")
	return s, nil
}

// wakeAll wakes the watchers of every account that has any.
func (s *Store) wakeAll() {
	m, ok := s.hub.(*memHub)
	if !ok {
		return
	}
	m.mu.Lock()
	ids := make([]int64, 0, len(m.waiters))
	for id := range m.waiters {
		if id != anyAccount {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	s.hub.notify(ids...)
}
