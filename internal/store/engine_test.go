package store

import (
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// The store's tests run on SQLite, and with LETTERBOX_TEST_STORE=postgres on PostgreSQL:
// every store a test opens through openStore (newStore) or openStoreWith (fuzz_test.go) is then a fresh
// PostgreSQL database (pgTestDatabase) on the server LETTERBOX_TEST_PG_URL names, one per
// data directory, so a test that reopens a directory reopens its database. Without
// LETTERBOX_TEST_PG_URL those tests skip, saying so:
//
//	LETTERBOX_TEST_STORE=postgres scripts/pg-test-cluster go test -tags sqlite_fts5 ./store
//
// Tests of what only SQLite has (its files, PRAGMAs, FTS5, backups) call sqliteOnly.
var testOnPostgres = storetest.OnPostgres()

// testOptions points opts at the test's engine for the store in dir (storetest.URL: the
// same database for the same dir).
func testOptions(t testing.TB, dir string, opts Options) Options {
	t.Helper()
	opts.URL = storetest.URL(t, dir)
	return opts
}

// sqliteOnly skips a test of SQLite's own machinery when the tests run on PostgreSQL.
func sqliteOnly(t testing.TB, what string) {
	t.Helper()
	if testOnPostgres {
		t.Skipf("SQLite only (%s)", what)
	}
}

// openTest is Open in a new directory, on the test's engine.
func openTest(t testing.TB, opts Options) (*Store, error) {
	t.Helper()
	dir := t.TempDir()
	return Open(dir, testOptions(t, dir, opts))
}
