package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// TestBackupRestoreWhileServing backs up while `serve` takes deliveries, restores as
// docs/migration.md says (stop serve, `letterbox restore FILE`), and proves the restored
// store passes PRAGMA integrity_check and serves the backup's UIDLs, UIDs and flags, and
// never hands out again a UID the replaced store had handed out.
func TestBackupRestoreWhileServing(t *testing.T) {
	const user, pass = "erin@example.com", "pw"
	data := t.TempDir()
	srv := startE2E(t, data)
	srv.addUser(user, pass)
	for i := 0; i < 10; i++ {
		if err := lmtpDeliver(srv.ports["lmtp"], user, fmt.Sprintf("<before%d@example.org>", i)); err != nil {
			t.Fatal(err)
		}
	}
	c := imapLogin(t, srv.ports["imap"], user, pass)
	imapStoreFlags(t, c, "INBOX", 1, imap.StoreFlagsAdd, imap.FlagSeen, "$Label1")
	imapStoreFlags(t, c, "INBOX", 2, imap.StoreFlagsAdd, imap.FlagFlagged)
	imapStoreFlags(t, c, "INBOX", 3, imap.StoreFlagsAdd, imap.FlagDeleted)
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()

	stop := deliverMeanwhile(t, srv.ports["lmtp"], user)
	backup := filepath.Join(t.TempDir(), "letterbox-backup.db")
	out, code := srv.cli("", "backup", backup)
	for i := 0; i < 3; i++ { // some deliveries certainly after the backup
		if err := lmtpDeliver(srv.ports["lmtp"], user, fmt.Sprintf("<after%d@example.org>", i)); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if code != 0 {
		t.Fatalf("backup while serving: exit %d: %s", code, out)
	}

	// What the backup holds, read from a copy of it; and what the live store holds.
	copyDir := t.TempDir()
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(copyDir, store.DBFile), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	want := accountView(t, copyDir, user)["INBOX"]
	live := accountView(t, data, user)["INBOX"]
	// A consistent snapshot: exactly the live messages below the backup's UIDNEXT.
	var prefix []exportedMessage
	for _, m := range live.Messages {
		if m.UID < want.UIDNext {
			prefix = append(prefix, m)
		}
	}
	if len(want.Messages) < 9 || !reflect.DeepEqual(want.Messages, prefix) {
		t.Fatalf("the backup holds %d messages below UIDNEXT %d; the live store %d", len(want.Messages), want.UIDNext, len(prefix))
	}

	// Not while serve runs.
	out, code = srv.cli("", "restore", backup)
	if code != exitTempFail || !strings.Contains(out, "in use") {
		t.Fatalf("restore while serving: exit %d: %s", code, out)
	}

	// Stop serve (SIGTERM, as an operator would), then restore.
	srv.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- srv.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang guard, not a timing check
		t.Fatal("serve did not stop on SIGTERM")
	}
	out, code = srv.cli("", "restore", backup)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, out)
	}
	db, err := sql.Open("sqlite3", filepath.Join(data, store.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	var integrity string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check of the restored store: %q, %v", integrity, err)
	}
	db.Close()

	// The restored server serves the backup: POP3 UIDLs, IMAP UIDs and flags.
	srv = startE2E(t, data)
	tp := dialPOP3(t, srv.ports["pop3"], user, pass)
	pop3Cmd(t, tp, "UIDL")
	uidls, err := tp.ReadDotLines()
	if err != nil {
		t.Fatal(err)
	}
	pop3Cmd(t, tp, "QUIT")
	var wantUIDLs []string
	for i, m := range want.Messages {
		wantUIDLs = append(wantUIDLs, fmt.Sprintf("%d %s", i+1, m.UIDL))
	}
	if !slices.Equal(uidls, wantUIDLs) {
		t.Errorf("POP3 UIDL after the restore:\n%q\nwant\n%q", uidls, wantUIDLs)
	}
	state := imapState(t, srv.ports["imap"], user, pass)["INBOX"]
	if state.UIDValidity != want.UIDValidity || len(state.Messages) != len(want.Messages) {
		t.Fatalf("IMAP INBOX after the restore: UIDVALIDITY %d, %d messages; want %d, %d",
			state.UIDValidity, len(state.Messages), want.UIDValidity, len(want.Messages))
	}
	for _, m := range want.Messages {
		flags := strings.Fields(m.Flags)
		slices.Sort(flags)
		got, ok := state.Messages[imap.UID(m.UID)]
		if !ok || got.Flags != strings.Join(flags, " ") {
			t.Errorf("UID %d after the restore: %+v, want flags %q", m.UID, got, flags)
		}
	}

	// A delivery now gets a UID above every UID the replaced store had handed out.
	if err := lmtpDeliver(srv.ports["lmtp"], user, "<restored@example.org>"); err != nil {
		t.Fatal(err)
	}
	after := accountView(t, data, user)["INBOX"]
	last := after.Messages[len(after.Messages)-1]
	if last.UID < live.UIDNext {
		t.Errorf("first delivery after the restore got UID %d, which the replaced store had handed out (its UIDNEXT %d)", last.UID, live.UIDNext)
	}
}

// With a PostgreSQL store.url, backup and restore refuse plainly before touching anything:
// exit EX_CONFIG, naming pg_dump as the tool and store copy as the way to an SQLite file,
// without the password, without connecting (the URL names no server here) and without
// writing FILE or creating an SQLite store under --data.
func TestBackupRestoreOnPostgres(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	file := filepath.Join(dir, "backup.db")
	const url = "postgres://lb:hunter2@127.0.0.1:1/mail?sslmode=disable"
	for _, args := range [][]string{
		{"backup", file, "--data", data, "--store", url},
		{"restore", file, "--data", data, "--store", url},
	} {
		r := lb(t, nil, "", args...)
		expectCode(t, r, exitConfig, args[0]+" on a PostgreSQL store")
		for _, want := range []string{"PostgreSQL", "pg_dump", "store copy", "127.0.0.1:1", "nothing was done"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: stderr does not say %q:\n%s", args[0], want, r.stderr)
			}
		}
		if strings.Contains(r.stderr, "hunter2") {
			t.Errorf("%s: stderr shows the password: %q", args[0], r.stderr)
		}
		if _, err := os.Stat(file); err == nil {
			t.Errorf("%s: %s was written", args[0], file)
		}
		if _, err := os.Stat(filepath.Join(data, "letterbox.db")); err == nil {
			t.Errorf("%s: an SQLite store was created under --data", args[0])
		}
	}
	// The same from LETTERBOX_STORE_URL.
	r := lb(t, []string{"LETTERBOX_STORE_URL=" + url}, "", "backup", file, "--data", data)
	expectCode(t, r, exitConfig, "backup with LETTERBOX_STORE_URL")
}
