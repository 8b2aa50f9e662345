package threading

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Criterion is one sort criterion of RFC 5256 §3 or RFC 5957 §3.
type Criterion uint8

const (
	// Arrival: INTERNALDATE.
	Arrival Criterion = iota + 1
	// Cc: addr-mailbox of the first Cc address.
	Cc
	// Date: the sent date (RFC 5256 §2.2).
	Date
	// From: addr-mailbox of the first From address.
	From
	// Size: RFC822.SIZE.
	Size
	// Subject: the base subject (RFC 5256 §2.1).
	Subject
	// To: addr-mailbox of the first To address.
	To
	// DisplayFrom: display name of the first From address, else its address (RFC 5957).
	DisplayFrom
	// DisplayTo: display name of the first To address, else its address (RFC 5957).
	DisplayTo
)

var criterionNames = [...]string{
	Arrival:     "ARRIVAL",
	Cc:          "CC",
	Date:        "DATE",
	From:        "FROM",
	Size:        "SIZE",
	Subject:     "SUBJECT",
	To:          "TO",
	DisplayFrom: "DISPLAYFROM",
	DisplayTo:   "DISPLAYTO",
}

// String returns the criterion's name on the wire, e.g. "DISPLAYFROM".
func (c Criterion) String() string {
	if int(c) < len(criterionNames) && criterionNames[c] != "" {
		return criterionNames[c]
	}
	return fmt.Sprintf("Criterion(%d)", uint8(c))
}

// ParseCriterion returns the criterion named name (case-insensitive: "date", "DisplayFrom").
// REVERSE is not a criterion but a SortKey's Reverse.
func ParseCriterion(name string) (Criterion, error) {
	for c, n := range criterionNames {
		if n != "" && strings.EqualFold(n, name) {
			return Criterion(c), nil
		}
	}
	return 0, fmt.Errorf("threading: unknown sort criterion %q", name)
}

// SortKey is one sort-key of a SORT command: a criterion, reversed when it was preceded
// by REVERSE (RFC 5256 §3: "REVERSE only reverses a single criterion, and does not affect
// the implicit "sequence number" sort criterion").
type SortKey struct {
	Criterion Criterion
	Reverse   bool
}

// sortColumn holds one sort key's values for every message, computed once.
type sortColumn struct {
	reverse bool
	dates   []sentDate // Arrival, Date
	sizes   []int64    // Size
	strs    []string   // the string criteria, folded by foldKeys
}

// Sort returns the indexes of msgs in the order keys says (RFC 5256 §3), so that
// msgs[result[0]] is the first message of the answer; the IMAP layer prints their Seq or
// UID. Messages equal under every key come in ascending Seq order (then in input order).
// An empty keys sorts by Seq alone. It returns an error for an unknown criterion.
//
// It is O(n log n) and computes each key of each message once (a base subject, a display
// name) before sorting.
func Sort(msgs []Message, keys []SortKey) ([]int, error) {
	cols := make([]sortColumn, len(keys))
	for k, key := range keys {
		col := &cols[k]
		col.reverse = key.Reverse
		switch key.Criterion {
		case Arrival, Date:
			col.dates = make([]sentDate, len(msgs))
			for i := range msgs {
				if key.Criterion == Arrival {
					col.dates[i] = instant(msgs[i].InternalDate)
				} else {
					// RFC 5256 §3: DATE is the sent date (§2.2), INTERNALDATE when the
					// Date header is missing or unparseable.
					col.dates[i] = msgs[i].sent()
				}
			}
		case Size:
			col.sizes = make([]int64, len(msgs))
			for i := range msgs {
				col.sizes[i] = msgs[i].Size
			}
		case Cc, From, To, Subject, DisplayFrom, DisplayTo:
			col.strs = make([]string, len(msgs))
			for i := range msgs {
				col.strs[i] = keyString(&msgs[i], key.Criterion)
			}
			foldKeys(col.strs)
		default:
			return nil, fmt.Errorf("threading: sort key %d: unknown criterion %v", k, key.Criterion)
		}
	}

	if len(cols) == 1 && cols[0].strs == nil {
		return sortOneNumber(msgs, &cols[0]), nil
	}
	order := make([]int, len(msgs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		for k := range cols {
			col := &cols[k]
			var c int
			switch {
			case col.dates != nil:
				c = col.dates[a].compare(col.dates[b])
			case col.sizes != nil:
				c = cmp.Compare(col.sizes[a], col.sizes[b])
			default:
				// i;ascii-casemap on keys folded to upper case: i;octet.
				c = strings.Compare(col.strs[a], col.strs[b])
			}
			if c != 0 {
				if col.reverse {
					return -c
				}
				return c
			}
		}
		// RFC 5256 §3: "if two or more messages exactly match, the order is by
		// ascending sequence number".
		return compareSeq(msgs, a, b)
	})
	return order, nil
}

// keyString is m's key under a string criterion, before folding.
func keyString(m *Message, c Criterion) string {
	switch c {
	// RFC 5256 §3: "[IMAP] addr-mailbox of the first ... address".
	case Cc:
		return m.Cc.Mailbox
	case From:
		return m.From.Mailbox
	case To:
		return m.To.Mailbox
	case Subject:
		return BaseSubject(m.Subject)
	// RFC 5957 §3: the display name of the first address, else its address.
	case DisplayFrom:
		return m.From.display()
	case DisplayTo:
		return m.To.display()
	}
	return ""
}

// Insert returns what Sort(msgs, keys) returns for the n messages msg(0)...msg(n-1), given
// prev, Sort's answer under the same keys for the first len(prev) of them (the same
// messages with the same sequence numbers). The messages after those are placed one at a
// time by binary search, so that k of them cost O(k log n) key computations and k copies
// of the order instead of a key for every message and a sort: this is how a kept SORT
// answer follows the messages that arrived since, which come last in a mailbox. prev is
// not changed. The answer is exactly Sort's: both order by the keys, then ascending Seq,
// then index.
func Insert(prev []int, n int, msg func(i int) Message, keys []SortKey) ([]int, error) {
	for k, key := range keys {
		if key.Criterion < Arrival || key.Criterion > DisplayTo {
			return nil, fmt.Errorf("threading: sort key %d: unknown criterion %v", k, key.Criterion)
		}
	}
	order := make([]int, len(prev), n)
	copy(order, prev)
	for i := len(prev); i < n; i++ {
		m := msg(i)
		vals := make([]sortValue, len(keys))
		for k, key := range keys {
			vals[k] = valueOf(&m, key.Criterion)
		}
		// The first message of the order that sorts after message i is where it goes;
		// none sorts equal, since ties go by Seq and index.
		at, _ := slices.BinarySearchFunc(order, i, func(j, _ int) int {
			o := msg(j)
			for k, key := range keys {
				c := valueOf(&o, key.Criterion).compare(vals[k])
				if c != 0 {
					if key.Reverse {
						return -c
					}
					return c
				}
			}
			if o.Seq != m.Seq {
				return cmp.Compare(o.Seq, m.Seq)
			}
			return cmp.Compare(j, i)
		})
		order = slices.Insert(order, at, i)
	}
	return order, nil
}

// sortValue is one message's key under one criterion: a date, a size or a folded string.
type sortValue struct {
	date sentDate
	size int64
	str  string
}

func valueOf(m *Message, c Criterion) sortValue {
	switch c {
	case Arrival:
		return sortValue{date: instant(m.InternalDate)}
	case Date:
		return sortValue{date: m.sent()}
	case Size:
		return sortValue{size: m.Size}
	}
	strs := []string{keyString(m, c)}
	foldKeys(strs)
	return sortValue{str: strs[0]}
}

// compare orders two values of the same criterion as Sort's comparator does.
func (a sortValue) compare(b sortValue) int {
	if c := a.date.compare(b.date); c != 0 {
		return c
	}
	if c := cmp.Compare(a.size, b.size); c != 0 {
		return c
	}
	return strings.Compare(a.str, b.str)
}

// compareSeq orders msgs[a] and msgs[b] by ascending sequence number, then by index.
func compareSeq(msgs []Message, a, b int) int {
	if c := cmp.Compare(msgs[a].Seq, msgs[b].Seq); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// numKey is one message's key under a single date or size criterion, with what breaks
// ties, laid out together so that the sort compares without indirection.
type numKey struct {
	hi  int64  // seconds, or the size
	lo  int32  // nanoseconds (dates)
	seq uint32 // RFC 5256 §3: ties go by ascending sequence number...
	idx int    // ... then by input order
}

// sortOneNumber is Sort for one date or size key (SORT (DATE), SORT (REVERSE ARRIVAL),
// SORT (SIZE)), the common case, without the general comparator's per-key dispatch.
func sortOneNumber(msgs []Message, col *sortColumn) []int {
	keys := make([]numKey, len(msgs))
	for i := range msgs {
		k := numKey{seq: msgs[i].Seq, idx: i}
		if col.dates != nil {
			k.hi, k.lo = col.dates[i].sec, col.dates[i].nsec
		} else {
			k.hi = col.sizes[i]
		}
		if col.reverse { // REVERSE reverses the key, not the sequence-number tie-break
			k.hi, k.lo = -k.hi, -k.lo
		}
		keys[i] = k
	}
	cmp := func(a, b numKey) int {
		switch {
		case a.hi != b.hi:
			return cmp.Compare(a.hi, b.hi)
		case a.lo != b.lo:
			return cmp.Compare(a.lo, b.lo)
		case a.seq != b.seq:
			return cmp.Compare(a.seq, b.seq)
		}
		return cmp.Compare(a.idx, b.idx)
	}
	// A mailbox whose messages arrived in the key's order (SORT (DATE), SORT (ARRIVAL)
	// on mail delivered as it was sent) is answered by this one pass.
	if !slices.IsSortedFunc(keys, cmp) {
		slices.SortFunc(keys, cmp)
	}
	order := make([]int, len(keys))
	for i, k := range keys {
		order[i] = k.idx
	}
	return order
}
