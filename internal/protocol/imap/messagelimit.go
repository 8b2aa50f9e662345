package imap

import (
	"fmt"
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// MESSAGELIMIT (RFC 9738): the server announces "MESSAGELIMIT=<n>" (§3, §5) and no single
// FETCH, SEARCH, STORE, COPY or MOVE (or UID form of these), no UID EXPUNGE and no
// (MULTI)APPEND handles more than n messages. Options.MessageLimit is n; 0 turns the
// extension off (nothing announced, nothing enforced). What a command over the limit
// gets, as §3.1 says:
//
//   - COPY, UID COPY: tagged NO [MESSAGELIMIT n uid] and nothing copied: COPY is atomic
//     (RFC 3501 §6.4.7). uid is the lowest UID of the n highest named messages, as the
//     §3.1 example (05 UID COPY) gives one.
//   - FETCH, STORE, MOVE (and their UID forms), UID EXPUNGE: the n messages of the set
//     with the highest UIDs are processed ("the server is REQUIRED to process messages
//     from highest to lowest UID"), and the tagged OK carries [MESSAGELIMIT n uid], uid
//     the lowest UID processed, so the client repeats the command for what lies below.
//     Sequence-number forms are handled the same way: the §3.1 example "03 FETCH
//     10000:14589" is one; the client renumbers before it repeats a STORE or MOVE.
//     The responses themselves still come out in ascending order (which messages are
//     processed is what the client's resumption depends on; IMAP does not order FETCH
//     responses), a documented reading of "from highest to lowest".
//   - UID EXPUNGE counts the \Deleted messages of its set, not the set (§3.1, second
//     MESSAGELIMIT paragraph); EXPUNGE, CLOSE and STATUS UNSEEN are never limited.
//   - SEARCH counts the messages searched, not those matched (§3.1, "04 UID SEARCH"): the
//     messages the sequence-set and UID keys at the top of the program name (all of the
//     mailbox without such a key). Over the limit, the n highest are searched, and with
//     SEARCHRES the $ saved holds only their matches (§3.4).
//   - FETCH with (PARTIAL range) (RFC 9394) whose range is wider than n: tagged
//     NO [MESSAGELIMIT n], nothing fetched (§3.1, "10 UID FETCH ... (PARTIAL -1:-1500)").
//   - APPEND of more than n messages (MULTIAPPEND, RFC 3502): tagged NO [MESSAGELIMIT n]
//     and nothing appended, MULTIAPPEND being atomic (§3.1, last paragraph).
//
// When the tagged OK already carries a code of its own (STORE UNCHANGEDSINCE's MODIFIED),
// MESSAGELIMIT goes in an untagged NO before it, as §3.1 says for EXPUNGEISSUED.
// SORT and THREAD are not limited (§3.3 only warns that such servers may be unable to
// run them); neither is the rerun of a CONTEXT=SEARCH update (context.go), which is the
// server's work, not a command's. SAVELIMIT (a server that limits only COPY and APPEND)
// is not announced: MESSAGELIMIT covers both.

// codeMessageLimit is RFC 9738's response code.
const codeMessageLimit imap.ResponseCode = "MESSAGELIMIT"

// limitHit records that the running command was cut to the limit: lowest is the lowest
// UID it processed.
type limitHit struct{ lowest uint32 }

// messageLimit is the announced limit, 0 when the extension is off.
func (s *session) messageLimit() int { return s.srv.opts.MessageLimit }

// messageLimitCap is the capability (RFC 9738 §5: "MESSAGELIMIT=" message-limit), or ""
// when the extension is off.
func (s *session) messageLimitCap() imap.Cap {
	if s.messageLimit() <= 0 {
		return ""
	}
	return imap.Cap(fmt.Sprintf("MESSAGELIMIT=%d", s.messageLimit()))
}

// limitCode is the response code: resp-text-code =/ "MESSAGELIMIT" SP message-limit
// [SP uniqueid], the UID omitted (0) when not known (RFC 9738 §5).
func (s *session) limitCode(uid uint32) imap.ResponseCode {
	if uid == 0 {
		return imap.ResponseCode(fmt.Sprintf("%s %d", codeMessageLimit, s.messageLimit()))
	}
	return imap.ResponseCode(fmt.Sprintf("%s %d %d", codeMessageLimit, s.messageLimit(), uid))
}

// overLimit says whether n messages are more than one command may handle.
func (s *session) overLimit(n int) bool {
	return s.messageLimit() > 0 && n > s.messageLimit()
}

// limitRefs cuts refs (ascending) to the limit: the highest UIDs are kept, and the cut is
// recorded for the tagged OK (RFC 9738 §3.1).
func (s *session) limitRefs(refs []msgRef) []msgRef {
	if !s.overLimit(len(refs)) {
		return refs
	}
	refs = refs[len(refs)-s.messageLimit():]
	s.limited = &limitHit{lowest: refs[0].uid}
	return refs
}

// limitUIDs is limitRefs for a list of ascending UIDs.
func (s *session) limitUIDs(uids []uint32) []uint32 {
	if !s.overLimit(len(uids)) {
		return uids
	}
	uids = uids[len(uids)-s.messageLimit():]
	s.limited = &limitHit{lowest: uids[0]}
	return uids
}

// errCopyOverLimit refuses a COPY of more than the limit (RFC 9738 §3.1): uids are the
// named messages, ascending.
func (s *session) errCopyOverLimit(uids []uint32) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: s.limitCode(uids[len(uids)-s.messageLimit()]),
		Text: fmt.Sprintf("Too many messages to copy (%d, the limit is %d), try a smaller subset", len(uids), s.messageLimit())}
}

// errPartialOverLimit refuses a FETCH whose PARTIAL range is wider than the limit.
func (s *session) errPartialOverLimit() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: s.limitCode(0),
		Text: fmt.Sprintf("FETCH exceeds the maximum %d-message limit", s.messageLimit())}
}

// errAppendOverLimit refuses a MULTIAPPEND of more than the limit.
func (s *session) errAppendOverLimit() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: s.limitCode(0),
		Text: fmt.Sprintf("More than %d messages in one APPEND: nothing appended", s.messageLimit())}
}

// partialOverLimit says whether a PARTIAL range names more messages than the limit.
func (s *session) partialOverLimit(p *partialRange) bool {
	if p == nil {
		return false
	}
	width := p.last - p.first // -1:-5 is first -1, last -5
	if width < 0 {
		width = -width
	}
	return s.overLimit(int(width + 1))
}

// limitSearch returns the search program restricted to the messages one SEARCH may look
// at: over the limit, the program gets one more UID key, the n highest messages of the
// ones its top-level sequence-set and UID keys name (RFC 9738 §3.1: the messages searched
// count, not the matches). The program given is not changed.
func (s *session) limitSearch(v *selected, c *imap.SearchCriteria) *imap.SearchCriteria {
	if !s.overLimit(len(v.uids)) { // the scope is never larger than the mailbox
		return c
	}
	scope := v.resolve(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}})
	for _, set := range c.UID {
		scope = intersectRefs(scope, v.resolve(set))
	}
	for _, set := range c.SeqNum {
		scope = intersectRefs(scope, v.resolve(set))
	}
	if !s.overLimit(len(scope)) {
		return c
	}
	lowest := scope[len(scope)-s.messageLimit()].uid
	s.limited = &limitHit{lowest: lowest}
	out := *c
	out.UID = append(slices.Clone(c.UID), imap.UIDSet{imap.UIDRange{Start: imap.UID(lowest), Stop: imap.UID(v.maxUID())}})
	return &out
}

// intersectRefs is the messages in both a and b, both ascending.
func intersectRefs(a, b []msgRef) []msgRef {
	var out []msgRef
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i].uid < b[j].uid:
			i++
		case a[i].uid > b[j].uid:
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// limitExpunge cuts UID EXPUNGE's named messages (ascending) so that at most the limit of
// them are \Deleted (RFC 9738 §3.1): the \Deleted ones with the highest UIDs are kept.
// The store decides again, in its transaction, which of those are \Deleted.
func (s *session) limitExpunge(v *selected, named []uint32) ([]uint32, error) {
	if !s.overLimit(len(named)) {
		return named, nil
	}
	rows, err := s.st.Messages(s.ctx, v.mbox.ID, uidRanges(named)...)
	if err != nil {
		return nil, s.storeError(err, "reading flags")
	}
	deleted := make([]uint32, 0, len(rows))
	for _, m := range rows {
		if hasFlag(m.Flags, store.FlagDeleted) {
			deleted = append(deleted, m.UID)
		}
	}
	slices.Sort(deleted)
	if !s.overLimit(len(deleted)) {
		return named, nil
	}
	return s.limitUIDs(deleted), nil
}

// limitedResponse puts the MESSAGELIMIT code of a command that was cut on its tagged OK
// resp, or, when resp has a code already, in an untagged NO written now, before the
// tagged status (RFC 9738 §3.1).
func (s *session) limitedResponse(resp *imap.Error, name string) *imap.Error {
	hit := s.limited
	s.limited = nil
	code := s.limitCode(hit.lowest)
	text := fmt.Sprintf("%s processed the last %d messages only", name, s.messageLimit())
	if resp.Code != "" {
		s.out.status("", imap.StatusResponseTypeNo, code, text)
		return resp
	}
	return &imap.Error{Type: resp.Type, Code: code, Text: text}
}
