package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
)

// UIDFlags is one message of a mailbox as a session's view of it starts: its UID and
// flags (as Message.Flags gives them).
type UIDFlags struct {
	UID   uint32
	Flags []string
}

// MessageFlags returns the UID and flags of every message of a mailbox, ascending by UID:
// what IMAP SELECT reads of each message (RFC 3501 §6.3.1). The slice and the Flags in it
// are shared (messages with equal flags share one Flags, clipped so that an append
// copies): read only.
//
// The answer comes from the flags cache when it can: the mailbox's rows as of a modseq,
// brought up to date in one read snapshot with what the change log says changed since
// (the rows whose modseq is higher: flag changes and arrivals; the expunge tombstones
// above it), so that a SELECT after a few changes reads those few rows and not the
// mailbox. Without a cached copy, or when many rows changed, or when tombstones that old
// were pruned (mailboxes.expunge_floor), it reads the mailbox's three columns.
func (s *Store) MessageFlags(ctx context.Context, mailboxID int64) ([]UIDFlags, error) {
	tx, err := s.readers.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrapErr("list message flags", err)
	}
	defer tx.Rollback()
	var modseq, floor int64
	err = tx.QueryRowContext(ctx, `SELECT modseq, expunge_floor FROM mailboxes WHERE id = ?`, mailboxID).Scan(&modseq, &floor)
	if errors.Is(err, sql.ErrNoRows) {
		s.flags.drop(mailboxID)
		return nil, nil // as the query of the messages of no mailbox
	} else if err != nil {
		return nil, wrapErr("list message flags", err)
	}
	cached, asOf, ok := s.flags.get(mailboxID)
	switch {
	case ok && asOf == modseq:
		return cached, nil
	case ok && asOf < modseq && floor <= asOf:
		rows, fresh, err := s.updateFlags(ctx, tx, mailboxID, cached, asOf)
		if err != nil {
			return nil, err
		}
		if fresh {
			s.flags.put(mailboxID, rows, modseq)
			return rows, nil
		}
	}
	rows, err := queryFlags(ctx, tx, `SELECT uid, sysflags, keywords FROM messages WHERE mailbox_id = ? ORDER BY uid`, mailboxID)
	if err != nil {
		return nil, err
	}
	s.flags.put(mailboxID, rows, modseq)
	return rows, nil
}

// updateFlags applies to cached (the mailbox as of modseq asOf) what changed since, or
// says !fresh when that is more than a quarter of the mailbox (a full read is as cheap).
func (s *Store) updateFlags(ctx context.Context, tx *sql.Tx, mailboxID int64, cached []UIDFlags, asOf int64) (rows []UIDFlags, fresh bool, err error) {
	limit := len(cached)/4 + 16
	changed, err := queryFlags(ctx, tx, `SELECT uid, sysflags, keywords FROM messages
		WHERE mailbox_id = ? AND modseq > ? ORDER BY uid LIMIT ?`, mailboxID, asOf, limit+1)
	if err != nil || len(changed) > limit {
		return nil, false, err
	}
	gone := map[uint32]struct{}{}
	q, err := tx.QueryContext(ctx, `SELECT uid FROM changes WHERE mailbox_id = ? AND kind = 3 AND modseq > ? LIMIT ?`, mailboxID, asOf, limit+1)
	if err != nil {
		return nil, false, wrapErr("list message flags", err)
	}
	defer q.Close()
	for q.Next() {
		var uid uint32
		if err := q.Scan(&uid); err != nil {
			return nil, false, wrapErr("list message flags", err)
		}
		gone[uid] = struct{}{}
	}
	if err := q.Err(); err != nil {
		return nil, false, wrapErr("list message flags", err)
	}
	if len(gone) > limit {
		return nil, false, nil
	}
	// A merge of two ascending lists: the cached rows less the expunged, and the changed
	// rows, which replace a cached row of the same UID or are new.
	rows = make([]UIDFlags, 0, len(cached)+len(changed))
	i := 0
	for _, c := range changed {
		for i < len(cached) && cached[i].UID < c.UID {
			if _, ok := gone[cached[i].UID]; !ok {
				rows = append(rows, cached[i])
			}
			i++
		}
		if i < len(cached) && cached[i].UID == c.UID {
			i++
		}
		rows = append(rows, c)
	}
	for ; i < len(cached); i++ {
		if _, ok := gone[cached[i].UID]; !ok {
			rows = append(rows, cached[i])
		}
	}
	return rows, true, nil
}

// queryFlags runs a query of (uid, sysflags, keywords) rows.
func queryFlags(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]UIDFlags, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrapErr("list message flags", err)
	}
	defer rows.Close()
	type key struct {
		sys      int
		keywords string
	}
	shared := make(map[key][]string)
	var out []UIDFlags
	var k key
	var uid uint32
	for rows.Next() {
		if err := rows.Scan(&uid, &k.sys, &k.keywords); err != nil {
			return nil, wrapErr("list message flags", err)
		}
		flags, ok := shared[k]
		if !ok {
			flags = slices.Clip(decodeFlags(k.sys, k.keywords).list())
			shared[k] = flags
		}
		out = append(out, UIDFlags{UID: uid, Flags: flags})
	}
	return out, wrapErr("list message flags", rows.Err())
}

// flagsCacheRows bounds the rows the flags cache holds over all mailboxes (a row is a UID
// and a shared slice: some 10 MB).
const flagsCacheRows = 400_000

// flagsCache is the Store's cache of MessageFlags answers; its zero value is ready. An
// entry is replaced, never changed: a reader holding one is never disturbed.
type flagsCache struct {
	mu    sync.Mutex
	boxes map[int64]*flagsBox
	rows  int
	clock uint64
}

type flagsBox struct {
	rows   []UIDFlags
	modseq int64 // the mailbox's modseq the rows are as of
	used   uint64
}

func (c *flagsCache) get(mailboxID int64) ([]UIDFlags, int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.boxes[mailboxID]
	if !ok {
		return nil, 0, false
	}
	c.clock++
	b.used = c.clock
	return b.rows, b.modseq, true
}

// put keeps rows as the mailbox as of modseq, unless the cache has a later one already
// or the mailbox alone is over the bound.
func (c *flagsCache) put(mailboxID int64, rows []UIDFlags, modseq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.boxes == nil {
		c.boxes = make(map[int64]*flagsBox)
	}
	old, ok := c.boxes[mailboxID]
	if ok && old.modseq > modseq {
		return
	}
	if ok {
		c.rows -= len(old.rows)
		delete(c.boxes, mailboxID)
	}
	if len(rows) > flagsCacheRows {
		return
	}
	c.clock++
	c.boxes[mailboxID] = &flagsBox{rows: slices.Clip(rows), modseq: modseq, used: c.clock}
	c.rows += len(rows)
	for c.rows > flagsCacheRows {
		victim, oldest := int64(0), ^uint64(0)
		for id, b := range c.boxes {
			if id != mailboxID && b.used < oldest {
				victim, oldest = id, b.used
			}
		}
		if oldest == ^uint64(0) {
			return
		}
		c.rows -= len(c.boxes[victim].rows)
		delete(c.boxes, victim)
	}
}

func (c *flagsCache) drop(mailboxID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.boxes[mailboxID]; ok {
		c.rows -= len(b.rows)
		delete(c.boxes, mailboxID)
	}
}
