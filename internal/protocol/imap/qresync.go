package imap

// QRESYNC (RFC 7162 §3.2) on the wire.
//
// Implementation notes:
//
//   - SELECT/EXAMINE ... (QRESYNC (uidvalidity modseq [known-uids [seq-match]])), with a
//     UIDVALIDITY that matches, is answered after the usual responses with VANISHED
//     (EARLIER) for what the store's tombstones say was expunged since modseq
//     (store.Vanished), then FETCH (UID FLAGS MODSEQ) for every message changed since
//     (store.ChangedSince), both within known-uids if given. When the tombstones were
//     pruned, Vanished names every UID of the range not in the mailbox, which RFC 7162
//     §3.2.5.1 allows; seq-match-data only narrows what a server without that fallback
//     would send, so it is not needed.
//   - A UID VANISHED (EARLIER) names is never one the view still holds: a message
//     expunged after SELECT read the mailbox stays in the view until the poll announces
//     it, and the client must not forget it before.
//   - With QRESYNC enabled, every expunge is announced as VANISHED uid-set instead of
//     EXPUNGE n (RFC 7162 §3.2.10): EXPUNGE, UID EXPUNGE, MOVE, the poll and IDLE.
//   - UID FETCH ... (CHANGEDSINCE m VANISHED) (§3.2.6) writes VANISHED (EARLIER) for the
//     UIDs of the set expunged since m before the FETCH responses.

import (
	"math"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// qresyncEnabled says whether the client ENABLEd QRESYNC.
func (s *session) qresyncEnabled() bool {
	return s.enabled.Has(imap.CapQResync)
}

var errQresyncNotEnabled = &imap.Error{Type: imap.StatusResponseTypeBad, Text: "QRESYNC must be ENABLEd first"}

// selectCondStore handles SELECT's CONDSTORE and QRESYNC parameters before the mailbox
// is opened. RFC 7162 §3.2.5: QRESYNC without ENABLE QRESYNC is BAD.
func (s *session) selectCondStore(a *selectArgs) error {
	if a.qresync != nil && !s.qresyncEnabled() {
		return errQresyncNotEnabled
	}
	if a.condStore {
		// RFC 7162 §3.1.8: SELECT (CONDSTORE) is CONDSTORE-enabling; the HIGHESTMODSEQ
		// is the one SELECT sends anyway.
		s.enabled[imap.CapCondStore] = struct{}{}
	}
	return nil
}

// qresyncSelect writes what SELECT ... (QRESYNC ...) owes the client once the mailbox is
// selected and its UIDVALIDITY matched (RFC 7162 §3.2.5): VANISHED (EARLIER), then
// FETCH (UID FLAGS MODSEQ) of what changed since the client's modseq.
func (s *session) qresyncSelect(q *qresync) error {
	v, err := s.lockSelected()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	ranges := storeUIDRanges(q.knownUIDs)
	gone, err := s.st.Vanished(s.ctx, v.mbox.ID, int64(q.modSeq), ranges...)
	if err != nil {
		return s.storeError(err, "reading what vanished")
	}
	if set := v.notInView(gone.UIDs); len(set) > 0 {
		s.out.raw("* VANISHED (EARLIER) ").numSet(set).crlf()
	}
	changed, err := s.st.ChangedSince(s.ctx, v.mbox.ID, int64(q.modSeq), ranges...)
	if err != nil {
		return s.storeError(err, "reading changes")
	}
	for _, m := range changed {
		i, ok := v.index(m.UID)
		if !ok || v.isGone(m.UID) {
			continue // arrived or went after SELECT read the mailbox: the poll tells
		}
		// The flags are the view's, as SELECT read them; if the message changed since,
		// the change log brings its new flags and modseq in the poll.
		s.out.writeFetchStart(msgRef{seq: uint32(i + 1), uid: m.UID}) // UIDFETCH with UIDONLY
		if !s.out.uidOnly {
			s.out.raw("UID ").number(m.UID).sp()
		}
		s.out.raw("FLAGS ").flags(v.flagsOf(m.UID)).raw(" MODSEQ (").modSeq(uint64(m.ModSeq)).raw("))").crlf()
	}
	return s.out.err
}

// fetchVanished writes UID FETCH ... (CHANGEDSINCE m VANISHED)'s VANISHED (EARLIER): the
// UIDs of set expunged since m (RFC 7162 §3.2.6).
func (s *session) fetchVanished(set imap.NumSet, since uint64) error {
	v, err := s.lockSelected()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	var ranges []store.UIDRange
	switch uids, _ := set.(imap.UIDSet); {
	case imap.IsSearchRes(set):
		// "$" (RFC 5182) is the saved result's UIDs, an empty UIDSet on its own.
		ranges = uidRanges(v.searchRes)
	case len(uids) > 0:
		ranges = storeUIDRanges(uids)
	}
	if len(ranges) == 0 {
		return nil // nothing asked about: no ranges would mean every UID
	}
	gone, err := s.st.Vanished(s.ctx, v.mbox.ID, int64(since), ranges...)
	if err != nil {
		return s.storeError(err, "reading what vanished")
	}
	if out := v.notInView(gone.UIDs); len(out) > 0 {
		s.out.raw("* VANISHED (EARLIER) ").numSet(out).crlf()
	}
	return s.out.err
}

// storeUIDRanges turns a UID set from the client into the store's ranges ("*" is above
// every UID: the store reads it up to the last), nil for nil.
func storeUIDRanges(set imap.UIDSet) []store.UIDRange {
	var out []store.UIDRange
	for _, r := range set {
		start, stop := uint32(r.Start), uint32(r.Stop)
		if start == 0 {
			start = math.MaxUint32
		}
		if stop == 0 {
			stop = math.MaxUint32
		}
		if start > stop {
			start, stop = stop, start
		}
		out = append(out, store.UIDRange{Start: start, Stop: stop})
	}
	return out
}

// notInView is the UIDs of ranges (ascending, Stop set) that the view does not hold.
func (v *selected) notInView(ranges []store.UIDRange) imap.UIDSet {
	var out imap.UIDSet
	for _, r := range ranges {
		next := uint64(r.Start)
		i, _ := v.index(r.Start)
		for ; i < len(v.uids) && v.uids[i] <= r.Stop; i++ {
			if u := uint64(v.uids[i]); u > next {
				out.AddRange(imap.UID(next), imap.UID(u-1))
			}
			next = uint64(v.uids[i]) + 1
		}
		if next <= uint64(r.Stop) {
			out.AddRange(imap.UID(next), imap.UID(r.Stop))
		}
	}
	return out
}

// removeExpunged takes expunged messages out of the view and tells the client: with one
// EXPUNGE each (writeExpunge), or, once QRESYNC is enabled, with one VANISHED naming them
// all (RFC 7162 §3.2.10).
func (s *session) removeExpunged(v *selected, set map[uint32]struct{}, writeExpunge func(seq uint32) error, writeVanished func(imap.UIDSet) error) error {
	s.contextsExpunged(v, set)               // REMOVEFROM before EXPUNGE renumbers (context.go)
	if !s.qresyncEnabled() && !s.uidOnly() { // RFC 9586: VANISHED with UIDONLY too
		return v.remove(set, writeExpunge)
	}
	var uids imap.UIDSet
	for _, uid := range v.uids {
		if _, ok := set[uid]; ok {
			uids.AddNum(imap.UID(uid))
		}
	}
	if err := v.remove(set, nil); err != nil {
		return err
	}
	if len(uids) == 0 {
		return nil
	}
	return writeVanished(uids)
}

// WriteVanished sends VANISHED uid-set (RFC 7162 §3.2.10), for expunges with QRESYNC.
func (u *updateWriter) WriteVanished(uids imap.UIDSet) error {
	u.w.raw("* VANISHED ").numSet(uids).crlf()
	return u.done()
}

func (e *expungeWriter) WriteVanished(uids imap.UIDSet) error {
	e.w.raw("* VANISHED ").numSet(uids).crlf()
	return e.w.err
}

func (m *moveWriter) WriteVanished(uids imap.UIDSet) error {
	m.w.raw("* VANISHED ").numSet(uids).crlf()
	return m.w.err
}
