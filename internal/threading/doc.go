// Package threading holds the algorithms behind the IMAP SORT and THREAD extensions: base
// subjects, the sort criteria of SORT, ESORT and SORT=DISPLAY, and the ORDEREDSUBJECT and
// REFERENCES threading algorithms, with the THREAD response text they produce.
//
// It is pure: no database, no wire. The IMAP layer fills a []Message with the messages
// the command's search criteria matched, from what the store keeps of each (sequence
// number, UID, INTERNALDATE, RFC822.SIZE, the ENVELOPE and the References header field),
// calls Sort, OrderedSubject or References, and prints the result: the indexes Sort
// returns mapped to sequence numbers or UIDs (SORT, UID SORT, and ESORT's MIN, MAX,
// COUNT, ALL and PARTIAL taken from that order), and Format's text for THREAD.
//
// Implementation notes:
//
//   - Subjects are given decoded: RFC 5256 §2.1 step (1) converts RFC 2047 encoded-words to
//     UTF-8 first, and the store has done that at delivery (store.Envelope.Subject), so
//     BaseSubject does not decode again (which would turn a literal "=?...?=" typed by a
//     sender into something else). It does the rest of step (1): tabs and line breaks
//     become spaces and runs of spaces one space.
//   - RFC 5256 §2.1 steps (2) to (6) are implemented as written, on bytes, without regular
//     expressions: trailers "(fwd)" and whitespace, leaders "Re:", "Fw:", "Fwd:" with
//     optional "[blob]"s, a leading "[blob]" when something is left after it, the
//     "[fwd: ...]" wrapper, looping until nothing changes. The ABNF is ASCII only; octets of
//     UTF-8 sequences count as BLOBCHAR and NONWSP. ABNF literals are case-insensitive
//     (RFC 5234 §2.3), so "RE:", "fWd:" and "(FWD)" match too.
//   - String comparisons use the i;ascii-casemap collation (RFC 4790 §9.2): a-z are mapped
//     to A-Z, then octets compare as unsigned bytes ("_" sorts after every letter, "["
//     after "Z"). The empty string, an absent header, sorts first (RFC 5256 §3). Each key
//     is folded to upper case once, before sorting, into one buffer for all the keys
//     (foldKeys); the sort then compares plain strings. Non-ASCII letters are not folded:
//     i;ascii-casemap (RFC 4790 §9.2) is RFC 5256's default collation; the
//     i;unicode-casemap of RFC 5051, which I18NLEVEL=1 (RFC 5255) would require,
//     differs only there.
//   - FROM, TO and CC compare the addr-mailbox of the first address (RFC 5256 §3), not
//     the host. DISPLAYFROM and DISPLAYTO (RFC 5957 §4) compare the sort value of
//     RFC 5957 §3: the display name, else mailbox@host, else the mailbox (which is how a
//     group's start, whose mailbox is the group name, sorts), else "".
//   - The sent date (RFC 5256 §2.2) is the Date header field, or INTERNALDATE when it is
//     missing or unparseable (Message.Date zero); dates compare as instants, so the time
//     zone the sender wrote does not matter.
//   - Ties: RFC 5256 §3 orders messages that match on every criterion by ascending
//     sequence number; REVERSE reverses one criterion only, never that final order. The
//     index in the input breaks what sequence numbers leave (equal or zero), so every
//     result is deterministic.
//   - REFERENCES (RFC 5256 §4) works on an arena of nodes linked by int32 indexes
//     (parent, first and last child, siblings both ways), so that step (1)'s re-parenting
//     costs O(1) and a 10,000 message mailbox costs a few allocations, not one per link.
//     Message-IDs are compared case-sensitively after the normalisation §4 requires
//     (angle brackets and quoting of the local part removed). A message that lists its own
//     Message-ID among its references ignores that entry: no message can be its own
//     ancestor, and taking it literally would only break the link to its true parent.
//     Step (1)(B) is taken literally otherwise: a message's existing parent link is
//     broken even when no new one can be made (a loop, or no references at all), as
//     imaptest's "thread" script expects of Dovecot.
//   - Only the top level keeps dummies: step (3) promotes the children of every dummy
//     below it, and step (5) makes a new dummy only at the top, so a Thread with Index
//     -1 is always a top-level thread with two or more children.
//   - Sorting uses slices.SortFunc (pattern-defeating quicksort, O(n log n)) on a total
//     order, so it is as stable as a stable sort without paying for one.
package threading
