package imap

// CONDSTORE (RFC 7162 §3.1) on the wire. The store keeps a modseq per message and a
// HIGHESTMODSEQ per mailbox (internal/store/condstore.go), so every mailbox has modseqs and
// NOMODSEQ is never sent.
//
// Implementation notes:
//
//   - CONDSTORE is on for a session once it is ENABLEd (ENABLE CONDSTORE or QRESYNC) or a
//     CONDSTORE-enabling command ran (RFC 7162 §3.1: SELECT/EXAMINE (CONDSTORE), STATUS
//     (HIGHESTMODSEQ), FETCH MODSEQ or CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ).
//     It is recorded in session.enabled like an ENABLEd extension.
//   - Once on, every FETCH that carries FLAGS carries MODSEQ too: the solicited ones
//     (fetchOne, Store) and the unsolicited ones of the poll and IDLE (sync,
//     writeHeldFlags), with the modseq the store returned with the flags shown.
//   - STORE UNCHANGEDSINCE tests and changes in one store transaction
//     (store.SetFlagsUnchangedSince); the messages that failed the test are named in
//     MODIFIED.

import (
	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// condStore says whether CONDSTORE is on for the session (QRESYNC implies it).
func (s *session) condStore() bool {
	return s.enabled.Has(imap.CapCondStore)
}

// modSeqFor is what the FETCH responses that carry FLAGS give as MODSEQ: the message's
// modseq once CONDSTORE is on, 0 (none) before.
func (s *session) modSeqFor(modSeq int64) uint64 {
	if !s.condStore() || modSeq <= 0 {
		return 0
	}
	return uint64(modSeq)
}

// enableCondStore turns CONDSTORE on at a CONDSTORE-enabling command. RFC 7162 §3.1: the
// first such command while a mailbox is selected is answered with the mailbox's
// HIGHESTMODSEQ in an untagged OK.
func (s *session) enableCondStore() error {
	if s.condStore() {
		return nil
	}
	s.enabled[imap.CapCondStore] = struct{}{}
	v := s.sel
	if v == nil {
		return nil
	}
	if err := s.lock(); err != nil {
		return err
	}
	mbox, err := s.st.MailboxByID(s.ctx, v.mbox.ID)
	s.mu.Unlock()
	if err != nil {
		return s.storeError(err, "reading HIGHESTMODSEQ")
	}
	s.out.raw("* OK [HIGHESTMODSEQ ").modSeq(uint64(mbox.ModSeq)).raw("] Highest").crlf()
	return nil
}

// storeUnchangedSince is STORE ... (UNCHANGEDSINCE n) (RFC 7162 §3.1.3): the messages
// whose modseq is above n are left alone and named in the tagged OK's MODIFIED code
// (sequence numbers for STORE, UIDs for UID STORE); every other one gets an untagged
// FETCH with its flags and MODSEQ, .SILENT or not.
func (s *session) storeUnchangedSince(w *fetchWriter, kind numKind, numSet imap.NumSet, flags *imap.StoreFlags, unchangedSince uint64) (modified imap.NumSet, err error) {
	v, err := s.lockSelected()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if v.readOnly {
		return nil, errReadOnly
	}
	list, err := canonicalFlags(flags.Flags)
	if err != nil {
		return nil, err
	}
	op := storeFlagOp(flags.Op)
	refs := v.resolve(numSet)
	if len(refs) == 0 {
		return nil, nil
	}
	uids := make([]uint32, len(refs))
	for i, r := range refs {
		uids[i] = r.uid
	}
	updates, failed, err := s.st.SetFlagsUnchangedSince(s.ctx, v.mbox.ID, uids, op, list, int64(unchangedSince))
	if err != nil {
		return nil, s.storeError(err, "storing flags")
	}
	byUID := make(map[uint32]store.FlagUpdate, len(updates))
	for _, u := range updates {
		byUID[u.UID] = u
	}
	failedSet := make(map[uint32]bool, len(failed))
	for _, uid := range failed {
		failedSet[uid] = true
	}
	var seqs imap.SeqSet
	var failedUIDs imap.UIDSet
	hold := hasNewKeyword(v, list)
	for _, r := range refs {
		if failedSet[r.uid] {
			seqs.AddNum(r.seq)
			failedUIDs.AddNum(imap.UID(r.uid))
			continue
		}
		u, ok := byUID[r.uid]
		if !ok {
			continue // expunged meanwhile; the change log will tell
		}
		v.flags.set(r.uid, u.Flags)
		v.noteKeywords(u.Flags)
		if hold || v.keywordsChanged {
			// RFC 3501 §7.2.6: FLAGS first, in the poll after the command.
			hold = true
			v.holdFlags(r, u.ModSeq)
			continue
		}
		rw := w.CreateMessage(r)
		rw.WriteUID(imap.UID(r.uid))
		rw.WriteFlags(v.flagsOf(r.uid))
		rw.WriteModSeq(uint64(u.ModSeq))
		if err := rw.Close(); err != nil {
			return nil, err
		}
	}
	if len(failed) == 0 {
		return nil, nil
	}
	if kind == numKindUID {
		return failedUIDs, nil
	}
	return seqs, nil
}

// holdFlags keeps the FETCH of a STORE for the poll after the command (writeHeldFlags),
// with the modseq it is to show.
func (v *selected) holdFlags(r msgRef, modSeq int64) {
	v.heldFlags = append(v.heldFlags, r)
	if v.heldModSeqs == nil {
		v.heldModSeqs = make(map[uint32]int64)
	}
	v.heldModSeqs[r.uid] = modSeq
}

// storeFlagOp is the store's operation for STORE's FLAGS, +FLAGS or -FLAGS.
func storeFlagOp(op imap.StoreFlagsOp) store.FlagOp {
	switch op {
	case imap.StoreFlagsAdd:
		return store.FlagsAdd
	case imap.StoreFlagsDel:
		return store.FlagsRemove
	}
	return store.FlagsReplace
}

// searchModSeq is the MODSEQ of a SEARCH or ESEARCH answer to a search with the MODSEQ key
// (RFC 7162 §3.1.5, RFC 4731 §3.2 via RFC 7162 §3.1.5): the highest modseq of the
// messages the answer covers. For ESEARCH with MIN or MAX alone (or both), that is of the
// messages named; otherwise of every match.
func searchModSeq(o *imap.SearchOptions, all, minMod, maxMod int64) int64 {
	if o.ReturnAll || o.ReturnCount || (!o.ReturnMin && !o.ReturnMax) {
		return all
	}
	var m int64
	if o.ReturnMin {
		m = max(m, minMod)
	}
	if o.ReturnMax {
		m = max(m, maxMod)
	}
	return m
}
