package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A PostgreSQL store.url is refused, by every subcommand that opens the store, with
// EX_CONFIG and a message naming what the backend lacks, until it is complete (issue
// #15); nothing is created under --data meanwhile, and the password is not shown.
func TestStoreURLPostgresRefused(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	const url = "postgres://lb:hunter2@127.0.0.1:1/mail?sslmode=disable"
	for _, args := range [][]string{
		{"user", "list", "--data", data, "--store", url},
		{"serve", "--data", data, "--store", url, "--imap-addr=", "--pop3-addr=", "--lmtp-addr=", "--http-addr="},
	} {
		r := lb(t, nil, "", args...)
		expectCode(t, r, exitConfig, strings.Join(args[:1], " ")+" with a PostgreSQL store.url")
		if !strings.Contains(r.stderr, "PostgreSQL backend is not complete") || !strings.Contains(r.stderr, "login penalties") {
			t.Errorf("%s: stderr %q, want it to say what the PostgreSQL backend lacks", args[0], r.stderr)
		}
		if strings.Contains(r.stderr, "hunter2") {
			t.Errorf("%s: stderr shows the password: %q", args[0], r.stderr)
		}
	}
	r := lb(t, []string{"LETTERBOX_STORE_URL=" + url}, "", "user", "list", "--data", data)
	expectCode(t, r, exitConfig, "user list with LETTERBOX_STORE_URL")
	if _, err := os.Stat(filepath.Join(data, "letterbox.db")); err == nil {
		t.Error("an SQLite store was created under --data although store.url names PostgreSQL")
	}
}
