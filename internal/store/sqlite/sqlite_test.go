package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Each role's connections have the pragmas the store relies on: the writer's WAL, full
// sync and foreign keys; the readers' query_only (a write through them fails).
func TestOpenRoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b.db") // a space: the DSN escapes the path
	w, err := Open(path, Writer, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Exec(Migrations[0]); err != nil {
		t.Fatalf("first migration: %v", err)
	}
	var mode string
	var fk, sync, busy int
	if err := w.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("writer journal_mode %q, %v; want wal", mode, err)
	}
	if err := w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("writer foreign_keys %d, %v; want 1", fk, err)
	}
	if err := w.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Errorf("writer synchronous %d, %v; want 2 (FULL)", sync, err)
	}
	if err := w.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != 2000 {
		t.Errorf("writer busy_timeout %d, %v; want 2000", busy, err)
	}

	r, err := Open(path, Reader, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Exec(`INSERT INTO accounts (address, password_hash, created) VALUES ('a', 'x', 0)`); err == nil {
		t.Error("a reader connection wrote")
	}
	if err := r.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("reader foreign_keys %d, %v; want 1", fk, err)
	}
	if _, err := w.Exec(`INSERT INTO accounts (address, password_hash, created) VALUES ('a', 'x', 0)`); err != nil {
		t.Errorf("the writer cannot write: %v", err)
	}
	// OpenMapped's connections read the file through a memory map of the size asked for;
	// Open's do not.
	m, err := OpenMapped(path, Reader, time.Second, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for name, tc := range map[string]struct {
		db   *sql.DB
		want int64
	}{"mapped": {m, 1 << 30}, "reader": {r, 0}, "writer": {w, 0}} {
		var mmap int64
		if err := tc.db.QueryRow(`PRAGMA mmap_size`).Scan(&mmap); err != nil || mmap != tc.want {
			t.Errorf("%s mmap_size %d, %v; want %d", name, mmap, err, tc.want)
		}
	}
	var n int
	if err := m.QueryRow(`SELECT count(*) FROM accounts`).Scan(&n); err != nil || n != 1 {
		t.Errorf("reading through the map: %d accounts, %v; want 1", n, err)
	}
}

// Commit after commit is noticed through the file system alone (the slow poll is off): the
// watch the first write event suspends is back for the next commit.
func TestWatchSeesEveryCommitWithoutPolling(t *testing.T) {
	defer func(d time.Duration) { watchPollNotify = d }(watchPollNotify)
	watchPollNotify = time.Hour
	path := filepath.Join(t.TempDir(), "w.db")
	w, err := Open(path, Writer, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	calls := make(chan struct{}, 64)
	watcher, err := Watch(path, time.Second, slog.New(slog.DiscardHandler),
		func(ctx context.Context, conn *sql.Conn) error { return nil },
		func(ctx context.Context, conn *sql.Conn) error { calls <- struct{}{}; return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Stop()
	if watcher.fs == nil {
		t.Skip("no fsnotify here: the watcher polls")
	}
	for i := range 5 {
		if _, err := w.Exec(`INSERT INTO t VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		select {
		case <-calls:
		case <-time.After(30 * time.Second):
			t.Fatalf("commit %d not noticed", i+1)
		}
	}
}

func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		err             error
		temporary, full bool
	}{
		{sqlite3.Error{Code: sqlite3.ErrBusy}, true, false},
		{fmt.Errorf("wrapped: %w", sqlite3.Error{Code: sqlite3.ErrLocked}), true, false},
		{sqlite3.Error{Code: sqlite3.ErrNomem}, true, false},
		{sqlite3.Error{Code: sqlite3.ErrIoErr, SystemErrno: syscall.EIO}, true, false},
		{sqlite3.Error{Code: sqlite3.ErrIoErr, SystemErrno: syscall.ENOSPC}, true, true},
		{sqlite3.Error{Code: sqlite3.ErrFull}, false, true},
		{sqlite3.Error{Code: sqlite3.ErrReadonly}, false, true},
		{sqlite3.Error{Code: sqlite3.ErrConstraint}, false, false},
		{fmt.Errorf("spool: %w", syscall.EDQUOT), false, true},
		{errors.New("other"), false, false},
	} {
		if got := Temporary(tc.err); got != tc.temporary {
			t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, tc.temporary)
		}
		if got := StorageFull(tc.err); got != tc.full {
			t.Errorf("StorageFull(%v) = %v, want %v", tc.err, got, tc.full)
		}
	}
}

// A commit by another connection runs the watcher's function; a failing run is tried again
// at the next check, until it succeeds.
func TestWatchSeesOtherConnectionsCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	w, err := Open(path, Writer, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	firsts := 0
	calls := make(chan int, 16)
	n := 0
	watcher, err := Watch(path, time.Second, slog.New(slog.DiscardHandler),
		func(ctx context.Context, conn *sql.Conn) error { firsts++; return nil },
		func(ctx context.Context, conn *sql.Conn) error {
			n++
			calls <- n
			if n == 1 {
				return errors.New("first call fails")
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Stop()
	if firsts != 1 {
		t.Errorf("first ran %d times before Watch returned, want 1", firsts)
	}
	if _, err := w.Exec(`INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("call %d, want %d", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("changed not called a %d. time after a commit", want)
		}
	}
}
