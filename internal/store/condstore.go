package store

// CONDSTORE and QRESYNC (RFC 7162) on the store's side.
//
// Implementation notes:
//
//   - A message's modseq (Message.ModSeq, RFC 7162 MODSEQ) is the modseq of the
//     change-log row of its last change: its arrival (delivery, APPEND, COPY and MOVE
//     destination, import) or a flag change, whichever protocol made it (IMAP STORE, POP3
//     QUIT's \Seen and \Deleted, the API). Every such write goes through insertMessage or
//     setFlagsIf, both of which log the change and set the message's modseq in the same
//     statement sequence of the same transaction. A flag change that leaves the flags as
//     they were logs nothing and moves no modseq.
//   - A mailbox's HIGHESTMODSEQ (Mailbox.ModSeq, also in MailboxStatus) is the highest
//     modseq of any change in it, expunges included (RFC 7162 §3.2: QRESYNC needs an
//     expunge to raise it), kept by flushModSeqs in the writing transaction. It only
//     grows, and it is never 0 for an existing mailbox (its creation is a change).
//   - UNCHANGEDSINCE (SetFlagsUnchangedSince) tests and changes each message inside one
//     write transaction on the single writer, so no other change can come between the
//     test and the change.
//   - Expunges leave tombstones in the change log (ChangeExpunge rows), which Vanished
//     reads by mailbox (the partial index changes_expunged). Tombstones older than
//     Options.ExpungeRetention are pruned in the background, a batch per write
//     transaction; each mailbox remembers the highest modseq of its tombstones pruned
//     (mailboxes.expunge_floor). Vanished is exact for a modseq at or above that floor;
//     below it, it answers every UID of the range that is not in the mailbox now, which
//     RFC 7162 §3.2.5.1 allows (UIDs never reused make that a superset of the truth).
//     Only tombstones are pruned: the rows of arrivals and flag changes stay, as IMAP
//     sessions read them (Changes).

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// kindExpunge is ChangeExpunge spelled into SQL: the partial indexes on tombstones are
// used only by queries that say kind = 3 literally, not through a bound parameter.
var kindExpunge = strconv.Itoa(int(ChangeExpunge))

// SetFlagsUnchangedSince is SetFlags with RFC 7162's UNCHANGEDSINCE (§3.1.3): a message
// whose modseq is above unchangedSince is not changed and its UID is returned in modified
// (for the MODIFIED response code). Every other message is changed as SetFlags would and
// is reported in updates, its flags changed or not (the client is owed an untagged FETCH
// with MODSEQ for each, even with .SILENT); one whose flags stay as they were keeps its
// modseq (FlagUpdate.Changed false). UNCHANGEDSINCE 0 fails for every message. Test and
// change happen in one write transaction: nothing can change a message in between.
// unchangedSince must not be negative.
func (s *Store) SetFlagsUnchangedSince(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags []string, unchangedSince int64) (updates []FlagUpdate, modified []uint32, err error) {
	if unchangedSince < 0 {
		return nil, nil, fmt.Errorf("store: set flags: UNCHANGEDSINCE %d", unchangedSince)
	}
	err = s.write(ctx, "set flags", func(wt *writeTx) error {
		var err error
		updates, modified, err = wt.setFlagsIf(mailboxID, uids, op, flags, unchangedSince)
		return err
	})
	return updates, modified, err
}

// ChangedSince lists the messages of a mailbox whose modseq is above since, among those
// whose UIDs fall in ranges (all when empty), in ascending UID order: FETCH ...
// (CHANGEDSINCE since) and SEARCH MODSEQ (RFC 7162 §3.1.4, §3.1.5; for SEARCH MODSEQ
// n, ask since n-1). An unknown mailbox has no messages.
func (s *Store) ChangedSince(ctx context.Context, mailboxID int64, since int64, ranges ...UIDRange) ([]Message, error) {
	cond, args, keep := uidRangeClause(ranges)
	rows, err := s.readers.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE mailbox_id = ? AND modseq > ? AND `+cond+` ORDER BY uid`,
		append([]any{mailboxID, since}, args...)...)
	if err != nil {
		return nil, wrapErr("list changed messages", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, wrapErr("list changed messages", err)
		}
		if keep == nil || keep(m.UID) {
			out = append(out, m)
		}
	}
	return out, wrapErr("list changed messages", rows.Err())
}

// VanishedUIDs is what Vanished found.
type VanishedUIDs struct {
	// UIDs are the UIDs expunged, as ascending, disjoint ranges with Stop set (never 0).
	UIDs []UIDRange
	// Exact says UIDs are exactly the messages expunged after the modseq asked about. If
	// false, the tombstones that answer needed were pruned, and UIDs are every UID in the
	// ranges asked about, below UIDNEXT, that is not in the mailbox now: messages expunged
	// at any time, or never there (RFC 7162 §3.2.5.1: the client gets no more precision).
	Exact bool
	// KnownSince is the lowest modseq for which the store knows every expunge of the
	// mailbox since: Vanished is exact for any since >= KnownSince.
	KnownSince int64
}

// Vanished reports the UIDs of a mailbox expunged after modseq since (RFC 7162 QRESYNC:
// SELECT ... (QRESYNC ...), FETCH ... (CHANGEDSINCE ... VANISHED)), among the UIDs in
// ranges (all when empty), from the change log's tombstones, read with the mailbox in one
// snapshot. See VanishedUIDs for what it answers when the tombstones were pruned.
// ErrNoSuchMailbox if the mailbox does not exist.
func (s *Store) Vanished(ctx context.Context, mailboxID int64, since int64, ranges ...UIDRange) (VanishedUIDs, error) {
	tx, err := s.readers.BeginTx(ctx, nil)
	if err != nil {
		return VanishedUIDs{}, wrapErr("read vanished", err)
	}
	defer tx.Rollback()
	var floor int64
	var uidNext uint32
	err = tx.QueryRowContext(ctx, `SELECT expunge_floor, uid_next FROM mailboxes WHERE id = ?`, mailboxID).Scan(&floor, &uidNext)
	if errors.Is(err, sql.ErrNoRows) {
		return VanishedUIDs{}, fmt.Errorf("store: mailbox %d: %w", mailboxID, ErrNoSuchMailbox)
	} else if err != nil {
		return VanishedUIDs{}, wrapErr("read vanished", err)
	}
	out := VanishedUIDs{Exact: since >= floor, KnownSince: floor}
	cond, args, keep := uidRangeClause(ranges)
	var query string
	if out.Exact {
		query = `SELECT uid FROM changes WHERE mailbox_id = ? AND kind = ` + kindExpunge + ` AND modseq > ? AND ` + cond + ` ORDER BY uid`
		args = append([]any{mailboxID, since}, args...)
	} else {
		query = `SELECT uid FROM messages WHERE mailbox_id = ? AND ` + cond + ` ORDER BY uid`
		args = append([]any{mailboxID}, args...)
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return VanishedUIDs{}, wrapErr("read vanished", err)
	}
	defer rows.Close()
	var uids []uint32
	for rows.Next() {
		var uid uint32
		if err := rows.Scan(&uid); err != nil {
			return VanishedUIDs{}, wrapErr("read vanished", err)
		}
		if keep == nil || keep(uid) {
			uids = append(uids, uid)
		}
	}
	if err := rows.Err(); err != nil {
		return VanishedUIDs{}, wrapErr("read vanished", err)
	}
	if out.Exact {
		out.UIDs = uidRuns(uids)
	} else {
		out.UIDs = uidGaps(ranges, uidNext, uids)
	}
	return out, nil
}

// uidRuns turns ascending UIDs into ranges of consecutive ones.
func uidRuns(uids []uint32) []UIDRange {
	var out []UIDRange
	for _, u := range uids {
		if n := len(out); n > 0 && (out[n-1].Stop == u || out[n-1].Stop+1 == u) {
			out[n-1].Stop = u
			continue
		}
		out = append(out, UIDRange{Start: u, Stop: u})
	}
	return out
}

// uidGaps returns the UIDs in ranges (all when empty), below uidNext, that are not in
// present (ascending), as ascending ranges.
func uidGaps(ranges []UIDRange, uidNext uint32, present []uint32) []UIDRange {
	if uidNext <= 1 {
		return nil
	}
	last := uidNext - 1
	var want []UIDRange // normalised: Stop set, within 1..last, sorted, merged
	if len(ranges) == 0 {
		want = []UIDRange{{Start: 1, Stop: last}}
	}
	for _, r := range ranges {
		if r.Stop == 0 {
			r.Stop = math.MaxUint32
		}
		if r.Start > r.Stop {
			r.Start, r.Stop = r.Stop, r.Start
		}
		r.Start, r.Stop = max(r.Start, 1), min(r.Stop, last)
		if r.Start <= r.Stop {
			want = append(want, r)
		}
	}
	slices.SortFunc(want, func(a, b UIDRange) int { return cmp.Compare(a.Start, b.Start) })
	var merged []UIDRange
	for _, r := range want {
		if n := len(merged); n > 0 && uint64(r.Start) <= uint64(merged[n-1].Stop)+1 {
			merged[n-1].Stop = max(merged[n-1].Stop, r.Stop)
			continue
		}
		merged = append(merged, r)
	}
	var out []UIDRange
	add := func(a, b uint32) {
		if a > b {
			return
		}
		if n := len(out); n > 0 && uint64(out[n-1].Stop)+1 == uint64(a) {
			out[n-1].Stop = b
			return
		}
		out = append(out, UIDRange{Start: a, Stop: b})
	}
	i := 0
	for _, r := range merged {
		next := uint64(r.Start) // the first UID of r not yet decided
		for ; i < len(present) && present[i] <= r.Stop; i++ {
			p := uint64(present[i])
			if p < next {
				continue
			}
			if p > next {
				add(uint32(next), uint32(p-1))
			}
			next = p + 1
		}
		if next <= uint64(r.Stop) {
			add(uint32(next), r.Stop)
		}
	}
	return out
}

// --- pruning tombstones ---

// Pruning runs at open (after pruneFirstDelay) and then every pruneInterval, a batch of at
// most pruneBatch tombstones per write transaction, so that the writer is never held for
// long however many there are.
const (
	pruneFirstDelay = time.Minute
	pruneInterval   = time.Hour
)

// pruneBatch is a variable so that a test can make batches small.
var pruneBatch = 1000

type pruner struct {
	quit, done chan struct{}
}

// startPruner starts pruning tombstones older than the retention in the background.
func (s *Store) startPruner() {
	s.pruner.quit = make(chan struct{})
	s.pruner.done = make(chan struct{})
	if s.expungeRetention <= 0 {
		close(s.pruner.done)
		return
	}
	go func() {
		defer close(s.pruner.done)
		timer := time.NewTimer(pruneFirstDelay)
		defer timer.Stop()
		for {
			select {
			case <-s.pruner.quit:
				return
			case <-timer.C:
			}
			n, err := s.pruneTombstones(s.now().Add(-s.expungeRetention))
			switch {
			case err != nil:
				s.log.Warn("store: pruning old expunge tombstones; will retry", "err", err)
			case n > 0:
				s.log.Info("store: pruned old expunge tombstones", "count", n, "retention", s.expungeRetention)
			}
			timer.Reset(pruneInterval)
		}
	}()
}

func (s *Store) stopPruner() {
	if s.pruner.quit != nil {
		close(s.pruner.quit)
		<-s.pruner.done
	}
}

// pruneTombstones deletes the expunge tombstones logged before before, raising each
// affected mailbox's expunge_floor to the highest modseq pruned from it in the same
// transaction, and returns how many it deleted. It stops early when the store closes.
func (s *Store) pruneTombstones(before time.Time) (int, error) {
	ctx := context.Background()
	total := 0
	for {
		select {
		case <-s.pruner.quit:
			return total, nil
		default:
		}
		var n int
		err := s.write(ctx, "prune tombstones", func(wt *writeTx) error {
			var err error
			n, err = wt.pruneTombstones(before.Unix(), pruneBatch)
			return err
		})
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

func (wt *writeTx) pruneTombstones(before int64, limit int) (int, error) {
	rows, err := wt.tx.QueryContext(wt.ctx, `SELECT modseq, mailbox_id FROM changes
		WHERE kind = `+kindExpunge+` AND at < ? ORDER BY at LIMIT ?`, before, limit)
	if err != nil {
		return 0, err
	}
	var modseqs []int64
	floors := map[int64]int64{} // mailbox id -> highest modseq pruned
	for rows.Next() {
		var modseq, mailboxID int64
		if err := rows.Scan(&modseq, &mailboxID); err != nil {
			rows.Close()
			return 0, err
		}
		modseqs = append(modseqs, modseq)
		floors[mailboxID] = max(floors[mailboxID], modseq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for id, floor := range floors {
		if _, err := wt.exec(`UPDATE mailboxes SET expunge_floor = max(expunge_floor, ?) WHERE id = ?`, floor, id); err != nil {
			return 0, fmt.Errorf("raise expunge floor: %w", err)
		}
	}
	pruned := len(modseqs)
	for len(modseqs) > 0 {
		n := min(len(modseqs), 100)
		marks := strings.TrimSuffix(strings.Repeat("?,", n), ",")
		args := make([]any, n)
		for i, m := range modseqs[:n] {
			args[i] = m
		}
		if _, err := wt.exec(`DELETE FROM changes WHERE modseq IN (`+marks+`)`, args...); err != nil {
			return 0, fmt.Errorf("delete tombstones: %w", err)
		}
		modseqs = modseqs[n:]
	}
	return pruned, nil
}
