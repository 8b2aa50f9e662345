package imap

import (
	"fmt"
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/threading"
)

// CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): RETURN (UPDATE) keeps a SEARCH or SORT
// result live. After every later change the client is told, the session reruns the
// search of each context and tells the client how the result changed with an unsolicited
// ESEARCH carrying the search's tag and ADDTO / REMOVEFROM items (§4.3), until the
// mailbox is deselected or CANCELUPDATE names the tag (§4.3.5). RETURN (CONTEXT) is a
// hint (§4.2), which we do not need.
//
// Positions (the first number of ADDTO and REMOVEFROM): for SEARCH, whose result has no
// order, 0; for SORT, the exact 1-based position in the sorted result, as the client
// applies the items one after the other (§4.3.2 to §4.3.4: ADDTO inserts the set's
// messages, in order, at that position; REMOVEFROM removes them from there).
//
// Refusals (§4.3.1): a context is refused with OK [NOUPDATE "tag"] beyond
// maxContexts per session, and for RETURN (UPDATE PARTIAL ...), whose window updates
// we do not keep (RFC 9394 §3.1 leaves that to the server). The command still answers.

// Capabilities of this file: CONTEXT=SEARCH comes with CANCELUPDATE (the command table).
const (
	capContextSearch imap.Cap = "CONTEXT=SEARCH"
	capContextSort   imap.Cap = "CONTEXT=SORT"
)

// maxContexts bounds the live contexts of a session: each is rerun after every change.
const maxContexts = 8

// searchContext is one live result.
type searchContext struct {
	tag    string
	search searchArgs          // uid, criteria
	keys   []threading.SortKey // SORT's keys; nil for SEARCH
	result []uint32            // UIDs: ascending for SEARCH, in sort order for SORT
	modseq int64               // v.modseq when result was computed
	n      int                 // len(v.uids) then
}

// addContext makes the result of the command tag a live context (or refuses it, setting
// the NOUPDATE code on the tagged OK). uids is the result, as UIDs, in its order.
func (s *session) addContext(tag string, a *searchArgs, keys []threading.SortKey, uids []uint32) error {
	v, err := s.lockSelected()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	v.contexts = slices.DeleteFunc(v.contexts, func(c *searchContext) bool { return c.tag == tag })
	if a.partial != nil || len(v.contexts) >= maxContexts {
		s.ok(imap.ResponseCode(fmt.Sprintf("NOUPDATE %q", tag)), "Results are not updated")
		return nil
	}
	v.contexts = append(v.contexts, &searchContext{
		tag: tag, search: *a, keys: keys, result: uids, modseq: v.modseq, n: len(v.uids),
	})
	return nil
}

// seqsToUIDs turns a search's sequence numbers into the view's UIDs.
func (v *selected) seqsToUIDs(seqs []uint32) []uint32 {
	out := make([]uint32, 0, len(seqs))
	for _, n := range seqs {
		if n >= 1 && int(n) <= len(v.uids) {
			out = append(out, v.uids[n-1])
		}
	}
	return out
}

// contextsExpunged tells the contexts' clients which of their messages the expunge of
// set removes, before the EXPUNGE responses renumber the messages (RFC 5267 §4.3: the
// message numbers of REMOVEFROM are those the client knows when it reads it).
func (s *session) contextsExpunged(v *selected, set map[uint32]struct{}) {
	for _, c := range v.contexts {
		now := slices.DeleteFunc(slices.Clone(c.result), func(uid uint32) bool {
			_, ok := set[uid]
			return ok
		})
		if len(now) == len(c.result) {
			continue
		}
		items := setDiff(c.result, now)
		if c.keys != nil {
			items = orderedDiff(c.result, now)
		}
		c.result = now
		s.writeContextUpdate(v, c, items)
	}
}

// contextItem is one ADDTO or REMOVEFROM of an update.
type contextItem struct {
	remove bool
	pos    int      // 0 for SEARCH
	uids   []uint32 // in result order
}

// updateContexts reruns the search of each context the change log moved past and tells
// the client the difference; it runs at the end of sync, the view up to date.
func (s *session) updateContexts(v *selected) error {
	for _, c := range v.contexts {
		if c.modseq == v.modseq && c.n == len(v.uids) {
			continue
		}
		now, err := s.contextResult(v, c)
		if err != nil {
			return err
		}
		var items []contextItem
		if c.keys == nil {
			items = setDiff(c.result, now)
		} else {
			items = orderedDiff(c.result, now)
		}
		c.result, c.modseq, c.n = now, v.modseq, len(v.uids)
		if len(items) > 0 {
			s.writeContextUpdate(v, c, items)
		}
	}
	return s.out.err
}

// contextResult reruns the context's search (and sort) on the view.
func (s *session) contextResult(v *selected, c *searchContext) ([]uint32, error) {
	if c.keys == nil {
		data, err := s.search(v, numKindUID, &c.search.criteria, &imap.SearchOptions{})
		if err != nil {
			return nil, err
		}
		out := make([]uint32, 0, data.Count)
		for _, uid := range data.AllUIDs() {
			out = append(out, uint32(uid))
		}
		return out, nil
	}
	msgs, err := s.sortMessagesOf(v, &c.search, sortFields(c.keys))
	if err != nil {
		return nil, err
	}
	order, err := threading.Sort(msgs, c.keys)
	if err != nil {
		return nil, err
	}
	out := make([]uint32, len(order))
	for i, j := range order {
		out[i] = msgs[j].UID
	}
	return out, nil
}

// setDiff is the update of an unordered (SEARCH) result: what left it, then what joined
// it, each as one item at position 0. old and now ascend.
func setDiff(old, now []uint32) []contextItem {
	var removed, added []uint32
	i, j := 0, 0
	for i < len(old) || j < len(now) {
		switch {
		case j == len(now) || i < len(old) && old[i] < now[j]:
			removed = append(removed, old[i])
			i++
		case i == len(old) || now[j] < old[i]:
			added = append(added, now[j])
			j++
		default:
			i++
			j++
		}
	}
	var items []contextItem
	if len(removed) > 0 {
		items = append(items, contextItem{remove: true, uids: removed})
	}
	if len(added) > 0 {
		items = append(items, contextItem{uids: added})
	}
	return items
}

// orderedDiff is the update of a sorted result: the runs that left it, each REMOVEFROM
// at its position in the list as the earlier items left it, then the runs that joined it,
// each ADDTO at its position in the new list, in ascending order, so that applying them
// one after the other turns old into now. Sort keys do not change, so the messages in
// both keep their relative order.
func orderedDiff(old, now []uint32) []contextItem {
	inNow := make(map[uint32]bool, len(now))
	for _, u := range now {
		inNow[u] = true
	}
	inOld := make(map[uint32]bool, len(old))
	for _, u := range old {
		inOld[u] = true
	}
	var items []contextItem
	removed := 0
	for i := 0; i < len(old); {
		if inNow[old[i]] {
			i++
			continue
		}
		j := i
		for j < len(old) && !inNow[old[j]] {
			j++
		}
		items = append(items, contextItem{remove: true, pos: i + 1 - removed, uids: old[i:j:j]})
		removed += j - i
		i = j
	}
	for i := 0; i < len(now); {
		if inOld[now[i]] {
			i++
			continue
		}
		j := i
		for j < len(now) && !inOld[now[j]] {
			j++
		}
		items = append(items, contextItem{pos: i + 1, uids: now[i:j:j]})
		i = j
	}
	return items
}

// writeContextUpdate writes * ESEARCH (TAG "tag") [UID] and the items (RFC 5267 §4.3,
// formal syntax: ret-data-addto, ret-data-removefrom), in message numbers for a SEARCH
// or SORT without UID.
func (s *session) writeContextUpdate(v *selected, c *searchContext, items []contextItem) {
	w := s.out
	w.raw("* ESEARCH (TAG ").quoted(c.tag).raw(")")
	if c.search.uid {
		w.raw(" UID")
	}
	for _, it := range items {
		nums := it.uids
		if !c.search.uid {
			// Every message of an item is in the view: those of REMOVEFROM until their
			// EXPUNGE is written, which follows (contextsExpunged).
			nums = make([]uint32, len(it.uids))
			for k, uid := range it.uids {
				i, _ := v.index(uid)
				nums[k] = uint32(i + 1)
			}
		}
		if it.remove {
			w.raw(" REMOVEFROM (")
		} else {
			w.raw(" ADDTO (")
		}
		w.raw(fmt.Sprint(it.pos)).sp()
		if c.keys == nil {
			var set imap.SeqSet
			set.AddNum(nums...)
			w.raw(set.String())
		} else {
			w.raw(orderedSet(nums))
		}
		w.raw(")")
	}
	w.crlf()
}

type cancelUpdateArgs struct{ tags []string }

// CANCELUPDATE SP tag-string *(SP tag-string) (RFC 5267, formal syntax), tag-string =
// string.
func parseCancelUpdate(r *commandReader) (any, error) {
	a := &cancelUpdateArgs{}
	for {
		if err := r.sp(); err != nil {
			return nil, err
		}
		t, err := r.string()
		if err != nil {
			return nil, err
		}
		a.tags = append(a.tags, t)
		if end, err := r.atEnd(); err != nil || end {
			return a, err
		}
	}
}

// CANCELUPDATE (RFC 5267 §4.3.5): the contexts of the
// tags stop being updated. A tag naming no live context is a client error.
func handleCancelUpdate(s *session, cmd *command) error {
	a := cmd.args.(*cancelUpdateArgs)
	v, err := s.lockSelected()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, t := range a.tags {
		i := slices.IndexFunc(v.contexts, func(c *searchContext) bool { return c.tag == t })
		if i < 0 {
			return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "No live search has the tag " + truncate(t, 32)}
		}
		v.contexts = slices.Delete(v.contexts, i, i+1)
	}
	return nil
}

// addSearchContext is addContext for a SEARCH's answer.
func (s *session) addSearchContext(tag string, a *searchArgs, data *imap.SearchData) error {
	var uids []uint32
	if a.uid {
		for _, u := range data.AllUIDs() {
			uids = append(uids, uint32(u))
		}
		return s.addContext(tag, a, nil, uids)
	}
	if err := s.lock(); err != nil {
		return err
	}
	if s.sel != nil {
		uids = s.sel.seqsToUIDs(data.AllSeqNums())
	}
	s.mu.Unlock()
	return s.addContext(tag, a, nil, uids)
}
