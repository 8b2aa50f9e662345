package store

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// The sort cache: SortData's rows (without envelopes) of the mailboxes sorted or threaded
// lately, so that a repeated SORT or THREAD over a large mailbox reads two numbers from
// the database instead of a row per message; Dovecot keeps the same data in its index
// cache file for the same reason.
//
// Implementation notes:
//
//   - A row is a function of (mailbox id, UID): a message's UID, INTERNALDATE, size and
//     body never change, UIDs are never reused within a mailbox, and mailbox ids are
//     never reused (AUTOINCREMENT). So a cached row can be stale only by being gone.
//   - UIDs grow: the rows a mailbox gains after the cache read it all have UIDs above the
//     highest cached one (the single writer commits them in UID order), so one query of
//     those brings the cache up to date with arrivals.
//   - Before a cached answer, one query reads the mailbox's message count and highest UID.
//     Since every UID in the mailbox up to the highest cached one was cached, equal counts
//     and equal highest UIDs mean the cached set is the mailbox's. Anything else with
//     expunges in it reads the mailbox's UIDs alone: the cached rows still there are kept
//     (in a new box, since readers hold the old one's rows), and only the arrivals above
//     them are read.
//   - Kept answers (SortSnapshot.Memo) follow arrivals (the box's earlier answers are for
//     a prefix of its rows) and expunges (a new box remembers its predecessor's answers
//     and UIDs, one generation back), so that a caller can bring a kept answer up to date
//     instead of computing it again.
//   - Bounded: at most sortCacheRows rows in all; the least recently used mailboxes go
//     first. A mailbox larger than the bound is never cached.

// sortCacheRows bounds the rows the cache holds, over all mailboxes (some 30 MB with
// typical subjects and References).
const sortCacheRows = 100_000

// sortCache is the Store's; its zero value is empty and ready.
type sortCache struct {
	mu    sync.Mutex
	boxes map[int64]*sortBox
	rows  int    // in all boxes
	clock uint64 // ticks on every use, for LRU
}

// sortBox is one mailbox's rows, ascending by UID, with every field but the envelope.
// rows is only appended to: a reader holding rows[:n] is never disturbed.
type sortBox struct {
	rows []SortRow
	used uint64
	// memo holds answers computed from rows[:n] (SortSnapshot.Memo), by the caller's
	// key. rows[:n] is the mailbox's whole set of messages for as long as len(rows) == n:
	// an arrival appends, an expunge replaces the box (put), so an entry is valid exactly
	// while its n is the box's length. Guarded by sortCache.mu.
	memo map[string]sortMemo
	// before is the box this one replaced after expunges, when its rows were kept: its
	// answers and the UIDs they were computed on (one generation; nil otherwise).
	before *sortGeneration
}

// sortGeneration is what a replaced box leaves its successor: its kept answers and the
// UIDs of its rows, ascending (sortMemo.n of them for each answer).
type sortGeneration struct {
	uids []uint32
	memo map[string]sortMemo
}

type sortMemo struct {
	n int
	v any
}

// sortMemoKeys bounds the answers kept per mailbox (distinct sort criteria and
// threading algorithms): past it the memo starts again empty.
const sortMemoKeys = 16

// SortSnapshot is the cached sort data of one mailbox as it is in the store at the time
// of Store.SortSnapshot: every message, ascending by UID. Rows is shared: read only.
type SortSnapshot struct {
	Rows []SortRow
	c    *sortCache
	box  *sortBox
}

// SortSnapshot returns the mailbox's SortRows (envelopes aside), all of them, from the
// sort cache brought up to date with the store, or nil (and no error) when the mailbox is
// too large to cache or keeps changing.
func (s *Store) SortSnapshot(ctx context.Context, mailboxID int64) (*SortSnapshot, error) {
	rows, box, err := s.sortRowsBox(ctx, mailboxID)
	if err != nil || rows == nil {
		return nil, err
	}
	return &SortSnapshot{Rows: rows, c: &s.sorts, box: box}, nil
}

// Memo returns what compute returned for key on these same rows, computing it now if no
// answer for key was kept since the mailbox last changed (an arrival or an expunge, by
// any protocol or process: the snapshot checked the store). compute must be a function of
// Rows alone; its result is shared between sessions: read only.
//
// When an answer for key was kept on an earlier set of the mailbox's messages (before
// arrivals, or before expunges and arrivals), compute is handed it as prev, with prevN
// and prevUID(i), the UIDs of the prevN messages it was computed on, ascending, so that
// it can bring it up to date: those of them still in Rows come first there, in the same
// order, and every other row of Rows arrived since. Otherwise prev is nil and prevN 0.
func (sn *SortSnapshot) Memo(key string, compute func(prev any, prevN int, prevUID func(i int) uint32) any) any {
	c, n := sn.c, len(sn.Rows)
	c.mu.Lock()
	m, ok := sn.box.memo[key]
	var before sortMemo
	var beforeUIDs []uint32
	if !ok && sn.box.before != nil {
		if b, found := sn.box.before.memo[key]; found {
			before, beforeUIDs = b, sn.box.before.uids
		}
	}
	c.mu.Unlock()
	if ok && m.n == n {
		return m.v
	}
	var v any
	switch {
	case ok && m.n < n:
		v = compute(m.v, m.n, func(i int) uint32 { return sn.Rows[i].UID })
	case before.v != nil && before.n <= len(beforeUIDs):
		v = compute(before.v, before.n, func(i int) uint32 { return beforeUIDs[i] })
	default:
		v = compute(nil, 0, nil)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(sn.box.rows) == n { // not grown meanwhile (a replaced box is unreachable anyway)
		if sn.box.memo == nil || len(sn.box.memo) >= sortMemoKeys {
			sn.box.memo = make(map[string]sortMemo)
		}
		sn.box.memo[key] = sortMemo{n: n, v: v}
	}
	return v
}

// cachedSortData is SortData without SortAddresses.
func (s *Store) cachedSortData(ctx context.Context, mailboxID int64, fields SortFields, ranges []UIDRange) ([]SortRow, error) {
	rows, err := s.sortRows(ctx, mailboxID)
	if err != nil || rows == nil {
		if err == nil { // too large to cache
			return s.querySortData(ctx, mailboxID, fields, ranges...)
		}
		return nil, err
	}
	var out []SortRow
	if len(ranges) == 0 {
		out = slices.Clone(rows)
	} else {
		for _, r := range ranges {
			stop := r.Stop
			if stop == 0 {
				stop = ^uint32(0)
			}
			lo, hi := r.Start, stop
			if lo > hi {
				lo, hi = hi, lo
			}
			i, _ := slices.BinarySearchFunc(rows, lo, func(row SortRow, uid uint32) int { return cmp.Compare(row.UID, uid) })
			j, _ := slices.BinarySearchFunc(rows, hi+1, func(row SortRow, uid uint32) int { return cmp.Compare(row.UID, uid) })
			if hi == ^uint32(0) {
				j = len(rows)
			}
			out = append(out, rows[i:j]...)
		}
		// Overlapping or unordered ranges: ascending and each row once, as the query gives.
		slices.SortFunc(out, func(a, b SortRow) int { return cmp.Compare(a.UID, b.UID) })
		out = slices.CompactFunc(out, func(a, b SortRow) bool { return a.UID == b.UID })
	}
	// What the caller did not ask for is not handed out, as from the query.
	if fields&SortThreading == 0 {
		for i := range out {
			if fields&(SortSubject|SortThreading) == 0 {
				out[i].Subject = ""
			}
			out[i].MessageID, out[i].InReplyTo, out[i].References = "", "", ""
		}
	}
	return out, nil
}

// sortRows returns the mailbox's rows, all of them, ascending by UID, from the cache
// brought up to date, or nil (and no error) when the mailbox is too large to cache. The
// slice is shared: read only.
func (s *Store) sortRows(ctx context.Context, mailboxID int64) ([]SortRow, error) {
	rows, _, err := s.sortRowsBox(ctx, mailboxID)
	return rows, err
}

// sortRowsBox is sortRows with the box the rows are of.
func (s *Store) sortRowsBox(ctx context.Context, mailboxID int64) ([]SortRow, *sortBox, error) {
	c := &s.sorts
	for range 3 { // an arrival between the two queries: look again
		var count int
		var maxUID uint32
		if err := s.readers.QueryRowContext(ctx, `SELECT count(*), coalesce(max(uid), 0) FROM messages WHERE mailbox_id = ?`, mailboxID).
			Scan(&count, &maxUID); err != nil {
			return nil, nil, wrapErr("read sort data", err)
		}
		if count > sortCacheRows {
			c.drop(mailboxID)
			return nil, nil, nil
		}
		rows, box, ok := c.get(mailboxID)
		var have uint32
		if len(rows) > 0 {
			have = rows[len(rows)-1].UID
		}
		switch {
		case ok && len(rows) == count && have == maxUID:
			return rows, box, nil
		case ok && len(rows) < count && have < maxUID:
			// Arrivals only, as far as the count says; the next round checks.
			more, err := s.querySortData(ctx, mailboxID, SortThreading, UIDRange{Start: have + 1, Stop: 0})
			if err != nil {
				return nil, nil, err
			}
			c.add(mailboxID, rows, more)
		case ok && len(rows) > 0:
			// Messages went (and maybe others came): keep the cached rows still there.
			if err := s.sortRowsAfterExpunges(ctx, mailboxID, rows, box); err != nil {
				return nil, nil, err
			}
		default:
			// Not cached: read the mailbox.
			all, err := s.querySortData(ctx, mailboxID, SortThreading)
			if err != nil {
				return nil, nil, err
			}
			c.put(mailboxID, all, nil)
		}
	}
	return nil, nil, nil // the mailbox keeps changing under us: the query answers
}

// sortRowsAfterExpunges replaces the box of a mailbox that lost messages: the cached rows
// (rows, of box) whose UIDs the mailbox still has, read alone, and the rows of those above
// the highest cached UID. The new box remembers box's kept answers. Were a UID up to the
// highest cached one not cached, which the cache's invariant rules out, the mailbox is
// read whole.
func (s *Store) sortRowsAfterExpunges(ctx context.Context, mailboxID int64, rows []SortRow, box *sortBox) error {
	have := rows[len(rows)-1].UID
	q, err := s.readers.QueryContext(ctx, `SELECT uid FROM messages WHERE mailbox_id = ? AND uid <= ? ORDER BY uid`, mailboxID, have)
	if err != nil {
		return wrapErr("read sort data", err)
	}
	kept := make([]SortRow, 0, len(rows))
	j, whole := 0, false
	for q.Next() {
		var uid uint32
		if err := q.Scan(&uid); err != nil {
			q.Close()
			return wrapErr("read sort data", err)
		}
		for j < len(rows) && rows[j].UID < uid {
			j++
		}
		if j == len(rows) || rows[j].UID != uid {
			whole = true
			continue
		}
		kept = append(kept, rows[j])
	}
	q.Close()
	if err := q.Err(); err != nil {
		return wrapErr("read sort data", err)
	}
	if whole {
		all, err := s.querySortData(ctx, mailboxID, SortThreading)
		if err != nil {
			return err
		}
		s.sorts.put(mailboxID, all, nil)
		return nil
	}
	more, err := s.querySortData(ctx, mailboxID, SortThreading, UIDRange{Start: have + 1, Stop: 0})
	if err != nil {
		return err
	}
	s.sorts.put(mailboxID, append(kept, more...), box)
	return nil
}

// get returns the cached rows of a mailbox and their box.
func (c *sortCache) get(mailboxID int64) ([]SortRow, *sortBox, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.boxes[mailboxID]
	if !ok {
		return nil, nil, false
	}
	c.clock++
	b.used = c.clock
	return b.rows, b, true
}

// add appends more to the rows of a mailbox if they are still the ones read (had).
func (c *sortCache) add(mailboxID int64, had, more []SortRow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.boxes[mailboxID]
	if !ok || len(b.rows) != len(had) {
		return // replaced meanwhile: the next round reads again
	}
	if len(more) > 0 && len(b.rows) > 0 && more[0].UID <= b.rows[len(b.rows)-1].UID {
		return
	}
	b.rows = append(b.rows, more...)
	c.rows += len(more)
	c.evict(mailboxID)
}

// put replaces the rows of a mailbox. With from, the box they were kept from, the new box
// remembers from's answers and UIDs (sortBox.before), if from is still the mailbox's.
func (c *sortCache) put(mailboxID int64, rows []SortRow, from *sortBox) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.boxes == nil {
		c.boxes = make(map[int64]*sortBox)
	}
	var before *sortGeneration
	if b, ok := c.boxes[mailboxID]; ok {
		c.rows -= len(b.rows)
		if b == from && len(b.memo) > 0 {
			uids := make([]uint32, len(b.rows))
			for i := range b.rows {
				uids[i] = b.rows[i].UID
			}
			before = &sortGeneration{uids: uids, memo: b.memo}
		}
	}
	c.clock++
	c.boxes[mailboxID] = &sortBox{rows: slices.Clip(rows), used: c.clock, before: before}
	c.rows += len(rows)
	c.evict(mailboxID)
}

// drop forgets a mailbox.
func (c *sortCache) drop(mailboxID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.boxes[mailboxID]; ok {
		c.rows -= len(b.rows)
		delete(c.boxes, mailboxID)
	}
}

// evict drops the least recently used mailboxes but keep until the rows are within the
// bound. Called with c.mu held.
func (c *sortCache) evict(keep int64) {
	for c.rows > sortCacheRows {
		victim, oldest := int64(0), ^uint64(0)
		for id, b := range c.boxes {
			if id != keep && b.used < oldest {
				victim, oldest = id, b.used
			}
		}
		if oldest == ^uint64(0) {
			return // only keep is left, and it fits by itself (sortRows checked)
		}
		c.rows -= len(c.boxes[victim].rows)
		delete(c.boxes, victim)
	}
}
