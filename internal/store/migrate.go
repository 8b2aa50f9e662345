package store

import (
	"context"
	"fmt"

	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

// migrations are SQLite's schema versions (internal/store/sqlite's Migrations, where their SQL is):
// migrations[i] brings the schema from version i to version i+1 (PRAGMA user_version).
var migrations = sqlite.Migrations

// migrate brings the schema up to date, one migration per transaction. The version is read
// inside the (BEGIN IMMEDIATE) transaction, so two processes opening a fresh directory at
// once cannot both apply the same migration.
func (s *Store) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateOne(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func (s *Store) migrateOne(ctx context.Context) (done bool, err error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return false, wrapErr("migrate", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return false, wrapErr("migrate: read schema version", err)
	}
	switch {
	case version == len(migrations):
		return true, nil
	case version > len(migrations):
		return false, fmt.Errorf("store: database schema version %d is newer than this program (%d)", version, len(migrations))
	}
	if _, err := tx.ExecContext(ctx, migrations[version]); err != nil {
		return false, wrapErr(fmt.Sprintf("migrate to schema version %d", version+1), err)
	}
	if migrations[version] == sqlite.MigrationThreadKeys {
		// Every body's keys in sort_keys before bodies' copies go (none should lack them).
		if err := fillSortKeys(ctx, tx); err != nil {
			return false, err
		}
	}
	if migrations[version] == sqlite.MigrationSortKeys {
		if err := fillSortKeys(ctx, tx); err != nil {
			return false, err
		}
	}
	// PRAGMA takes no bound parameters; version is an int we computed.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version+1)); err != nil {
		return false, wrapErr("migrate: set schema version", err)
	}
	if err := tx.Commit(); err != nil {
		return false, wrapErr("migrate: commit", err)
	}
	s.log.Info("store schema migrated", "version", version+1)
	return false, nil
}
