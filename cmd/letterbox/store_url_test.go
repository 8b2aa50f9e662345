package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A PostgreSQL store.url that names no reachable server stops every subcommand that opens
// the store with EX_TEMPFAIL (the database may come back; a supervisor retries), saying
// which store it could not open without showing the password, and nothing is created
// under --data: the URL, from the flag or from LETTERBOX_STORE_URL, wins over the SQLite
// default.
func TestStoreURLPostgresUnreachable(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	const url = "postgres://lb:hunter2@127.0.0.1:1/mail?sslmode=disable&connect_timeout=5"
	for _, args := range [][]string{
		{"user", "list", "--data", data, "--store", url},
		{"serve", "--data", data, "--store", url, "--imap-addr=", "--pop3-addr=", "--lmtp-addr=", "--http-addr="},
	} {
		r := lb(t, nil, "", args...)
		expectCode(t, r, exitTempFail, strings.Join(args[:1], " ")+" with an unreachable PostgreSQL store.url")
		if !strings.Contains(r.stderr, "127.0.0.1:1") {
			t.Errorf("%s: stderr %q, want it to name the store it could not open", args[0], r.stderr)
		}
		if strings.Contains(r.stderr, "hunter2") {
			t.Errorf("%s: stderr shows the password: %q", args[0], r.stderr)
		}
	}
	r := lb(t, []string{"LETTERBOX_STORE_URL=" + url}, "", "user", "list", "--data", data)
	expectCode(t, r, exitTempFail, "user list with LETTERBOX_STORE_URL")
	if _, err := os.Stat(filepath.Join(data, "letterbox.db")); err == nil {
		t.Error("an SQLite store was created under --data although store.url names PostgreSQL")
	}
}
