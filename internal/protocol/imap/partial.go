package imap

import (
	"strconv"

	"github.com/emersion/go-imap/v2"
)

// partialRange is the range of RETURN (PARTIAL first:last) (RFC 9394 §3.1): positions in
// the list of matching messages, 1 the first, or with negative numbers counted from the
// end, -1 the last. first has the smaller magnitude.
type partialRange struct {
	first, last int64
}

// String is the range as the ESEARCH answer repeats it.
func (p partialRange) String() string {
	return strconv.FormatInt(p.first, 10) + ":" + strconv.FormatInt(p.last, 10)
}

// partialRange reads partial-range = partial-range-first / partial-range-last;
// partial-range-first = nz-number ":" nz-number; partial-range-last = MINUS nz-number ":"
// MINUS nz-number (RFC 9394, formal syntax). 500:400 is 400:500, and -1:-100 is -100:-1.
func (r *commandReader) partialRange() (*partialRange, error) {
	neg, err := r.maybe('-')
	if err != nil {
		return nil, err
	}
	a, err := r.nzNumber()
	if err != nil {
		return nil, err
	}
	if err := r.expect(':', "':' in the PARTIAL range"); err != nil {
		return nil, err
	}
	if neg {
		if err := r.expect('-', "'-' for the end of a negative PARTIAL range"); err != nil {
			return nil, err
		}
	}
	b, err := r.nzNumber()
	if err != nil {
		return nil, err
	}
	p := &partialRange{first: int64(min(a, b)), last: int64(max(a, b))}
	if neg {
		p.first, p.last = -p.first, -p.last
	}
	return p, nil
}

// searchReturnExt reads the RETURN options of extensions (the option already read); ok
// is false for an option it does not know.
func (r *commandReader) searchReturnExt(a *searchArgs, opt string) (ok bool, err error) {
	switch opt {
	case "PARTIAL": // RFC 9394, formal syntax: search-return-opt =/ "PARTIAL" SP partial-range
		if err := r.sp(); err != nil {
			return true, err
		}
		a.partial, err = r.partialRange()
		return true, err
	case "UPDATE": // RFC 5267 §4.3 (context.go)
		a.update = true
		return true, nil
	case "CONTEXT": // RFC 5267 §4.2: a hint that the client may ask for updates or
		// partial results later; we keep nothing for it.
		return true, nil
	}
	return false, nil
}

// checkPartial refuses what RFC 9394 §3.1 forbids: PARTIAL with ALL, whose answer would
// be a superset of it.
func checkPartial(a *searchArgs) error {
	if a.partial != nil && a.options.ReturnAll {
		return badSyntax("PARTIAL and ALL cannot be combined")
	}
	return nil
}

// bounds are the 0-based, half-open indexes [lo, hi) the range selects of a list of n.
func (p partialRange) bounds(n int) (lo, hi int) {
	first, last := p.first, p.last // 1-based positions, inclusive
	if p.first < 0 {
		first, last = int64(n)+1+p.last, int64(n)+1+p.first
	}
	first = max(first, 1)
	last = min(last, int64(n))
	if first > last {
		return 0, 0
	}
	return int(first - 1), int(last)
}

// refs are the messages of the range among refs (in ascending order, as v.resolve gives
// them): FETCH's PARTIAL modifier (RFC 9394 §3.2) answers only those of the messages the
// set names that are at these positions.
func (p partialRange) refs(refs []msgRef) []msgRef {
	lo, hi := p.bounds(len(refs))
	return refs[lo:hi]
}

// savePartial makes what SEARCH RETURN (SAVE PARTIAL range) saved for "$" the messages
// the PARTIAL answer gives, as SAVE with MIN or MAX saves only those (RFC 5182 §2.4).
func savePartial(s *session, a *searchArgs) {
	if a.partial == nil || !a.options.ReturnSave || s.sel == nil {
		return
	}
	res := s.sel.searchRes // ascending UIDs: the order of the matches' positions
	lo, hi := a.partial.bounds(len(res))
	s.sel.searchRes = res[lo:hi:hi]
}

// writePartial writes " PARTIAL (range set)" of an ESEARCH answer: the matches at the
// positions of the range, in ascending order, or NIL when there are none there (RFC
// 9394 §3.1).
func writePartial(w *responseWriter, p *partialRange, all imap.NumSet) {
	var nums []uint32
	switch set := all.(type) {
	case imap.UIDSet:
		uids, _ := set.Nums()
		for _, u := range uids {
			nums = append(nums, uint32(u))
		}
	case imap.SeqSet:
		nums, _ = set.Nums()
	}
	lo, hi := p.bounds(len(nums))
	w.raw(" PARTIAL (").raw(p.String()).sp()
	if lo == hi {
		w.raw("NIL)")
		return
	}
	var out imap.SeqSet
	for _, num := range nums[lo:hi] {
		out.AddNum(num)
	}
	w.raw(out.String()).raw(")")
}
