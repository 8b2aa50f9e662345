package imap

import (
	"math"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// Search answers SEARCH and UID SEARCH (RFC 3501 §6.4.4) with every RFC 3501 key, the
// ESEARCH return options (RFC 4731) and SAVE with "$" (RFC 5182).
//
// Flags, dates, sizes and numbers come from the message rows; FROM, TO, CC, BCC, SUBJECT
// and the SENT* dates from the delivery-time envelope (RFC 3501 says FROM etc. search
// the envelope); HEADER, BODY and TEXT use the text the store keeps since delivery: the
// raw header, whose RFC 2047 words are decoded here (charsets through go-message), and the
// decoded text of the text parts (the first MiB of each message). Matching is
// case-insensitive substring matching, as RFC 3501 requires. Cheap keys are checked
// first, so the message is read only when they match.
//
// The TEXT, BODY and HEADER terms of the top level (those every match must contain) first
// narrow the messages through the store's full-text index (store.SearchCandidates), when
// it can: a prefilter that never misses a match, so every candidate is still confirmed
// here, and the answer is the same with the index, while it lags, and without it.
func (s *session) Search(kind numKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	v, err := s.lockSelected()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.search(v, kind, s.limitSearch(v, criteria), options) // RFC 9738 §3.1
}

// search is Search with the session locked and v its selected mailbox: context.go
// reruns the searches of CONTEXT updates while it brings the view up to date.
func (s *session) search(v *selected, kind numKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	m, err := compileSearch(v, criteria)
	if err != nil {
		return nil, err
	}
	var candidates map[uint32]bool // nil: every message
	if terms := m.indexTerms(); len(terms) > 0 {
		uids, ok, err := s.st.SearchCandidates(s.ctx, v.mbox.ID, terms)
		if err != nil {
			return nil, s.storeError(err, "searching")
		}
		if ok {
			candidates = make(map[uint32]bool, len(uids))
			for _, uid := range uids {
				candidates[uid] = true
			}
		}
	}
	refs := make([]msgRef, 0, len(v.uids))
	for i, uid := range v.uids {
		if !v.isGone(uid) && (candidates == nil || candidates[uid]) {
			refs = append(refs, msgRef{seq: uint32(i + 1), uid: uid})
		}
	}

	var seqs imap.SeqSet
	var uids imap.UIDSet
	var matched []uint32
	var minModSeq, maxModSeq, allModSeq int64 // of the first match, the last and all
	now := searchNow()
	data := &imap.SearchData{}
	each := func(batch []msgRef, metas map[uint32]*store.Metadata) error {
		text := &textBatch{refs: batch, sizes: make(map[uint32]int64, len(batch))}
		for uid, meta := range metas {
			text.sizes[uid] = meta.Size
		}
		for _, ref := range batch {
			meta := metas[ref.uid]
			if meta == nil {
				continue
			}
			msg := &searchMsg{s: s, mbox: v.mbox.ID, ref: ref, meta: meta, batch: text, now: now}
			ok, err := m.match(msg)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			matched = append(matched, ref.uid)
			if len(matched) == 1 {
				minModSeq = meta.ModSeq
			}
			maxModSeq, allModSeq = meta.ModSeq, max(allModSeq, meta.ModSeq)
			num := ref.seq
			if kind == numKindUID {
				num = ref.uid
				uids.AddNum(imap.UID(ref.uid))
			} else {
				seqs.AddNum(ref.seq)
			}
			if data.Min == 0 || num < data.Min {
				data.Min = num
			}
			data.Max = max(data.Max, num)
			data.Count++
		}
		return nil
	}
	// The index's candidates are few and scattered: they are read in groups of a few UID
	// ranges each, which the store looks up one by one, rather than by spans of UIDs.
	groups := [][]msgRef{refs}
	if candidates != nil {
		groups = splitRuns(refs, candidateRuns)
	}
	for _, g := range groups {
		if err := s.eachMessage(v, g, m.needs&needMeta != 0, each); err != nil {
			return nil, err
		}
	}
	if kind == numKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	if options.ReturnSave {
		v.searchRes = matched
	}
	data.ModSeq = uint64(searchModSeq(options, allModSeq, minModSeq, maxModSeq))
	return data, nil
}

// candidateRuns is how many runs of consecutive UIDs one read of candidates asks for: the
// store looks up at most 50 UID ranges one by one (and reads the span of more).
const candidateRuns = 50

// splitRuns cuts refs (ascending UIDs) into groups of at most n runs of consecutive UIDs.
func splitRuns(refs []msgRef, n int) [][]msgRef {
	var groups [][]msgRef
	start, runs := 0, 0
	for i := range refs {
		if i == 0 || refs[i].uid != refs[i-1].uid+1 {
			if runs == n {
				groups = append(groups, refs[start:i])
				start, runs = i, 0
			}
			runs++
		}
	}
	if start < len(refs) {
		groups = append(groups, refs[start:])
	}
	return groups
}

// What a search needs beyond the message rows.
const (
	needMeta = 1 << iota // the envelope
	needText             // the header and the decoded text (store.SearchData)
)

// ranges is a static number set: inclusive [lo, hi] pairs.
type ranges [][2]uint32

func (r ranges) contains(n uint32) bool {
	for _, x := range r {
		if x[0] <= n && n <= x[1] {
			return true
		}
	}
	return false
}

func staticRange(start, stop, star uint32) [2]uint32 {
	if start == 0 {
		start = star
	}
	if stop == 0 {
		stop = star
	}
	if start > stop {
		start, stop = stop, start
	}
	return [2]uint32{start, stop}
}

// matcher is a compiled search key: all its fields must match (RFC 3501 §6.4.4).
type matcher struct {
	seqs, uids                           []ranges
	since, before, sentSince, sentBefore time.Time
	envelope                             []imap.SearchCriteriaHeaderField // FROM TO CC BCC SUBJECT
	headers                              []imap.SearchCriteriaHeaderField // HEADER
	body, text                           []string                         // lower case
	flags, notFlags                      []string
	larger, smaller                      int64
	not                                  []*matcher
	or                                   [][2]*matcher
	recent                               map[uint32]struct{} // the view's \Recent messages
	modSeq                               int64               // MODSEQ n: the message's modseq is at least n
	hasModSeq                            bool
	ext                                  []extKey // WITHIN, SAVEDATE, OBJECTID keys
	needs                                int      // needMeta | needText, including sub-keys
}

func compileSearch(v *selected, c *imap.SearchCriteria) (*matcher, error) {
	m := &matcher{
		since: c.Since, before: c.Before, sentSince: c.SentSince, sentBefore: c.SentBefore,
		larger: c.Larger, smaller: c.Smaller, recent: v.recent,
	}
	if c.ModSeq != nil {
		// RFC 7162 §3.1.5: the entry name and type (per-flag modseqs) do not narrow it,
		// as the store keeps one modseq per message.
		m.modSeq, m.hasModSeq = int64(min(c.ModSeq.ModSeq, math.MaxInt64)), true
	}
	for _, set := range c.SeqNum {
		var r ranges
		for _, x := range set {
			r = append(r, staticRange(x.Start, x.Stop, uint32(len(v.uids))))
		}
		m.seqs = append(m.seqs, r)
	}
	for _, set := range c.UID {
		var r ranges
		if imap.IsSearchRes(set) {
			for _, uid := range v.searchRes {
				r = append(r, [2]uint32{uid, uid})
			}
		} else {
			for _, x := range set {
				r = append(r, staticRange(uint32(x.Start), uint32(x.Stop), v.maxUID()))
			}
		}
		m.uids = append(m.uids, r)
	}
	if !m.sentSince.IsZero() || !m.sentBefore.IsZero() {
		m.needs |= needMeta
	}
	for _, h := range c.Header {
		if k, ok := compileExtKey(h); ok { // searchext.go
			m.ext = append(m.ext, k)
			continue
		}
		// The parser gives FROM x and HEADER FROM x alike. An empty string asks whether
		// the message has the field at all (RFC 3501 §6.4.4 HEADER; a message without a
		// Subject has none, though its envelope's subject is as empty as an empty one),
		// so it is answered from the header.
		switch strings.ToLower(h.Key) {
		case "from", "to", "cc", "bcc", "subject":
			if h.Value == "" {
				m.headers = append(m.headers, h)
				m.needs |= needText
				continue
			}
			m.envelope = append(m.envelope, h)
			m.needs |= needMeta
		default:
			m.headers = append(m.headers, h)
			m.needs |= needText
		}
	}
	for _, b := range c.Body {
		m.body = append(m.body, strings.ToLower(b))
		m.needs |= needText
	}
	for _, t := range c.Text {
		m.text = append(m.text, strings.ToLower(t))
		m.needs |= needText
	}
	for _, f := range c.Flag {
		m.flags = append(m.flags, string(f))
	}
	for _, f := range c.NotFlag {
		m.notFlags = append(m.notFlags, string(f))
	}
	for i := range c.Not {
		sub, err := compileSearch(v, &c.Not[i])
		if err != nil {
			return nil, err
		}
		m.not = append(m.not, sub)
		m.needs |= sub.needs
	}
	for i := range c.Or {
		a, err := compileSearch(v, &c.Or[i][0])
		if err != nil {
			return nil, err
		}
		b, err := compileSearch(v, &c.Or[i][1])
		if err != nil {
			return nil, err
		}
		m.or = append(m.or, [2]*matcher{a, b})
		m.needs |= a.needs | b.needs
	}
	return m, nil
}

// indexTerms are the strings every message the matcher matches contains (its own TEXT,
// BODY and HEADER values; not those under NOT or OR), for the full-text index.
func (m *matcher) indexTerms() []store.SearchTerm {
	var terms []store.SearchTerm
	for _, t := range m.text {
		terms = append(terms, store.SearchTerm{Field: store.SearchText, Value: t})
	}
	for _, b := range m.body {
		terms = append(terms, store.SearchTerm{Field: store.SearchBody, Value: b})
	}
	for _, h := range m.headers {
		terms = append(terms, store.SearchTerm{Field: store.SearchHeaders, Value: strings.ToLower(h.Value)})
	}
	return terms
}

// searchMsg is one message under test; header and body text are loaded when first needed.
type searchMsg struct {
	s     *session
	mbox  int64
	ref   msgRef
	meta  *store.Metadata
	batch *textBatch // the batch this message is searched in
	now   time.Time  // when the search began (OLDER, YOUNGER)

	loaded     bool
	header     []store.HeaderField
	headerText string // all fields, decoded, lower case (store.SearchHeaderText)
	bodyText   string // decoded text parts, lower case
}

// day is the date of t in its own time zone, as a comparable midnight UTC.
func day(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// hasFlag tells whether a message has a flag; \Recent is the session's (RECENT, NEW and
// OLD, RFC 3501 §6.4.4), the others the store's.
func (m *matcher) hasFlag(msg *searchMsg, flag string) bool {
	if strings.EqualFold(flag, flagRecent) {
		_, ok := m.recent[msg.ref.uid]
		return ok
	}
	return hasFlag(msg.meta.Flags, flag)
}

func (m *matcher) match(msg *searchMsg) (bool, error) {
	meta := msg.meta
	for _, r := range m.seqs {
		if !r.contains(msg.ref.seq) {
			return false, nil
		}
	}
	for _, r := range m.uids {
		if !r.contains(msg.ref.uid) {
			return false, nil
		}
	}
	if m.hasModSeq && meta.ModSeq < m.modSeq {
		return false, nil
	}
	for _, f := range m.flags {
		if !m.hasFlag(msg, f) {
			return false, nil
		}
	}
	for _, f := range m.notFlags {
		if m.hasFlag(msg, f) {
			return false, nil
		}
	}
	for _, k := range m.ext {
		if !k.match(msg, msg.now) {
			return false, nil
		}
	}
	if m.larger > 0 && meta.Size <= m.larger {
		return false, nil
	}
	if m.smaller > 0 && meta.Size >= m.smaller {
		return false, nil
	}
	internal := day(meta.InternalDate)
	if !m.since.IsZero() && internal.Before(day(m.since)) {
		return false, nil
	}
	if !m.before.IsZero() && !internal.Before(day(m.before)) {
		return false, nil
	}
	if !m.sentSince.IsZero() || !m.sentBefore.IsZero() {
		sent := meta.Envelope.Date
		if sent.IsZero() {
			return false, nil
		}
		if !m.sentSince.IsZero() && day(sent).Before(day(m.sentSince)) {
			return false, nil
		}
		if !m.sentBefore.IsZero() && !day(sent).Before(day(m.sentBefore)) {
			return false, nil
		}
	}
	for _, h := range m.envelope {
		if !envelopeContains(&meta.Envelope, strings.ToLower(h.Key), strings.ToLower(h.Value)) {
			return false, nil
		}
	}
	for _, h := range m.headers {
		ok, err := msg.headerContains(h.Key, strings.ToLower(h.Value))
		if err != nil || !ok {
			return false, err
		}
	}
	if len(m.body) > 0 || len(m.text) > 0 {
		if err := msg.load(); err != nil {
			return false, err
		}
	}
	for _, b := range m.body {
		if !strings.Contains(msg.bodyText, b) {
			return false, nil
		}
	}
	for _, t := range m.text {
		if !strings.Contains(msg.headerText, t) && !strings.Contains(msg.bodyText, t) {
			return false, nil
		}
	}
	for _, sub := range m.not {
		ok, err := sub.match(msg)
		if err != nil || ok {
			return false, err
		}
	}
	for _, pair := range m.or {
		ok, err := pair[0].match(msg)
		if err != nil {
			return false, err
		}
		if !ok {
			if ok, err = pair[1].match(msg); err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

// envelopeContains searches an envelope field: a subject, or an address list shown as
// `Name <mailbox@host>` for each address.
func envelopeContains(env *store.Envelope, field, value string) bool {
	var addrs []store.Address
	switch field {
	case "subject":
		return strings.Contains(strings.ToLower(env.Subject), value)
	case "from":
		addrs = env.From
	case "to":
		addrs = env.To
	case "cc":
		addrs = env.Cc
	case "bcc":
		addrs = env.Bcc
	}
	if value == "" {
		return len(addrs) > 0
	}
	for _, a := range addrs {
		s := a.Name + " <" + a.Mailbox
		if a.Host != "" {
			s += "@" + a.Host
		}
		if strings.Contains(strings.ToLower(s+">"), value) {
			return true
		}
	}
	return false
}

// headerContains reports whether a header field named key contains value; an empty
// value matches any message that has the field (RFC 3501 §6.4.4 HEADER).
func (msg *searchMsg) headerContains(key, value string) (bool, error) {
	if err := msg.load(); err != nil {
		return false, err
	}
	for _, f := range msg.header {
		if strings.EqualFold(f.Key, key) && strings.Contains(f.Value, value) {
			return true, nil
		}
	}
	return false, nil
}

// textBatch loads the searchable text of a batch's messages a window at a time, when the
// first of them needs it: keys that need no text (flags, dates, sizes) still rule a message
// out without any text being read, and a text search costs one query per window instead
// of one per message. A window holds messages whose sizes add up to textWindowBytes at
// most (header and decoded text are no larger than the message, and the store keeps at
// most store.SearchTextMax of each), so a search holds no more than that at once.
type textBatch struct {
	refs  []msgRef
	sizes map[uint32]int64 // message sizes, from the batch's rows
	data  map[uint32]*store.SearchData
}

var textWindowBytes int64 = 8 << 20 // a variable so that tests can make windows small

func (b *textBatch) get(s *session, mailboxID int64, uid uint32) (*store.SearchData, error) {
	if d, ok := b.data[uid]; ok {
		return d, nil
	}
	start := 0
	for start < len(b.refs) && b.refs[start].uid != uid {
		start++
	}
	var uids []uint32
	var total int64
	for _, r := range b.refs[min(start, len(b.refs)):] {
		size := min(b.sizes[r.uid], 2*store.SearchTextMax)
		if len(uids) > 0 && total+size > textWindowBytes {
			break
		}
		uids = append(uids, r.uid)
		total += size
	}
	if len(uids) == 0 {
		return nil, nil
	}
	list, err := s.st.SearchData(s.ctx, mailboxID, uidRanges(uids)...)
	if err != nil {
		return nil, err
	}
	b.data = make(map[uint32]*store.SearchData, len(uids)) // the previous window goes
	for _, u := range uids {
		b.data[u] = nil // expunged meanwhile unless found below
	}
	for i := range list {
		b.data[list[i].UID] = &list[i]
	}
	return b.data[uid], nil
}

// load reads the message's searchable text, kept by the store since delivery: the raw
// top-level header (decoded here) and the decoded text of its text parts.
func (msg *searchMsg) load() error {
	if msg.loaded {
		return nil
	}
	msg.loaded = true
	data, err := msg.batch.get(msg.s, msg.mbox, msg.ref.uid)
	if err != nil {
		return msg.s.storeError(err, "searching")
	}
	if data == nil {
		return nil // expunged meanwhile: nothing matches
	}
	msg.bodyText = strings.ToLower(data.Text)
	msg.header = store.SearchHeader(data.Header)
	msg.headerText = store.SearchHeaderText(msg.header)
	return nil
}

// --- the commands of this file (command.go has the table)

// SEARCH and UID SEARCH (RFC 3501 §6.4.4): SEARCH, or ESEARCH (RFC 4731) when RETURN was
// given or the client speaks IMAP4rev2 (RFC 9051 §7.3.4).
func handleSearch(s *session, cmd *command) error {
	a := cmd.args.(*searchArgs)
	if a.modSeq { // CONDSTORE-enabling (RFC 7162 §3.1)
		if err := s.enableCondStore(); err != nil {
			return err
		}
	}
	if err := checkPartial(a); err != nil {
		return err
	}
	kind := numKindSeq
	if a.uid {
		kind = numKindUID
	}
	data, err := s.Search(kind, &a.criteria, &a.options)
	if err != nil {
		return err
	}
	savePartial(s, a) // partial.go
	if a.update {     // RFC 5267 §4.3 (context.go)
		if err := s.addSearchContext(cmd.tag, a, data); err != nil {
			return err
		}
	}
	w := s.out
	if !a.esearch && !s.enabled.Has(imap.CapIMAP4rev2) {
		w.raw("* SEARCH")
		if a.uid {
			for _, uid := range data.AllUIDs() {
				w.sp().number(uint32(uid))
			}
		} else {
			for _, n := range data.AllSeqNums() {
				w.sp().number(n)
			}
		}
		if a.modSeq && data.Count > 0 {
			w.raw(" (MODSEQ ").modSeq(data.ModSeq).raw(")") // RFC 7162 §3.1.5
		}
		w.crlf()
		return nil
	}
	o := a.options
	if !a.esearch {
		o = imap.SearchOptions{ReturnAll: true}
	}
	if o.ReturnSave && !o.ReturnMin && !o.ReturnMax && !o.ReturnAll && !o.ReturnCount && a.partial == nil {
		return nil // RFC 5182 §2.4: SAVE alone has no ESEARCH response
	}
	w.raw("* ESEARCH (TAG ").quoted(cmd.tag).raw(")")
	if a.uid {
		w.raw(" UID")
	}
	if o.ReturnAll && data.Count > 0 {
		w.raw(" ALL ").numSet(data.All)
	}
	if a.partial != nil {
		writePartial(w, a.partial, data.All)
	}
	if o.ReturnMin && data.Count > 0 {
		w.raw(" MIN ").number(data.Min)
	}
	if o.ReturnMax && data.Count > 0 {
		w.raw(" MAX ").number(data.Max)
	}
	if o.ReturnCount {
		w.raw(" COUNT ").number(data.Count)
	}
	if a.modSeq && data.Count > 0 {
		w.raw(" MODSEQ ").modSeq(data.ModSeq) // RFC 7162 §3.1.5
	}
	w.crlf()
	return nil
}
