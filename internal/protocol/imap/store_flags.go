package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
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
//
// A message another session expunged keeps its sequence number until this session sends
// its EXPUNGE, which it may not do during STORE (RFC 3501 §7.4.1). STORE answers it OK all
// the same, with the flags the client asked for applied to the flags it was last shown
// (RFC 2180 §4.2 allows OK or NO; the client sees a consistent view and the EXPUNGE
// follows at the next command that allows it).
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
	refs := s.limitRefs(v.resolveGone(numSet, true)) // RFC 9738 §3.1
	if len(refs) == 0 {
		return nil // a UID set naming no message of the view: nothing is stored
	}
	var live []uint32 // the messages not known to be expunged: the store changes these
	for _, r := range refs {
		if !v.isGone(r.uid) {
			live = append(live, r.uid)
		}
	}
	if len(live) > 0 && (len(list) > 0 || op == store.FlagsReplace) {
		if _, err := s.st.SetFlags(s.ctx, v.mbox.ID, live, op, list); err != nil {
			return s.storeError(err, "storing flags")
		}
	}
	// RFC 3501 §7.2.6: a keyword new to the client is announced in FLAGS before any FETCH
	// shows it, and a STORE naming a keyword on messages of the view makes it one of the
	// mailbox's, even when every one of them was expunged meanwhile (or the keyword is
	// being removed): the Poll after the command sends FLAGS whenever keywordsChanged is
	// set.
	v.noteKeywords(list)
	if flags.Silent {
		for _, r := range refs {
			v.flags.set(r.uid, applyFlagOp(v.flags.get(r.uid), op, list))
		}
		return nil
	}
	// STORE has only a fetchWriter, so while FLAGS is due (a keyword of this STORE, or
	// one someone else stored meanwhile) the FETCH responses are held back for the Poll
	// that follows the command, which writes FLAGS first (sync) and then them
	// (writeHeldFlags).
	hold := v.keywordsChanged
	return s.eachMessage(v, refs, false, func(batch []msgRef, metas map[uint32]*store.Metadata) error {
		for _, r := range batch {
			m := metas[r.uid]
			var modSeq int64
			if m == nil || v.isGone(r.uid) {
				// Expunged, by now or before: the flags this STORE would have given it.
				v.flags.set(r.uid, applyFlagOp(v.flags.get(r.uid), op, list))
				modSeq = v.modseq
			} else {
				v.flags.set(r.uid, m.Flags)
				v.noteKeywords(m.Flags)
				modSeq = m.ModSeq
			}
			if v.keywordsChanged { // someone else's new keyword, stored meanwhile
				hold = true
			}
			if hold {
				v.holdFlags(r, modSeq)
				continue
			}
			rw := w.CreateMessage(r)
			rw.WriteUID(imap.UID(r.uid))
			rw.WriteFlags(v.flagsOf(r.uid))
			if ms := s.modSeqFor(modSeq); ms != 0 {
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

// writeKeywordsUpdate tells the client the mailbox's keywords changed: FLAGS with them
// (RFC 3501 §7.2.6) and, read-write, PERMANENTFLAGS, which SELECT listed them in (RFC 3501
// §7.1), with \* as there: the keyword list it gave is out of date now.
func (v *selected) writeKeywordsUpdate(w *updateWriter) error {
	flags := mailboxFlags(v.keywords)
	if err := w.WriteMailboxFlags(flags); err != nil {
		return err
	}
	if v.readOnly {
		return nil // RFC 3501 §6.3.2: EXAMINE's PERMANENTFLAGS is empty, and stays so
	}
	return w.WritePermanentFlags(append(flags, imap.FlagWildcard))
}

// writeHeldFlags writes the FETCH responses a STORE held back until FLAGS was sent.
// With condStore each carries the MODSEQ the STORE saw (RFC 7162 §3.1.4.1).
func (v *selected) writeHeldFlags(w *updateWriter, condStore bool) error {
	held, modSeqs := v.heldFlags, v.heldModSeqs
	v.heldFlags, v.heldModSeqs = nil, nil
	for _, r := range held {
		// A message expunged meanwhile is answered too while it keeps its sequence
		// number (the Poll after STORE sends no EXPUNGE, RFC 3501 §7.4.1); only one the
		// view has dropped is left out.
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
