package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

// Backup writes a consistent copy of the database to path while the store is in use. It
// runs VACUUM INTO on a connection of its own: a read transaction, so writers (of this or
// another process) carry on meanwhile. The copy is written beside path and renamed into
// place once complete and synced, so path never holds half a backup.
//
// A PostgreSQL store is refused: it is backed up with pg_dump (or the provider's
// replication), not by Letterbox.
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.pg {
		return errors.New("store: backup: a PostgreSQL store is backed up with pg_dump or the server's replication, not by Letterbox")
	}
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

	db, err := sqlite.Open(filepath.Join(s.dir, DBFile), sqlite.Admin, busyTimeout)
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

// ErrInUse is returned by Restore when another connection (a running `letterbox serve`, a
// `deliver`) has the data directory's database open.
var ErrInUse = errors.New("store: the database is in use (stop letterbox serve first)")

// Restore replaces the database in data directory dir with the backup file (made by
// Backup), which must pass PRAGMA integrity_check and have a schema this program knows
// (an older one is migrated at the next Open). Nothing may have the database open: the
// current one is first switched out of WAL mode, which SQLite allows only to its sole
// user, so a running server is detected (ErrInUse) instead of being left writing into a
// file that is no longer there. The database replaced is kept beside it as
// letterbox.db.before-restore-<unix time> and its path returned ("" if there was none).
//
// UIDs, UIDVALIDITYs and modseqs handed out after the backup was made must not be handed
// out again for other messages: a POP3 client would take a new message for one it already
// has (same UIDL) and never download it, and an IMAP client would trust its cache. So the
// restored database takes over, from the one it replaces, every mailbox's uid_next (same
// account, name and UIDVALIDITY) and every account's last UIDVALIDITY where those are
// higher, and the id sequences of the change log (modseqs), mailboxes and bodies (RFC 8474
// MAILBOXID and EMAILID). If the replaced database cannot be read, that
// fails the restore; move it away first to restore without it (docs/migration.md).
func Restore(ctx context.Context, dir, backup string) (kept string, err error) {
	if err := checkBackup(ctx, backup); err != nil {
		return "", err
	}
	live := filepath.Join(dir, DBFile)
	if _, err := os.Stat(live); err == nil {
		if err := takeOver(ctx, live); err != nil {
			return "", err
		}
		kept = fmt.Sprintf("%s.before-restore-%d", live, time.Now().Unix())
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	tmp, err := os.CreateTemp(dir, DBFile+".restore-*")
	if err != nil {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	defer os.Remove(tmp.Name())
	src, err := os.Open(backup)
	if err != nil {
		tmp.Close()
		return "", fmt.Errorf("store: restore: %w", err)
	}
	_, err = io.Copy(tmp, src)
	src.Close()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	if kept != "" {
		if err := carryCounters(ctx, tmp.Name(), live); err != nil {
			return "", err
		}
		if err := os.Rename(live, kept); err != nil {
			return "", fmt.Errorf("store: restore: %w", err)
		}
	}
	// A WAL or shared-memory file left beside the name belongs to the old database and
	// must never be applied to the restored one.
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(live + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return kept, fmt.Errorf("store: restore: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), live); err != nil {
		return kept, fmt.Errorf("store: restore: %w", err)
	}
	return kept, syncDir(dir)
}

// carryCounters raises, in the restored database restored, the counters that only grow
// to where the replaced database live had taken them (see Restore).
func carryCounters(ctx context.Context, restored, live string) error {
	db, err := sqlite.Open(restored, sqlite.Admin, busyTimeout)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // ATTACH is per connection
	steps := []string{
		`ATTACH DATABASE ? AS old`,
		`UPDATE mailboxes SET uid_next = max(uid_next, coalesce((
			SELECT om.uid_next FROM old.mailboxes om
			JOIN old.accounts oa ON oa.id = om.account_id
			JOIN main.accounts a ON a.address = oa.address
			WHERE a.id = mailboxes.account_id AND om.name = mailboxes.name AND om.uidvalidity = mailboxes.uidvalidity), 0))`,
		`UPDATE accounts SET last_uidvalidity = max(last_uidvalidity, coalesce((
			SELECT oa.last_uidvalidity FROM old.accounts oa WHERE oa.address = accounts.address), 0))`,
		// modseqs, and the ids RFC 8474's MAILBOXID and EMAILID are made of (Mailbox.ObjectID,
		// Message.EmailID), are never handed out twice, even across a restore.
		`UPDATE main.sqlite_sequence SET seq = max(seq, coalesce((
			SELECT seq FROM old.sqlite_sequence o WHERE o.name = sqlite_sequence.name), 0))
			WHERE name IN ('changes', 'mailboxes', 'bodies')`,
		`DETACH DATABASE old`,
	}
	for i, q := range steps {
		var args []any
		if i == 0 {
			args = []any{live}
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store: restore: carrying UIDs over from %s: %w", live, err)
		}
	}
	return nil
}

// checkBackup opens a backup read-only and checks that it is a whole, known store.
func checkBackup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	db, err := sqlite.Open(path, sqlite.ReadOnlyFile, busyTimeout)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil {
		return fmt.Errorf("store: restore: %s is not a database: %w", path, err)
	}
	if result != "ok" {
		return fmt.Errorf("store: restore: %s fails the integrity check: %s", path, result)
	}
	var version int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if version < 1 || version > len(migrations) {
		return fmt.Errorf("store: restore: %s has schema version %d; this program knows 1 to %d", path, version, len(migrations))
	}
	var accounts int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&accounts); err != nil {
		return fmt.Errorf("store: restore: %s is not a Letterbox store: %w", path, err)
	}
	return nil
}

// takeOver makes sure nobody else has the database open: leaving WAL mode needs exclusive
// access (SQLite refuses while another connection is open), and checkpoints the WAL into
// the file on the way.
func takeOver(ctx context.Context, path string) error {
	db, err := sqlite.Open(path, sqlite.TakeOver, 0)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode = DELETE`).Scan(&mode); err != nil || mode != "delete" {
		return fmt.Errorf("%w (%s: journal mode %q, %v)", ErrInUse, path, mode, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	return nil
}
