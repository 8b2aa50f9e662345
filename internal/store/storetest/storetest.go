// Package storetest lets the tests of the store, and of the packages above it, run on the
// engine LETTERBOX_TEST_STORE names: SQLite (unset), or PostgreSQL ("postgres"), each store
// then a fresh database on the server LETTERBOX_TEST_PG_URL names (scripts/pg-test-cluster
// starts a private one and sets it). For tests only; it knows nothing of the store's types.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGURLEnv names the PostgreSQL server the tests use, as a URL to a database they may
// create databases from (a superuser, or one with CREATEDB).
const PGURLEnv = "LETTERBOX_TEST_PG_URL"

// EngineEnv picks the engine of the stores tests open through URL: "postgres", or unset
// (SQLite).
const EngineEnv = "LETTERBOX_TEST_STORE"

// OnPostgres reports whether the tests' stores are PostgreSQL.
func OnPostgres() bool { return os.Getenv(EngineEnv) == "postgres" }

var databases sync.Map // data directory -> PostgreSQL URL

// URL is the store.url of a test's store in data directory dir: "" (SQLite in dir), or
// on PostgreSQL a fresh database, the same one for every call with the same dir while the
// test runs (a test that reopens a directory reopens its database; a second store on the
// same directory is a second node). Without LETTERBOX_TEST_PG_URL a PostgreSQL run skips
// the test.
func URL(t testing.TB, dir string) string {
	t.Helper()
	if !OnPostgres() {
		return ""
	}
	if u, ok := databases.Load(dir); ok {
		return u.(string)
	}
	u := Database(t)
	databases.Store(dir, u)
	t.Cleanup(func() { databases.Delete(dir) })
	return u
}

// Database creates a fresh, empty database for one test on the server
// LETTERBOX_TEST_PG_URL names and returns its URL; the database is dropped when the test
// ends. Without LETTERBOX_TEST_PG_URL the test is skipped, saying how to run it.
func Database(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PGURLEnv)
	if base == "" {
		t.Skipf("%s is not set: no PostgreSQL to test against (run the tests under scripts/pg-test-cluster)", PGURLEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PGURLEnv, err)
	}
	var b [8]byte
	rand.Read(b[:])
	name := "letterbox_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", PGURLEnv, err)
	}
	defer admin.Close(context.Background())
	// The name is ours (hex), so it needs no quoting beyond the identifier's.
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		// FORCE (PostgreSQL 13): connections a failed test left open do not keep it.
		if _, err := c.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}
