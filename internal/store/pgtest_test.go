package store

import (
	"context"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// pgTestURLEnv names the PostgreSQL server of the store's PostgreSQL tests.
const pgTestURLEnv = storetest.PGURLEnv

// pgTestDatabase is storetest.Database: a fresh database for one test, dropped after it;
// without LETTERBOX_TEST_PG_URL the test is skipped.
func pgTestDatabase(t testing.TB) string {
	t.Helper()
	return storetest.Database(t)
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
