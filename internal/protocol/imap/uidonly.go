package imap

import (
	"github.com/emersion/go-imap/v2"
)

// UIDONLY (RFC 9586): once the client has sent ENABLE UIDONLY, the session speaks in
// UIDs only. Commands that take message sequence numbers are refused with
// BAD [UIDREQUIRED]: FETCH, STORE, SEARCH, COPY, MOVE, and SORT and THREAD, whose
// non-UID forms answer in sequence numbers; so are sequence-number search keys in
// UID SEARCH, UID SORT and UID THREAD, and QRESYNC's seq-match-data in SELECT/EXAMINE.
// What the server would have sent as "* n FETCH (...)" it sends as "* uid UIDFETCH (...)"
// (FETCH, STORE, unsolicited flag changes, IDLE's, SELECT QRESYNC's), with a UID item only
// when the client asked for it, and expunges are reported with VANISHED, never EXPUNGE,
// QRESYNC or not. EXISTS stays: it counts messages, it does not number them.
//
// The wire format lives on the response writer (responseWriter.uidOnly, set at ENABLE
// like its utf8), so every writer of FETCH responses honours it.

// codeUIDRequired is RFC 9586's response code.
const codeUIDRequired imap.ResponseCode = "UIDREQUIRED"

// uidOnly says UIDONLY is enabled.
func (s *session) uidOnly() bool { return s.enabled.Has(imap.CapUIDOnly) }

var errUIDRequired = &imap.Error{Type: imap.StatusResponseTypeBad, Code: codeUIDRequired,
	Text: "UIDONLY is enabled: message sequence numbers are not allowed"}

// seqCommand wraps the handler of a command that takes or answers in sequence numbers:
// with UIDONLY it is refused.
func seqCommand(h func(*session, *command) error) func(*session, *command) error {
	return func(s *session, cmd *command) error {
		if s.uidOnly() {
			return errUIDRequired
		}
		return h(s, cmd)
	}
}

// uidCommand wraps the handler of a UID command (and SELECT/EXAMINE): with UIDONLY, its
// arguments may not hold sequence numbers (search keys, seq-match-data).
func uidCommand(h func(*session, *command) error) func(*session, *command) error {
	return func(s *session, cmd *command) error {
		if s.uidOnly() && argsHaveSeqNums(cmd.args) {
			return errUIDRequired
		}
		return h(s, cmd)
	}
}

// argsHaveSeqNums reports whether parsed arguments name messages by sequence number.
func argsHaveSeqNums(args any) bool {
	switch a := args.(type) {
	case *searchArgs:
		return criteriaHaveSeqNums(&a.criteria)
	case *sortArgs:
		return criteriaHaveSeqNums(&a.search.criteria)
	case *threadArgs:
		return criteriaHaveSeqNums(&a.search.criteria)
	case *selectArgs:
		return a.qresync != nil && a.qresync.seqMatch != nil
	}
	return false
}

// criteriaHaveSeqNums reports whether a search program has a sequence-set key anywhere,
// under NOT and OR too.
func criteriaHaveSeqNums(c *imap.SearchCriteria) bool {
	if len(c.SeqNum) > 0 {
		return true
	}
	for i := range c.Not {
		if criteriaHaveSeqNums(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if criteriaHaveSeqNums(&c.Or[i][0]) || criteriaHaveSeqNums(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// writeFetchStart writes the start of a FETCH response of message ref: "* seq FETCH (",
// or with UIDONLY "* uid UIDFETCH (" (RFC 9586).
func (w *responseWriter) writeFetchStart(ref msgRef) *responseWriter {
	if w.uidOnly {
		return w.raw("* ").number(ref.uid).raw(" UIDFETCH (")
	}
	return w.raw("* ").number(ref.seq).raw(" FETCH (")
}
