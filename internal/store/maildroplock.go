package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
	"time"
)

// ErrMaildropInUse says another process on the store (another node of a PostgreSQL
// cluster) holds the account's POP3 maildrop lock (LockMaildrop).
var ErrMaildropInUse = errors.New("store: the maildrop is in use by a POP3 session on another node")

// maildropLockKey is the high half of the advisory lock keys of maildrops (the low 48
// bits are the account id): "LB" and 1, apart from any other advisory lock Letterbox or
// another program on the same database takes.
const maildropLockKey = int64(0x4c42_0001) << 32

// LockMaildrop takes the POP3 maildrop lock of an account across every process serving
// the store (RFC 1939 §4's exclusive-access lock; RFC 2449 §8.1 [IN-USE] when taken),
// without waiting, and returns its release. internal/protocol/pop3 takes its own in-process lock
// first; this is the lock between nodes.
//
// On SQLite one process serves a store, so there is no other node: the lock is always
// granted and release does nothing. On PostgreSQL it is a session-level advisory lock
// (pg_try_advisory_lock) on a connection of its own, held until release or until that
// connection ends: a node that dies (or loses its connection) frees its maildrops with
// it. release must be called once; it never fails (a release that cannot reach the
// server drops the connection, which frees the lock too).
func (s *Store) LockMaildrop(ctx context.Context, accountID int64) (release func(), err error) {
	if !s.pg {
		return func() {}, nil
	}
	wait, cancel := context.WithTimeout(ctx, busyTimeout)
	defer cancel()
	conn, err := s.locks.Conn(wait)
	if err != nil {
		return nil, wrapErr("lock maildrop", err)
	}
	key := maildropLockKey | accountID&(1<<48-1)
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(?)`, key).Scan(&got); err != nil {
		conn.Close()
		return nil, wrapErr("lock maildrop", err)
	}
	if !got {
		conn.Close()
		return nil, ErrMaildropInUse
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var freed bool
			err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock(?)`, key).Scan(&freed)
			if err != nil || !freed {
				// Do not hand a connection that may still hold the lock back to the pool.
				conn.Raw(func(any) error { return driver.ErrBadConn })
			}
			conn.Close()
		})
	}, nil
}

// maxMaildropLocks bounds the connections one node holds for maildrop locks (one per POP3
// session logged in); a login beyond them waits up to busyTimeout for one, then fails as
// ErrTemporary (POP3 -ERR [SYS/TEMP]).
const maxMaildropLocks = 64
