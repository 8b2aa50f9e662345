package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Login penalties shared by the nodes of a cluster (docs/architecture.md: login penalties and blocks
// apply on every node). internal/auth counts failed logins and blocks addresses in memory, per
// process; that is the whole story on SQLite, where one process serves the store. On
// PostgreSQL every node of a cluster also counts each failure here, in the table
// login_penalties (internal/store/postgres's schema), and asks it whether an address is blocked
// before checking a password: so the failures an attacker spreads over the nodes add up,
// and a block one node sets refuses the address on every node.
//
// A key is internal/auth's: "ip:" and an address (an IPv6 /64's first address), or "account:"
// and an account name as typed, lower-cased (which may hold any octets: the column is
// BYTEA). Times are the nodes' clocks, in Unix milliseconds. The counting follows
// internal/auth's in-memory table: a window of `window` from a key's first failure, after
// which the count starts again; a block when the count reaches maxFailures, which starts
// a new count from the block's end. These statements run on a small pool of their own,
// outside the write transactions and the cluster's write lock: each is one row's atomic
// upsert or update, so concurrent failures on several nodes are all counted, and exactly
// one node sets each block.

// ErrPenaltiesNotShared is what the shared-penalty methods return on SQLite, where
// penalties are kept in the process (SharesLoginPenalties is false).
var ErrPenaltiesNotShared = errors.New("store: login penalties are kept in memory on SQLite")

// maxPenaltyConns bounds the connections one node uses for login penalties.
const maxPenaltyConns = 4

// penaltyPruneEvery is how many counted failures of a node go between two prunings of the
// rows whose window and block are over.
const penaltyPruneEvery = 256

// SharesLoginPenalties reports whether the store keeps login penalties for a cluster
// (PostgreSQL): then internal/auth counts failures and looks blocks up through it.
func (s *Store) SharesLoginPenalties() bool { return s.pg }

// LoginBlockedUntil returns until when key is blocked from logging in, or the zero time if
// it is not blocked at now.
func (s *Store) LoginBlockedUntil(ctx context.Context, key string, now time.Time) (time.Time, error) {
	if !s.pg {
		return time.Time{}, ErrPenaltiesNotShared
	}
	var until int64
	err := s.penalties.QueryRowContext(ctx, `SELECT blocked_until_ms FROM login_penalties WHERE key = ?`, key).Scan(&until)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, wrapErr("read a login block", err)
	}
	if t := time.UnixMilli(until); now.Before(t) {
		return t, nil
	}
	return time.Time{}, nil
}

// CountLoginFailure counts one failed login against key at now and returns the failures
// counted in key's window, this one included. With maxFailures > 0, the failure that
// brings the count to maxFailures blocks key for block from now (if it is not blocked
// already), and blockedUntil says until when; it is zero when this call set no block. A
// new block starts a new count: the key gets maxFailures again once it ends.
func (s *Store) CountLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration, maxFailures int, block time.Duration) (count int, blockedUntil time.Time, err error) {
	if !s.pg {
		return 0, time.Time{}, ErrPenaltiesNotShared
	}
	ms := now.UnixMilli()
	win := window.Milliseconds()
	// A window that is over (now at least window after its first failure) starts again
	// with this failure.
	var blocked int64
	err = s.penalties.QueryRowContext(ctx, `
INSERT INTO login_penalties AS p (key, count, first_ms, last_ms) VALUES (?, 1, ?, ?)
ON CONFLICT (key) DO UPDATE SET
	count    = CASE WHEN EXCLUDED.first_ms - p.first_ms >= ? THEN 1 ELSE p.count + 1 END,
	first_ms = CASE WHEN EXCLUDED.first_ms - p.first_ms >= ? THEN EXCLUDED.first_ms ELSE p.first_ms END,
	last_ms  = EXCLUDED.last_ms
RETURNING count, blocked_until_ms`, key, ms, ms, win, win).Scan(&count, &blocked)
	if err != nil {
		return 0, time.Time{}, wrapErr("count a failed login", err)
	}
	if s.penaltyCounted.Add(1)%penaltyPruneEvery == 0 {
		s.prunePenalties(ctx, now, window)
	}
	if maxFailures <= 0 || count < maxFailures || ms < blocked {
		return count, time.Time{}, nil
	}
	// The row's own condition makes this the one node that blocks the key, however many
	// counted a failure past maxFailures at once.
	until := now.Add(block).UnixMilli()
	err = s.penalties.QueryRowContext(ctx, `
UPDATE login_penalties SET blocked_until_ms = ?, count = 0, first_ms = ?
WHERE key = ? AND count >= ? AND blocked_until_ms <= ?
RETURNING blocked_until_ms`, until, until, key, maxFailures, ms).Scan(&blocked)
	switch {
	case errors.Is(err, sql.ErrNoRows): // another node blocked it first
		return count, time.Time{}, nil
	case err != nil:
		return count, time.Time{}, wrapErr("block a login address", err)
	}
	return count, time.UnixMilli(blocked), nil
}

// prunePenalties deletes the rows whose window and block are over at now: a failure there
// would start a new count anyway. Errors are logged: the next pruning tries again.
func (s *Store) prunePenalties(ctx context.Context, now time.Time, window time.Duration) {
	ms := now.UnixMilli()
	if _, err := s.penalties.ExecContext(ctx, `DELETE FROM login_penalties WHERE first_ms <= ? AND blocked_until_ms <= ?`,
		ms-window.Milliseconds(), ms); err != nil {
		s.log.Warn("store: pruning expired login penalties; will retry", "err", err)
	}
}
