package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgTestURLEnv names the PostgreSQL server the store's PostgreSQL tests use, as a URL to a
// database the tests may create databases from (a superuser, or one with CREATEDB).
// scripts/pg-test-cluster starts a private one and sets it.
const pgTestURLEnv = "LETTERBOX_TEST_PG_URL"

// pgTestDatabase creates a fresh, empty database for one test on the server
// LETTERBOX_TEST_PG_URL names and returns its URL; the database is dropped when the test
// ends. Without LETTERBOX_TEST_PG_URL the test is skipped, saying how to run it.
func pgTestDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv(pgTestURLEnv)
	if base == "" {
		t.Skipf("%s is not set: no PostgreSQL to test against (run the tests under scripts/pg-test-cluster)", pgTestURLEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", pgTestURLEnv, err)
	}
	var b [8]byte
	rand.Read(b[:])
	name := "letterbox_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", pgTestURLEnv, err)
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

// TestPGTestDatabase: the helper gives each test its own empty database, writable, gone
// after the test.
func TestPGTestDatabase(t *testing.T) {
	second := pgTestDatabase(t) // skips without a server
	var first string
	t.Run("first", func(t *testing.T) {
		first = pgTestDatabase(t)
		ctx := context.Background()
		c, err := pgx.Connect(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a fresh database has %d tables (%v), want 0", n, err)
		}
		if _, err := c.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
			t.Fatalf("create a table in the test database: %v", err)
		}
	})
	if second == first {
		t.Fatalf("two tests got the same database %s", first)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, os.Getenv(pgTestURLEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	u, _ := url.Parse(first)
	var exists bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, u.Path[1:]).Scan(&exists); err != nil || exists {
		t.Errorf("the first test's database still exists after it ended (%v)", err)
	}
}
