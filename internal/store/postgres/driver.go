// Package postgres is what the store needs of PostgreSQL that SQLite does not share: the
// schema (Migrations), a database/sql driver over pgx that runs the store's SQL (translate),
// takes the cluster's write lock and reports generated keys, the change notifications
// (Listen), and the classification of PostgreSQL's errors (Temporary, StorageFull). The
// domain logic stays in package store, which uses this package when store.url names a
// PostgreSQL server; this package knows nothing of the store's types.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// IsURL reports whether url names a PostgreSQL server (postgres:// or postgresql://).
func IsURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// Role says what a pool of connections is for.
type Role int

const (
	// Admin connections run the SQL they are given (Migrate, tests).
	Admin Role = iota
	// Writer connections take the cluster's write lock (modseq_counter's row, FOR UPDATE)
	// at the start of every transaction: the writes of every node are one sequence, so
	// UIDs and modseqs are handed out in commit order, without gaps or duplicates, and no
	// two write transactions wait for each other's rows in opposite orders (no deadlocks).
	Writer
	// Reader connections are read-only and read in REPEATABLE READ: a transaction sees one
	// snapshot, as an SQLite read transaction does.
	Reader
)

// Open opens a pool of connections to the PostgreSQL server url names, for role. A
// statement waits at most lockTimeout (0: without end) for a lock another transaction
// holds, such as the write lock of a node in a long transaction; then it fails with
// lock_not_available, which Temporary reports.
func Open(url string, role Role, lockTimeout time.Duration) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if role == Reader {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
		cfg.RuntimeParams["default_transaction_isolation"] = "repeatable read"
	}
	if lockTimeout > 0 {
		cfg.RuntimeParams["lock_timeout"] = strconv.FormatInt(lockTimeout.Milliseconds(), 10)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "letterbox"
	}
	return sql.OpenDB(&connector{Connector: stdlib.GetConnector(*cfg), role: role}), nil
}

type connector struct {
	driver.Connector
	role Role
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: dc.(*stdlib.Conn), role: c.role}, nil
}

// conn is a pgx connection that runs the store's SQL: every query is translated first.
type conn struct {
	*stdlib.Conn
	role Role
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, translate(query).query)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, translate(query).query, args)
}

// ExecContext runs an INSERT into a table with a generated key with RETURNING, so that
// the Result's LastInsertId is the new row's key, as SQLite's is.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	t := translate(query)
	if t.returning == "" {
		return c.Conn.ExecContext(ctx, t.query, args)
	}
	rows, err := c.Conn.QueryContext(ctx, t.query+" RETURNING "+t.returning, args)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var r result
	dest := make([]driver.Value, 1)
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if r.rows == 0 {
			id, ok := dest[0].(int64)
			if !ok {
				return nil, fmt.Errorf("postgres: RETURNING %s gave %T", t.returning, dest[0])
			}
			r.id = id
		}
		r.rows++
	}
	return r, nil
}

type result struct{ id, rows int64 }

func (r result) LastInsertId() (int64, error) { return r.id, nil }
func (r result) RowsAffected() (int64, error) { return r.rows, nil }

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.Conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if c.role == Writer {
		if _, err := c.Conn.ExecContext(ctx, `SELECT last FROM modseq_counter FOR UPDATE`, nil); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("postgres: take the write lock: %w", err)
		}
	}
	return tx, nil
}

// CheckNamedValue converts arguments as database/sql does by default, then a bool to 0 or
// 1 (the store keeps truth values in integer columns, as SQLite does) and a string to its
// octets: pgx sends a string in text format, which a BYTEA parameter would parse for
// escapes, while octets go to a TEXT parameter as they are and to BYTEA unchanged.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	v, err := driver.DefaultParameterConverter.ConvertValue(nv.Value)
	if err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		if x {
			v = int64(1)
		} else {
			v = int64(0)
		}
	case string:
		v = []byte(x)
	}
	nv.Value = v
	return nil
}
