package imap

import (
	"github.com/emersion/go-imap/v2"
)

// Expunge answers EXPUNGE (RFC 3501 §6.4.3), UID EXPUNGE (RFC 4315 §2.1) and the silent
// expunge of CLOSE (RFC 3501 §6.4.2), which has no writer (nil). Only messages flagged \Deleted are removed. The EXPUNGE responses are written
// here, from the UIDs the store actually removed; the change log later repeats them, but
// they are no longer in the view then, so nothing is sent twice.
func (s *session) Expunge(w *expungeWriter, uids *imap.UIDSet) error {
	v, err := s.lockSelected()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	closing := w == nil
	if v.readOnly {
		if closing {
			return nil // RFC 3501 §6.4.2: CLOSE of a read-only mailbox removes nothing
		}
		return errReadOnly
	}

	var removed []uint32
	if uids == nil {
		removed, err = s.st.Expunge(s.ctx, v.mbox.ID, nil)
		if err != nil {
			return s.storeError(err, "expunging")
		}
	} else {
		// UID EXPUNGE: only those of the named messages that are \Deleted at the moment
		// the store removes them, decided in the same transaction.
		refs := v.resolve(*uids)
		if len(refs) == 0 {
			return nil
		}
		named := make([]uint32, len(refs))
		for i, r := range refs {
			named[i] = r.uid
		}
		if named, err = s.limitExpunge(v, named); err != nil { // RFC 9738 §3.1
			return err
		}
		removed, err = s.st.ExpungeDeleted(s.ctx, v.mbox.ID, named)
		if err != nil {
			return s.storeError(err, "expunging")
		}
	}

	set := make(map[uint32]struct{}, len(removed))
	for _, uid := range removed {
		if _, ok := v.index(uid); ok {
			set[uid] = struct{}{}
		}
	}
	s.stats.expunged += len(set)
	if closing {
		return v.remove(set, nil)
	}
	return s.removeExpunged(v, set, w.WriteExpunge, w.WriteVanished)
}

// --- the commands of this file (command.go has the table)

// EXPUNGE (RFC 3501 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1).
func handleExpunge(s *session, cmd *command) error {
	var uids *imap.UIDSet
	if a, ok := cmd.args.(*uidExpungeArgs); ok {
		uids = &a.uids
	}
	return s.Expunge(&expungeWriter{w: s.out}, uids)
}
