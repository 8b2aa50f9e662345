package imap

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// selected is a session's view of its selected mailbox: exactly what the client has been
// told. Sequence number n is uids[n-1]; the view changes only when the client is told
// (EXISTS, EXPUNGE, FETCH FLAGS, FLAGS), so sequence numbers never disagree with it.
type selected struct {
	mbox     store.Mailbox
	readOnly bool

	uids  []uint32            // ascending; sequence number = index + 1
	gone  map[uint32]struct{} // expunged in the store, EXPUNGE not yet sent; nil until one is (markGone)
	flags viewFlags           // flags as last reported for each message

	keywords        map[string]string // keywords announced in FLAGS: lower case -> spelling; nil until one is
	keywordsChanged bool              // a new keyword was reported; FLAGS is due

	modseq    int64            // the change log has been read up to here
	deleted   bool             // the mailbox itself was deleted
	searchRes []uint32         // the saved SEARCH result (RFC 5182), as UIDs
	contexts  []*searchContext // live SEARCH and SORT results (RFC 5267 §4, context.go)

	// heldFlags are the messages a STORE answers whose FETCH waits for the FLAGS
	// response announcing a new keyword; Poll writes them (store_flags.go).
	heldFlags   []msgRef
	heldModSeqs map[uint32]int64 // their modseqs, for MODSEQ (condstore.go)
	// recent holds the messages this session has \Recent on (RFC 3501 §2.3.2).
	recent map[uint32]struct{}
	// rev2: IMAP4rev2 is enabled, which has no \Recent (RFC 9051 §1.1): the session
	// neither claims nor shows it, leaving it to IMAP4rev1 sessions.
	rev2 bool
}

// flagsOf is a message's flags for the wire: as last reported, with \Recent if this
// session holds it.
func (v *selected) flagsOf(uid uint32) []imap.Flag {
	out := imapFlags(v.flags.get(uid))
	if _, ok := v.recent[uid]; ok {
		out = append([]imap.Flag{imap.Flag(flagRecent)}, out...)
	}
	return out
}

// msgRef is a message of the view: its sequence number and UID.
type msgRef struct {
	seq uint32
	uid uint32
}

func (v *selected) maxUID() uint32 {
	if len(v.uids) == 0 {
		return 0
	}
	return v.uids[len(v.uids)-1]
}

// index returns the position of uid in the view.
func (v *selected) index(uid uint32) (int, bool) {
	i := sort.Search(len(v.uids), func(i int) bool { return v.uids[i] >= uid })
	return i, i < len(v.uids) && v.uids[i] == uid
}

func (v *selected) isGone(uid uint32) bool {
	_, ok := v.gone[uid]
	return ok
}

// markGone notes a message expunged in the store whose EXPUNGE is not yet sent. The map is
// made at the first: an idle session's view of a mailbox holds no empty maps.
func (v *selected) markGone(uid uint32) {
	if v.gone == nil {
		v.gone = make(map[uint32]struct{})
	}
	v.gone[uid] = struct{}{}
}

// noteKeywords records keywords the client is being shown, so that FLAGS lists them.
func (v *selected) noteKeywords(flags []string) {
	for _, f := range flags {
		if !isKeyword(f) {
			continue
		}
		key := strings.ToLower(f)
		if _, ok := v.keywords[key]; !ok {
			if v.keywords == nil {
				v.keywords = make(map[string]string)
			}
			v.keywords[key] = f
			v.keywordsChanged = true
		}
	}
}

// resolve turns a sequence set or UID set from the client into messages of the view, in
// ascending order, without duplicates and without messages already expunged ("*" is the
// last message, RFC 3501 §9 seq-number; "$" the saved search result, RFC 5182).
func (v *selected) resolve(numSet imap.NumSet) []msgRef {
	return v.resolveGone(numSet, false)
}

// resolveGone is resolve, keeping with withGone the messages expunged in the store whose
// EXPUNGE the client has not been sent: they still hold their sequence numbers (RFC 3501
// §7.4.1), and STORE answers them (store_flags.go).
func (v *selected) resolveGone(numSet imap.NumSet, withGone bool) []msgRef {
	type idxSpan struct{ lo, hi int } // indices into uids, inclusive
	var spans []idxSpan
	n := len(v.uids)
	if imap.IsSearchRes(numSet) {
		for _, uid := range v.searchRes {
			if i, ok := v.index(uid); ok {
				spans = append(spans, idxSpan{i, i})
			}
		}
	} else {
		switch set := numSet.(type) {
		case imap.SeqSet:
			for _, r := range set {
				start, stop := r.Start, r.Stop
				if start == 0 {
					start = uint32(n)
				}
				if stop == 0 {
					stop = uint32(n)
				}
				if start > stop {
					start, stop = stop, start
				}
				if start == 0 {
					start = 1
				}
				if int(start) > n {
					continue
				}
				spans = append(spans, idxSpan{int(start) - 1, min(int(stop), n) - 1})
			}
		case imap.UIDSet:
			maxUID := v.maxUID()
			for _, r := range set {
				start, stop := uint32(r.Start), uint32(r.Stop)
				if start == 0 {
					start = maxUID
				}
				if stop == 0 {
					stop = maxUID
				}
				if start > stop {
					start, stop = stop, start
				}
				lo, _ := v.index(start)
				hi, found := v.index(stop)
				if !found {
					hi--
				}
				if lo <= hi && hi < n {
					spans = append(spans, idxSpan{lo, hi})
				}
			}
		}
	}
	if len(spans) == 0 {
		return nil
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	var out []msgRef
	next := 0 // first index not yet emitted
	for _, sp := range spans {
		for i := max(sp.lo, next); i <= sp.hi; i++ {
			if uid := v.uids[i]; withGone || !v.isGone(uid) {
				out = append(out, msgRef{seq: uint32(i + 1), uid: uid})
			}
		}
		next = max(next, sp.hi+1)
	}
	return out
}

// remove takes expunged messages out of the view, telling the client with one EXPUNGE
// each, in ascending order, each number counted after the previous removals (RFC 3501
// §7.4.1). A nil write removes silently (CLOSE).
func (v *selected) remove(uids map[uint32]struct{}, write func(seq uint32) error) error {
	if len(uids) == 0 {
		return nil
	}
	kept := make([]uint32, 0, len(v.uids))
	removed := 0
	var err error
	for i, uid := range v.uids {
		if _, ok := uids[uid]; !ok || err != nil {
			kept = append(kept, uid)
			continue
		}
		if write != nil {
			err = write(uint32(i + 1 - removed))
			if err != nil {
				kept = append(kept, uid)
				continue
			}
		}
		removed++
		delete(v.gone, uid)
		delete(v.recent, uid)
	}
	if removed > 0 {
		v.flags.keepOnly(kept)
	}
	v.uids = kept
	return err
}

// viewFlags holds the flags of the view's messages as last reported to the client,
// ascending by UID. At SELECT the rows are the store's flags cache's own
// (store.MessageFlags, shared and read only), so that opening a mailbox builds nothing
// per message; the first change copies them (copy on write) and changes the copy.
type viewFlags struct {
	rows  []store.UIDFlags
	owned bool // rows is this view's copy, not the cache's
	next  int  // where the last lookup ended: FETCH and the poll go in UID order
}

// find returns the index of uid in rows, or where it would go.
func (f *viewFlags) find(uid uint32) (int, bool) {
	if i := f.next; i < len(f.rows) && f.rows[i].UID == uid {
		f.next = i + 1
		return i, true
	}
	i, ok := slices.BinarySearchFunc(f.rows, uid, func(r store.UIDFlags, uid uint32) int { return cmp.Compare(r.UID, uid) })
	if ok {
		f.next = i + 1
	}
	return i, ok
}

// get returns the flags of uid (nil for a UID not in the view); read only.
func (f *viewFlags) get(uid uint32) []string {
	if i, ok := f.find(uid); ok {
		return f.rows[i].Flags
	}
	return nil
}

// set records flags as the flags of uid, the view's or one it gains. flags is kept, not
// copied: the caller hands over a slice nobody changes.
func (f *viewFlags) set(uid uint32, flags []string) {
	i, ok := f.find(uid)
	if ok && slices.Equal(f.rows[i].Flags, flags) {
		return // as it was: no copy for a FETCH FLAGS that shows what the view has
	}
	if !f.owned {
		f.rows = slices.Clone(f.rows)
		f.owned = true
	}
	if ok {
		f.rows[i].Flags = flags
		return
	}
	f.rows = slices.Insert(f.rows, i, store.UIDFlags{UID: uid, Flags: flags})
}

// keepOnly drops the rows of UIDs not in uids (ascending), after expunges.
func (f *viewFlags) keepOnly(uids []uint32) {
	kept := make([]store.UIDFlags, 0, len(uids))
	j := 0
	for _, r := range f.rows {
		for j < len(uids) && uids[j] < r.UID {
			j++
		}
		if j < len(uids) && uids[j] == r.UID {
			kept = append(kept, r)
		}
	}
	f.rows, f.owned, f.next = kept, true, 0
}

// Select opens a mailbox (RFC 3501 §6.3.1, §6.3.2): the view starts as the store has it.
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	s.sel = nil
	s.live.SetMailbox("")

	mbox, err := s.st.MailboxByName(s.ctx, acct.ID, name)
	if err != nil {
		return nil, s.storeError(err, "selecting the mailbox")
	}
	// The change log position is read before the messages: whatever changes in between is
	// seen again by the first poll, which tolerates repeats.
	modseq, err := s.st.HighestModSeq(s.ctx, acct.ID)
	if err != nil {
		return nil, s.storeError(err, "selecting the mailbox")
	}
	// Only the UIDs and flags (store.MessageFlags): SELECT reads every message, so it
	// reads the least of each.
	msgs, err := s.st.MessageFlags(s.ctx, mbox.ID)
	if err != nil {
		return nil, s.storeError(err, "selecting the mailbox")
	}
	v := &selected{
		mbox:     mbox,
		readOnly: options.ReadOnly,
		uids:     make([]uint32, len(msgs)),
		flags:    viewFlags{rows: msgs},
		modseq:   modseq,
		rev2:     s.enabled.Has(imap.CapIMAP4rev2),
	}
	var firstUnseen uint32
	var noted []string // the flags last noted: messages with equal flags share the slice
	for i, m := range msgs {
		v.uids[i] = m.UID
		if len(m.Flags) > 0 && (len(noted) == 0 || &noted[0] != &m.Flags[0]) {
			v.noteKeywords(m.Flags)
			noted = m.Flags
		}
		if firstUnseen == 0 && !hasFlag(m.Flags, store.FlagSeen) {
			firstUnseen = uint32(i + 1)
		}
	}
	v.keywordsChanged = false
	if err := s.takeRecent(v, v.uids, mbox.RecentUID); err != nil {
		return nil, err
	}
	uidNext := mbox.UIDNext
	if uidNext <= v.maxUID() {
		uidNext = v.maxUID() + 1
	}
	flags := mailboxFlags(v.keywords)
	// RFC 3501 §6.3.2: a read-only mailbox has no permanent flags.
	permanent := []imap.Flag{}
	if !options.ReadOnly {
		permanent = append(append(permanent, flags...), imap.FlagWildcard)
	}
	data := &imap.SelectData{
		Flags:             flags,
		PermanentFlags:    permanent,
		NumMessages:       uint32(len(v.uids)),
		NumRecent:         uint32(len(v.recent)),
		FirstUnseenSeqNum: firstUnseen,
		UIDNext:           imap.UID(uidNext),
		UIDValidity:       mbox.UIDValidity,
		HighestModSeq:     uint64(mbox.ModSeq),
	}
	if s.enabled.Has(imap.CapIMAP4rev2) {
		// RFC 9051 §6.3.2: the response includes the mailbox's LIST data.
		data.List = &imap.ListData{Delim: delimiter, Mailbox: mbox.Name}
	}
	s.sel = v
	s.live.SetMailbox(mbox.Name)
	s.log.Debug("selected", "mailbox", mbox.Name, "messages", len(v.uids), "read_only", options.ReadOnly)
	return data, nil
}

// takeRecent gives the view \Recent on those of the messages just added to it (uids,
// ascending) that no session has had yet (RFC 3501 §2.3.2): the first session to see a
// message gets it. A read-write session claims them in the store (store.ClaimRecent), so
// no other session gets them; a read-only one (EXAMINE) claims nothing and shows as recent
// what is above the mailbox's watermark, watermark being what the caller last read of it,
// or 0 to read it now.
func (s *session) takeRecent(v *selected, uids []uint32, watermark uint32) error {
	if len(uids) == 0 || v.rev2 {
		return nil
	}
	if v.recent == nil {
		v.recent = make(map[uint32]struct{})
	}
	top := uids[len(uids)-1]
	from := watermark
	switch {
	case !v.readOnly && top > watermark:
		var err error
		if from, err = s.st.ClaimRecent(s.ctx, v.mbox.ID, top); err != nil {
			return s.storeError(err, "claiming \\Recent")
		}
	case v.readOnly && watermark == 0:
		m, err := s.st.MailboxByID(s.ctx, v.mbox.ID)
		if err != nil {
			return s.storeError(err, "reading \\Recent")
		}
		from = m.RecentUID
	}
	if from == math.MaxUint32 {
		return nil
	}
	// uids ascend: only those after the first above from, without a pass over the rest.
	i, _ := slices.BinarySearch(uids, from+1)
	for _, uid := range uids[i:] {
		v.recent[uid] = struct{}{}
	}
	return nil
}

// Unselect leaves the selected state (UNSELECT, RFC 3691; CLOSE after its expunge).
func (s *session) Unselect() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.sel = nil
	s.live.SetMailbox("")
	return nil
}

// Poll runs after every command and tells the client what changed in its mailbox since
// it was last told; expunges only where allowed (not after FETCH, STORE, SEARCH).
func (s *session) Poll(w *updateWriter, allowExpunge bool) error {
	if err := s.lock(); err != nil {
		return nil // the session is going away; there is nothing to report
	}
	defer s.mu.Unlock()
	if s.sel == nil {
		return nil
	}
	err := s.sync(s.ctx, w, allowExpunge, 0)
	if v := s.sel; v != nil && len(v.heldFlags) > 0 {
		if v.keywordsChanged { // sync failed before it could send FLAGS
			v.keywordsChanged = false
			if werr := v.writeKeywordsUpdate(w); werr != nil {
				return werr
			}
		}
		if werr := v.writeHeldFlags(w, s.condStore()); err == nil {
			err = werr
		}
	}
	return err
}

// sync brings the view up to date with the store through the change log, writing the
// responses that tell the client: EXPUNGE (if allowed), EXISTS, FLAGS, FETCH FLAGS.
// Reading a change twice is harmless: appends below the view's highest UID, expunges of
// UIDs not in the view and flag changes equal to the view produce nothing.
//
// asOf is 0 for what the store holds now, or the store's notification count after a
// wake-up (store.Notified): then the reads may be shared with the other sessions of the
// account woken by the same notification (ChangesAsOf, MessagesAfterAsOf).
func (s *session) sync(ctx context.Context, w *updateWriter, allowExpunge bool, asOf uint64) error {
	v := s.sel
	var changes []store.Change
	var err error
	if asOf == 0 {
		changes, err = s.st.Changes(ctx, s.acct.ID, v.modseq)
	} else {
		changes, err = s.st.ChangesAsOf(ctx, s.acct.ID, v.modseq, asOf)
	}
	if err != nil {
		return s.storeError(err, "reading changes")
	}
	maxUID := v.maxUID()
	appended := false
	var lastAppended uint32
	var flagged []uint32
	seenFlagged := make(map[uint32]struct{})
	newModseq := v.modseq
	for _, c := range changes {
		newModseq = max(newModseq, c.ModSeq)
		if c.MailboxID != v.mbox.ID {
			continue
		}
		switch c.Kind {
		case store.ChangeAppend:
			if c.UID > maxUID {
				appended = true
				lastAppended = max(lastAppended, c.UID)
			}
		case store.ChangeFlags:
			if _, ok := v.index(c.UID); ok && !v.isGone(c.UID) {
				if _, dup := seenFlagged[c.UID]; !dup {
					seenFlagged[c.UID] = struct{}{}
					flagged = append(flagged, c.UID)
				}
			}
		case store.ChangeExpunge:
			if _, ok := v.index(c.UID); ok {
				v.markGone(c.UID)
			}
		case store.ChangeMailboxDelete:
			v.deleted = true
			for _, uid := range v.uids {
				v.markGone(uid)
			}
		}
	}

	var added []store.Message
	if appended && !v.deleted && asOf != 0 {
		added, err = s.st.MessagesAfterAsOf(ctx, s.acct.ID, v.mbox.ID, maxUID, asOf)
		if err != nil {
			return s.storeError(err, "reading new messages")
		}
		if len(added) == 0 || added[len(added)-1].UID < lastAppended {
			asOf = 0 // an answer older than the changes': read what is there now
		}
	}
	if appended && !v.deleted && asOf == 0 {
		added, err = s.st.Messages(ctx, v.mbox.ID, store.UIDRange{Start: maxUID + 1, Stop: 0})
		if err != nil {
			return s.storeError(err, "reading new messages")
		}
	}
	var current []store.Message
	if len(flagged) > 0 {
		sort.Slice(flagged, func(i, j int) bool { return flagged[i] < flagged[j] })
		current, err = s.st.Messages(ctx, v.mbox.ID, uidRanges(flagged)...)
		if err != nil {
			return s.storeError(err, "reading flags")
		}
	}
	v.modseq = newModseq

	// 1. Expunges, when the protocol allows them now.
	if allowExpunge && len(v.gone) > 0 {
		if err := s.removeExpunged(v, v.gone, w.WriteExpunge, w.WriteVanished); err != nil {
			return err
		}
	}
	// 2. New messages: appended to the view, announced by one EXISTS.
	var grown []uint32
	for _, m := range added {
		if m.UID <= v.maxUID() {
			continue
		}
		v.uids = append(v.uids, m.UID)
		v.flags.set(m.UID, m.Flags)
		v.noteKeywords(m.Flags)
		grown = append(grown, m.UID)
	}
	if len(grown) > 0 {
		// A read-write session claims \Recent on what it announces; watermark 0 makes
		// ClaimRecent (or, read-only, a read of the mailbox) find the current one.
		if err := s.takeRecent(v, grown, 0); err != nil {
			return err
		}
		if err := w.WriteNumMessages(uint32(len(v.uids))); err != nil {
			return err
		}
		// RFC 3501 §7.3.2: RECENT follows a change in the number of recent messages.
		if err := w.WriteNumRecent(uint32(len(v.recent))); err != nil {
			return err
		}
	}
	// 3. Flag changes of messages the client knows.
	type flagUpdate struct {
		ref    msgRef
		flags  []string
		modSeq int64
	}
	var updates []flagUpdate
	for _, m := range current {
		i, ok := v.index(m.UID)
		if !ok || v.isGone(m.UID) || sameFlags(v.flags.get(m.UID), m.Flags) {
			continue
		}
		v.flags.set(m.UID, m.Flags)
		v.noteKeywords(m.Flags)
		updates = append(updates, flagUpdate{msgRef{uint32(i + 1), m.UID}, m.Flags, m.ModSeq})
	}
	// A keyword the client has not seen in FLAGS comes first (RFC 3501 §7.2.6).
	if v.keywordsChanged {
		v.keywordsChanged = false
		if err := v.writeKeywordsUpdate(w); err != nil {
			return err
		}
	}
	for _, u := range updates {
		if held, ok := v.heldModSeqs[u.ref.uid]; ok {
			// A STORE's FETCH of this message waits for this poll (writeHeldFlags): it
			// goes out once, after, with these flags and the newer modseq, so that the
			// client never sees the message's MODSEQ go down (RFC 7162 §3.1).
			v.heldModSeqs[u.ref.uid] = max(held, u.modSeq)
			continue
		}
		if err := w.WriteMessageFlags(u.ref.seq, imap.UID(u.ref.uid), v.flagsOf(u.ref.uid), s.modSeqFor(u.modSeq)); err != nil {
			return err
		}
	}
	// 4. Live SEARCH and SORT results (context.go).
	if len(v.contexts) > 0 {
		if err := s.updateContexts(v); err != nil {
			return err
		}
		return w.done()
	}
	return nil
}

// --- the commands of this file (command.go has the table)

// SELECT and EXAMINE (RFC 3501 §6.3.1, §6.3.2; RFC 9051 §6.3.2 for IMAP4rev2 clients).
func handleSelect(s *session, cmd *command) error {
	a := cmd.args.(*selectArgs)
	if err := s.selectCondStore(a); err != nil {
		return err
	}
	readOnly := cmd.name == "EXAMINE"
	hadSelection := s.sel != nil
	data, err := s.Select(a.mailbox, &imap.SelectOptions{ReadOnly: readOnly})
	if err != nil {
		return err
	}
	w := s.out
	rev2 := s.enabled.Has(imap.CapIMAP4rev2)
	if hadSelection {
		// RFC 9051 §7.1, RFC 7162 §3.2.11: the previous mailbox is closed.
		w.status("", imap.StatusResponseTypeOK, "CLOSED", "Previous mailbox closed")
	}
	w.raw("* FLAGS ").flags(data.Flags).crlf()
	w.raw("* ").number(data.NumMessages).raw(" EXISTS").crlf()
	if !rev2 {
		w.raw("* ").number(data.NumRecent).raw(" RECENT").crlf()
		if data.FirstUnseenSeqNum != 0 {
			w.raw("* OK [UNSEEN ").number(data.FirstUnseenSeqNum).raw("] First unseen message").crlf()
		}
	}
	if data.List != nil {
		(&listWriter{w: w}).WriteList(data.List)
	}
	w.raw("* OK [PERMANENTFLAGS ").flags(data.PermanentFlags).raw("] Flags that can be stored").crlf()
	w.raw("* OK [UIDNEXT ").number(uint32(data.UIDNext)).raw("] Predicted next UID").crlf()
	w.raw("* OK [UIDVALIDITY ").number(data.UIDValidity).raw("] UIDs valid").crlf()
	// RFC 7162 §3.1.2.1: every SELECT and EXAMINE of a mailbox that keeps modseqs.
	w.raw("* OK [HIGHESTMODSEQ ").modSeq(data.HighestModSeq).raw("] Highest").crlf()
	if a.qresync != nil && a.qresync.uidValidity == data.UIDValidity {
		if err := s.qresyncSelect(a.qresync); err != nil {
			return err
		}
	}
	writeSelectMailboxID(s) // objectid.go
	code := imap.ResponseCode("READ-WRITE")
	if readOnly {
		code = "READ-ONLY"
	}
	s.ok(code, cmd.name+" completed")
	return nil
}

// CLOSE (RFC 3501 §6.4.2: the deleted messages go, silently) and UNSELECT (RFC 3691).
func handleClose(s *session, cmd *command) error {
	if cmd.name == "CLOSE" {
		if err := s.Expunge(nil, nil); err != nil {
			return err
		}
	}
	return s.Unselect()
}
