package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

var errReadOnly = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: "READ-ONLY",
	Text: "The mailbox is open read-only (EXAMINE)",
}

// Store answers STORE and UID STORE (RFC 3501 §6.4.6). Unless .SILENT, every message of
// the set is answered with its flags as the store now has them, with its UID (as UID
// STORE requires, RFC 3501 §6.4.8). With .SILENT the view records what the client expects,
// so a concurrent change by someone else still reaches it through the next poll.
func (s *session) Store(w *fetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	v, err := s.lockSelected()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if v.readOnly {
		return errReadOnly
	}
	list, err := canonicalFlags(flags.Flags)
	if err != nil {
		return err
	}
	var op store.FlagOp
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = store.FlagsAdd
	case imap.StoreFlagsDel:
		op = store.FlagsRemove
	default:
		op = store.FlagsReplace
	}
	refs := v.resolve(numSet)
	if len(refs) == 0 {
		return nil
	}
	uids := make([]uint32, len(refs))
	for i, r := range refs {
		uids[i] = r.uid
	}
	if len(list) > 0 || op == store.FlagsReplace {
		if _, err := s.st.SetFlags(s.ctx, v.mbox.ID, uids, op, list); err != nil {
			return s.storeError(err, "storing flags")
		}
	}
	if flags.Silent {
		for _, r := range refs {
			v.flags[r.uid] = applyFlagOp(v.flags[r.uid], op, list)
			v.noteKeywords(list)
		}
		return nil
	}
	// RFC 3501 §7.2.6: a keyword new to the client is announced in FLAGS before any FETCH
	// shows it. STORE has only a fetchWriter, so when the STORE brings a new
	// keyword its FETCH responses are held back for the Poll that follows the command,
	// which writes FLAGS first (sync) and then them (writeHeldFlags).
	hold := hasNewKeyword(v, list)
	return s.eachMessage(v, refs, false, func(batch []msgRef, metas map[uint32]*store.Metadata) error {
		for _, r := range batch {
			m := metas[r.uid]
			if m == nil {
				continue
			}
			v.flags[r.uid] = m.Flags
			v.noteKeywords(m.Flags)
			if v.keywordsChanged { // someone else's new keyword, stored meanwhile
				hold = true
			}
			if hold {
				v.holdFlags(r, m.ModSeq)
				continue
			}
			rw := w.CreateMessage(r)
			rw.WriteUID(imap.UID(r.uid))
			rw.WriteFlags(v.flagsOf(r.uid))
			if ms := s.modSeqFor(m.ModSeq); ms != 0 {
				rw.WriteModSeq(ms) // RFC 7162 §3.1.4.1
			}
			if err := rw.Close(); err != nil {
				return err
			}
		}
		return nil
	})
}

// hasNewKeyword reports whether flags hold a keyword the client has not been shown in FLAGS.
func hasNewKeyword(v *selected, flags []string) bool {
	for _, f := range flags {
		if isKeyword(f) {
			if _, ok := v.keywords[strings.ToLower(f)]; !ok {
				return true
			}
		}
	}
	return false
}

// writeHeldFlags writes the FETCH responses a STORE held back until FLAGS was sent.
// With condStore each carries the MODSEQ the STORE saw (RFC 7162 §3.1.4.1).
func (v *selected) writeHeldFlags(w *updateWriter, condStore bool) error {
	held, modSeqs := v.heldFlags, v.heldModSeqs
	v.heldFlags, v.heldModSeqs = nil, nil
	for _, r := range held {
		if v.isGone(r.uid) {
			continue
		}
		i, ok := v.index(r.uid)
		if !ok {
			continue
		}
		var modSeq uint64
		if condStore {
			modSeq = uint64(modSeqs[r.uid])
		}
		if err := w.WriteMessageFlags(uint32(i+1), imap.UID(r.uid), v.flagsOf(r.uid), modSeq); err != nil {
			return err
		}
	}
	return nil
}

// --- the commands of this file (command.go has the table)

// STORE and UID STORE (RFC 3501 §6.4.6).
func handleStore(s *session, cmd *command) error {
	a := cmd.args.(*storeArgs)
	if a.hasUnchanged {
		if err := s.enableCondStore(); err != nil {
			return err
		}
		kind := numKindSeq
		if cmd.name == "UID STORE" {
			kind = numKindUID
		}
		modified, err := s.storeUnchangedSince(&fetchWriter{w: s.out}, kind, a.nums, &a.flags, a.unchangedSince)
		if err != nil {
			return err
		}
		if modified != nil {
			// RFC 7162 §3.1.3: the messages that failed the UNCHANGEDSINCE test.
			s.ok(imap.ResponseCode("MODIFIED "+modified.String()), "Conditional STORE failed")
		}
		return nil
	}
	return s.Store(&fetchWriter{w: s.out}, a.nums, &a.flags, &imap.StoreOptions{})
}
