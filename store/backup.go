package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database to path while the store is in use. It
// runs VACUUM INTO on a connection of its own: a read transaction, so writers (of this or
// another process) carry on meanwhile. The copy is written beside path and renamed into
// place once complete and synced, so path never holds half a backup.
func (s *Store) Backup(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(abs), filepath.Base(abs)+".tmp-*")
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	// VACUUM INTO wants to create the file itself.
	if err := os.Remove(tmpName); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer os.Remove(tmpName)

	db, err := sql.Open("sqlite3", dsn(filepath.Join(s.dir, DBFile), commonParams()))
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmpName); err != nil {
		return wrapErr("backup", err)
	}
	if err := syncFile(tmpName); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	if err := os.Rename(tmpName, abs); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	s.log.Info("store backed up", "path", abs)
	return nil
}

func syncFile(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
