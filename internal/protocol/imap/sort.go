package imap

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/internal/threading"
)

// SORT (RFC 5256 §3), ESORT (RFC 5267 §3), SORT=DISPLAY (RFC 5957) and THREAD (RFC 5256
// §4). Both run the command's search first (search.go), then read what the sort keys and
// threading algorithms need of the matches in one store query (store.SortData: the
// message rows' dates and sizes and the sort keys stored at delivery: sent date, subject
// and, for THREAD=REFERENCES, Message-ID, In-Reply-To and References; the envelope only
// for the address criteria), and leave the algorithms to internal/threading.

// Capabilities of this file that bring no command of their own.
const (
	capThreadOrderedSubject imap.Cap = "THREAD=ORDEREDSUBJECT"
	capESort                imap.Cap = "ESORT"
	capThreadReferences     imap.Cap = "THREAD=REFERENCES"
)

type sortArgs struct {
	keys   []threading.SortKey
	search searchArgs // uid, charset, criteria, and RETURN (ESORT) in esearch and options
}

type threadArgs struct {
	algorithm string // upper case: ORDEREDSUBJECT or REFERENCES
	search    searchArgs
}

// ["UID" SP] "SORT" [SP "RETURN" SP "(" [sort-return-opt *(SP sort-return-opt)] ")"]
// SP "(" sort-criterion *(SP sort-criterion) ")" SP search-charset 1*(SP search-key)
// (RFC 5256 §5, RFC 5267 §3).
func parseSort(uid bool) func(*commandReader) (any, error) {
	return func(r *commandReader) (any, error) {
		a := &sortArgs{search: searchArgs{uid: uid}}
		if err := r.sp(); err != nil {
			return nil, err
		}
		kw, err := r.peekKeyword()
		if err != nil {
			return nil, err
		}
		if kw == "RETURN" {
			r.keyword()
			if err := r.sp(); err != nil {
				return nil, err
			}
			if err := r.sortReturn(&a.search); err != nil {
				return nil, err
			}
			if err := r.sp(); err != nil {
				return nil, err
			}
		}
		if err := r.list(false, func() error {
			key, err := r.keyword()
			if err != nil {
				return err
			}
			var k threading.SortKey
			if key == "REVERSE" {
				k.Reverse = true
				if err := r.sp(); err != nil {
					return err
				}
				if key, err = r.keyword(); err != nil {
					return err
				}
			}
			if k.Criterion, err = threading.ParseCriterion(key); err != nil {
				return badSyntax("Unknown sort criterion %s", truncate(key, 32))
			}
			a.keys = append(a.keys, k)
			return nil
		}); err != nil {
			return nil, err
		}
		if err := r.sp(); err != nil {
			return nil, err
		}
		if err := r.charsetAndKeys(&a.search); err != nil {
			return nil, err
		}
		return a, nil
	}
}

// sortReturn reads ESORT's return options: those of ESEARCH but SAVE (RFC 5267 §3), and
// CONTEXT=SORT's PARTIAL, UPDATE and CONTEXT (RFC 5267 §4, RFC 9394 §3.1). RETURN () is
// RETURN (ALL), as for SEARCH.
func (r *commandReader) sortReturn(a *searchArgs) error {
	a.esearch = true
	if err := r.list(true, func() error {
		opt, err := r.keyword()
		if err != nil {
			return err
		}
		if !a.returnOption(opt) {
			if ok, err := r.searchReturnExt(a, opt); ok { // partial.go
				return err
			}
			return badSyntax("Unknown SORT return option %s", truncate(opt, 32))
		}
		return nil
	}); err != nil {
		return err
	}
	if o := a.options; !o.ReturnMin && !o.ReturnMax && !o.ReturnAll && !o.ReturnCount && a.partial == nil && !a.update {
		a.options.ReturnAll = true
	}
	return nil
}

// ["UID" SP] "THREAD" SP thread-alg SP search-charset 1*(SP search-key) (RFC 5256 §5).
func parseThread(uid bool) func(*commandReader) (any, error) {
	return func(r *commandReader) (any, error) {
		a := &threadArgs{search: searchArgs{uid: uid}}
		if err := r.sp(); err != nil {
			return nil, err
		}
		alg, err := r.keyword()
		if err != nil {
			return nil, err
		}
		if alg != "ORDEREDSUBJECT" && alg != "REFERENCES" {
			return nil, badSyntax("Unknown threading algorithm %s", truncate(alg, 32))
		}
		a.algorithm = alg
		if err := r.sp(); err != nil {
			return nil, err
		}
		if err := r.charsetAndKeys(&a.search); err != nil {
			return nil, err
		}
		return a, nil
	}
}

// charsetAndKeys reads search-charset 1*(SP search-key): unlike SEARCH's, SORT's and
// THREAD's charset is not optional (RFC 5256 §5).
func (r *commandReader) charsetAndKeys(a *searchArgs) error {
	cs, err := r.astring()
	if err != nil {
		return err
	}
	a.charset = strings.ToUpper(cs)
	if a.charset != "UTF-8" && a.charset != "US-ASCII" {
		// RFC 5256 §3: NO [BADCHARSET] as for SEARCH (RFC 3501 §6.4.4).
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "BADCHARSET (US-ASCII UTF-8)", Text: "Unsupported charset"}
	}
	if err := r.sp(); err != nil {
		return err
	}
	for {
		if err := r.searchKey(&a.criteria, a); err != nil {
			return err
		}
		if sp, err := r.maybe(' '); err != nil || !sp {
			return err
		}
	}
}

// sortFields is what SortData must read for keys beyond the dates and the size.
func sortFields(keys []threading.SortKey) store.SortFields {
	var f store.SortFields
	for _, k := range keys {
		switch k.Criterion {
		case threading.Subject:
			f |= store.SortSubject
		case threading.From, threading.To, threading.Cc, threading.DisplayFrom, threading.DisplayTo:
			f |= store.SortAddresses
		}
	}
	return f
}

// sortMessages runs the search of a and returns the matches as threading.Messages, in
// sequence-number order, with what fields says of them read (store.SortData).
func (s *session) sortMessages(a *searchArgs, fields store.SortFields) ([]threading.Message, error) {
	if a.modSeq { // CONDSTORE-enabling, as in SEARCH (RFC 7162 §3.1); the search applies it
		if err := s.enableCondStore(); err != nil {
			return nil, err
		}
	}
	v, err := s.lockSelected()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.sortMessagesOf(v, a, fields)
}

// sortMessagesOf is sortMessages with the session locked and v its selected mailbox
// (context.go reruns SORT contexts with it).
func (s *session) sortMessagesOf(v *selected, a *searchArgs, fields store.SortFields) ([]threading.Message, error) {
	var matched []uint32
	if !reflect.ValueOf(a.criteria).IsZero() {
		data, err := s.search(v, numKindUID, &a.criteria, &imap.SearchOptions{})
		if err != nil {
			return nil, err
		}
		matched = make([]uint32, 0, data.Count)
		for _, uid := range data.AllUIDs() {
			matched = append(matched, uint32(uid))
		}
	}
	if reflect.ValueOf(a.criteria).IsZero() {
		// ALL, the usual criteria of SORT and THREAD: every message of the view, without
		// the search's read of the message rows.
		matched = make([]uint32, 0, len(v.uids))
		for _, uid := range v.uids {
			if !v.isGone(uid) {
				matched = append(matched, uid)
			}
		}
	}
	if len(matched) == 0 {
		return nil, nil
	}
	rows, err := s.st.SortData(s.ctx, v.mbox.ID, fields, uidRanges(matched)...)
	if err != nil {
		return nil, s.storeError(err, "sorting")
	}
	msgs := make([]threading.Message, 0, len(rows))
	for i := range rows {
		seq, ok := slices.BinarySearch(v.uids, rows[i].UID)
		if !ok {
			continue // arrived after the view was last brought up to date
		}
		msgs = append(msgs, sortMessage(&rows[i], uint32(seq+1)))
	}
	return msgs, nil
}

// sortMessage is the threading.Message of a row with sequence number seq.
func sortMessage(row *store.SortRow, seq uint32) threading.Message {
	env := row.Envelope
	if env == nil {
		env = &store.Envelope{}
	}
	m := threading.Message{
		Seq:          seq,
		UID:          row.UID,
		InternalDate: row.InternalDate,
		Date:         row.SentDate,
		Subject:      row.Subject,
		From:         firstAddress(env.From),
		To:           firstAddress(env.To),
		Cc:           firstAddress(env.Cc),
		Size:         row.Size,
		MessageID:    row.MessageID,
	}
	if row.InReplyTo != "" {
		m.InReplyTo = []string{row.InReplyTo}
	}
	if row.References != "" {
		m.References = mailmsg.ParseMessageIDs(row.References)
	}
	return m
}

// wholeView returns the sort cache's snapshot of the selected mailbox (store.SortSnapshot)
// when a's search is ALL, fields needs nothing the cache lacks (the envelope), and the
// view is exactly the mailbox as the store holds it now: the same UIDs in the same order
// and no expunge pending. Then row i of the snapshot is message i+1 of the view, and an
// answer computed from the rows alone (SORT's order, THREAD's threads) can be kept for the
// next session that asks with nothing changed (SortSnapshot.Memo). Otherwise nil: the
// caller takes the general path (sortMessagesOf).
func (s *session) wholeView(a *searchArgs, fields store.SortFields) (*store.SortSnapshot, error) {
	if !reflect.ValueOf(a.criteria).IsZero() || fields&store.SortAddresses != 0 {
		return nil, nil // (the MODSEQ criterion, CONDSTORE-enabling, is not ALL)
	}
	v, err := s.lockSelected()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if len(v.gone) > 0 || len(v.uids) == 0 {
		return nil, nil
	}
	sn, err := s.st.SortSnapshot(s.ctx, v.mbox.ID)
	if err != nil {
		return nil, s.storeError(err, "sorting")
	}
	if sn == nil || len(sn.Rows) != len(v.uids) {
		return nil, nil
	}
	for i := range sn.Rows {
		if sn.Rows[i].UID != v.uids[i] {
			return nil, nil
		}
	}
	return sn, nil
}

// snapshotMessages is the threading.Messages of a whole-view snapshot: message i is row i,
// sequence number i+1, with what fields asks for (snapshotMessage).
func snapshotMessages(sn *store.SortSnapshot, fields store.SortFields) []threading.Message {
	msgs := make([]threading.Message, len(sn.Rows))
	for i := range sn.Rows {
		msgs[i] = snapshotMessage(sn, fields, i)
	}
	return msgs
}

// snapshotMessage is message i of a whole-view snapshot: row i, sequence number i+1, with
// what fields asks for (the cached rows have every key; only THREAD=REFERENCES needs the
// message ids, whose References are parsed here).
func snapshotMessage(sn *store.SortSnapshot, fields store.SortFields, i int) threading.Message {
	row := sn.Rows[i]
	if fields&store.SortThreading == 0 {
		row.MessageID, row.InReplyTo, row.References = "", "", ""
		if fields&store.SortSubject == 0 {
			row.Subject = ""
		}
	}
	return sortMessage(&row, uint32(i+1))
}

// keptOrder is a kept SORT order of prevN messages (UIDs prevUID(0..prevN-1), ascending)
// as indexes into the snapshot's rows: the messages gone since are left out. Those still
// there are the first rows of the snapshot (the others arrived since, with higher UIDs),
// and their order among themselves is still SORT's: neither their keys nor the order of
// their sequence numbers changed. The result may be order itself: read only.
func keptOrder(sn *store.SortSnapshot, order []int, prevN int, prevUID func(int) uint32) []int {
	rows := sn.Rows
	if prevN == 0 || prevN <= len(rows) && rows[prevN-1].UID == prevUID(prevN-1) {
		// The first prevN rows are the prevN messages: every row up to that UID was one
		// of them, and there are as many.
		return order
	}
	newIndex := make([]int, prevN) // -1: gone
	j := 0
	for i := range prevN {
		uid := prevUID(i)
		for j < len(rows) && rows[j].UID < uid {
			j++
		}
		newIndex[i] = -1
		if j < len(rows) && rows[j].UID == uid {
			newIndex[i] = j
		}
	}
	out := make([]int, 0, len(order))
	for _, i := range order {
		if k := newIndex[i]; k >= 0 {
			out = append(out, k)
		}
	}
	return out
}

// sortInsertMax is the most arrivals a kept SORT answer takes by insertion
// (threading.Insert, each a copy of the order); past it the mailbox is sorted again.
const sortInsertMax = 128

// sortOrder is a kept SORT answer: the indexes of the snapshot's rows in sort order.
type sortOrder struct {
	order []int
	err   error
}

// memoKey names a sort's criteria among a mailbox's kept answers.
func sortMemoKey(keys []threading.SortKey) string {
	var b strings.Builder
	b.WriteString("SORT")
	for _, k := range keys {
		b.WriteByte(' ')
		if k.Reverse {
			b.WriteString("REVERSE ")
		}
		b.WriteString(k.Criterion.String())
	}
	return b.String()
}

// firstAddress is the first address of an ENVELOPE list, as SORT compares it (RFC 5256
// §3): for a group, its start (the group name as the mailbox, no host).
func firstAddress(list []store.Address) threading.Address {
	if len(list) == 0 {
		return threading.Address{}
	}
	return threading.Address{Name: list[0].Name, Mailbox: list[0].Mailbox, Host: list[0].Host}
}

// --- the commands of this file (command.go has the table)

// SORT and UID SORT (RFC 5256 §3): "* SORT" and the numbers in sort order; with RETURN
// (ESORT, RFC 5267 §3) an ESEARCH response whose MIN and MAX are the first and last in
// sort order and whose ALL keeps that order.
func handleSort(s *session, cmd *command) error {
	a := cmd.args.(*sortArgs)
	if err := checkPartial(&a.search); err != nil {
		return err
	}
	var nums, uids []uint32
	sn, err := s.wholeView(&a.search, sortFields(a.keys))
	if err != nil {
		return err
	}
	if sn != nil {
		// The whole mailbox: the order of its rows, kept from the last SORT with these
		// criteria if nothing arrived or went since.
		fields := sortFields(a.keys)
		got := sn.Memo(sortMemoKey(a.keys), func(prev any, prevN int, prevUID func(int) uint32) any {
			if kept, ok := prev.(*sortOrder); ok && kept.err == nil {
				// Messages went or came since the answer kept: those still there keep
				// their order, and those that arrived take their places in it.
				if order := keptOrder(sn, kept.order, prevN, prevUID); len(sn.Rows)-len(order) <= sortInsertMax {
					order, err := threading.Insert(order, len(sn.Rows), func(i int) threading.Message {
						return snapshotMessage(sn, fields, i)
					}, a.keys)
					return &sortOrder{order: order, err: err}
				}
			}
			order, err := threading.Sort(snapshotMessages(sn, fields), a.keys)
			return &sortOrder{order: order, err: err}
		}).(*sortOrder)
		if got.err != nil {
			return &imap.Error{Type: imap.StatusResponseTypeBad, Text: got.err.Error()}
		}
		nums = make([]uint32, len(got.order))
		uids = make([]uint32, len(got.order))
		for i, j := range got.order {
			nums[i], uids[i] = uint32(j+1), sn.Rows[j].UID
			if a.search.uid {
				nums[i] = uids[i]
			}
		}
	} else {
		msgs, err := s.sortMessages(&a.search, sortFields(a.keys))
		if err != nil {
			return err
		}
		order, err := threading.Sort(msgs, a.keys)
		if err != nil {
			return &imap.Error{Type: imap.StatusResponseTypeBad, Text: err.Error()}
		}
		nums = make([]uint32, len(order))
		uids = make([]uint32, len(order))
		for i, j := range order {
			nums[i], uids[i] = msgs[j].Seq, msgs[j].UID
			if a.search.uid {
				nums[i] = msgs[j].UID
			}
		}
	}
	if a.search.update { // RFC 5267 §4.3 (context.go)
		if err := s.addContext(cmd.tag, &a.search, a.keys, uids); err != nil {
			return err
		}
	}
	w := s.out
	if !a.search.esearch {
		w.raw("* SORT")
		for _, n := range nums {
			w.sp().number(n)
		}
		w.crlf()
		return nil
	}
	o := a.search.options
	w.raw("* ESEARCH (TAG ").quoted(cmd.tag).raw(")")
	if a.search.uid {
		w.raw(" UID")
	}
	if o.ReturnMin && len(nums) > 0 {
		w.raw(" MIN ").number(nums[0])
	}
	if o.ReturnMax && len(nums) > 0 {
		w.raw(" MAX ").number(nums[len(nums)-1])
	}
	if o.ReturnCount {
		w.raw(" COUNT ").number(uint32(len(nums)))
	}
	if o.ReturnAll && len(nums) > 0 {
		w.raw(" ALL ").raw(orderedSet(nums))
	}
	if p := a.search.partial; p != nil {
		// RFC 9394 §3.1 with RFC 5267 §4.4: the matches at the positions of the range
		// in sort order, kept in that order, or NIL.
		lo, hi := p.bounds(len(nums))
		w.raw(" PARTIAL (").raw(p.String()).sp()
		if lo == hi {
			w.raw("NIL)")
		} else {
			w.raw(orderedSet(nums[lo:hi])).raw(")")
		}
	}
	w.crlf()
	return nil
}

// orderedSet writes numbers as a sequence-set that keeps their order (RFC 5267 §3.1:
// ALL in the requested sort order): runs of ascending consecutive numbers become a:b.
func orderedSet(nums []uint32) string {
	var b strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(nums[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(nums[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}

// THREAD and UID THREAD (RFC 5256 §4): "* THREAD" and the threads, in the response
// syntax of RFC 5256 §5 (threading.Format).
func handleThread(s *session, cmd *command) error {
	a := cmd.args.(*threadArgs)
	fields := store.SortSubject // ORDEREDSUBJECT: the base subject and the sent date
	if a.algorithm == "REFERENCES" {
		fields = store.SortThreading
	}
	thread := func(msgs []threading.Message) []*threading.Thread {
		if a.algorithm == "REFERENCES" {
			return threading.References(msgs)
		}
		return threading.OrderedSubject(msgs)
	}
	sn, err := s.wholeView(&a.search, fields)
	if err != nil {
		return err
	}
	w := s.out
	if sn != nil {
		// The whole mailbox: the response's threads, kept from the last THREAD with this
		// algorithm and numbering if nothing arrived or went since.
		key := "THREAD " + a.algorithm
		if a.search.uid {
			key += " UID"
		}
		line := sn.Memo(key, func(any, int, func(int) uint32) any {
			msgs := snapshotMessages(sn, fields)
			id := func(i int) uint32 { return uint32(i + 1) }
			if a.search.uid {
				id = func(i int) uint32 { return msgs[i].UID }
			}
			return threading.AppendFormat(nil, thread(msgs), id)
		}).([]byte)
		w.raw("* THREAD")
		if len(line) > 0 {
			w.sp().rawBytes(line)
		}
		w.crlf()
		return nil
	}
	msgs, err := s.sortMessages(&a.search, fields)
	if err != nil {
		return err
	}
	threads := thread(msgs)
	id := func(i int) uint32 { return msgs[i].Seq }
	if a.search.uid {
		id = func(i int) uint32 { return msgs[i].UID }
	}
	w.raw("* THREAD")
	if len(threads) > 0 {
		w.sp().rawBytes(threading.AppendFormat(nil, threads, id))
	}
	w.crlf()
	return nil
}
