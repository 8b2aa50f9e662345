package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the LISTEN/NOTIFY channel of the change log: every inserted change notifies
// it with its account's id (the changes_notify trigger), delivered at commit to every node.
const Channel = "letterbox_changes"

// Listener receives the change log's notifications on a connection of its own.
type Listener struct {
	url    string
	log    *slog.Logger
	notify func(accountIDs []int64)
	resync func() // after a (re)connection: notifications may have been missed

	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	syncs map[string]chan struct{} // Sync's tokens awaited
}

// Listen connects and listens before it returns (so every commit after it is seen), then
// calls notify with the account of each notification. If
// the connection is lost it reconnects (with a pause) and calls resync, since what was
// committed meanwhile notified no one here.
func Listen(ctx context.Context, url string, log *slog.Logger, notify func([]int64), resync func()) (*Listener, error) {
	l := &Listener{url: url, log: log, notify: notify, resync: resync, done: make(chan struct{}),
		syncs: map[string]chan struct{}{}}
	c, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	ctx, l.cancel = context.WithCancel(context.Background())
	go l.run(ctx, c)
	return l, nil
}

func (l *Listener) connect(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, l.url)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, "LISTEN "+Channel); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

func (l *Listener) run(ctx context.Context, c *pgx.Conn) {
	defer close(l.done)
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	for {
		if c == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			var err error
			if c, err = l.connect(ctx); err != nil {
				c = nil
				l.log.Warn("store: PostgreSQL change notifications: reconnecting", "err", err)
				continue
			}
			l.resync()
		}
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log.Warn("store: PostgreSQL change notifications: connection lost", "err", err)
			c.Close(context.Background())
			c = nil
			continue
		}
		if token, ok := strings.CutPrefix(n.Payload, "sync "); ok {
			l.mu.Lock()
			if ch := l.syncs[token]; ch != nil {
				close(ch)
				delete(l.syncs, token)
			}
			l.mu.Unlock()
			continue
		}
		id, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			l.log.Warn("store: PostgreSQL change notification: not an account id", "payload", n.Payload)
			continue
		}
		l.notify([]int64{id})
	}
}

// Sync returns once every notification of a commit made before it was called has been
// handled: it sends one of its own through db and waits for it, since PostgreSQL delivers
// the notifications to a listener in commit order.
func (l *Listener) Sync(ctx context.Context, db *sql.DB) error {
	var b [8]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	ch := make(chan struct{})
	l.mu.Lock()
	l.syncs[token] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.syncs, token)
		l.mu.Unlock()
	}()
	if _, err := db.ExecContext(ctx, `SELECT pg_notify(?, ?)`, Channel, "sync "+token); err != nil {
		return fmt.Errorf("postgres: sync notifications: %w", err)
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops listening and closes the connection.
func (l *Listener) Close() {
	l.cancel()
	<-l.done
}
