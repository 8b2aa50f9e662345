package imap

import (
	"io"
	"mime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// The data responses of RFC 3501 §7 and the writers the command handlers use to send
// them; all of them go through the session's responseWriter.

// numKind says whether a command's numbers are sequence numbers or UIDs (RFC 3501 §6.4.8).
type numKind uint8

const (
	numKindSeq numKind = iota
	numKindUID
)

// updateWriter sends unilateral updates of the selected mailbox (RFC 3501 §7.3, §7.4.1,
// §7.2.6, §7.4.2): after a command, and during IDLE.
type updateWriter struct {
	w     *responseWriter
	flush bool // IDLE: each update goes out at once
}

func (u *updateWriter) done() error {
	if u.flush {
		return u.w.flush()
	}
	return u.w.err
}

func (u *updateWriter) WriteExpunge(seq uint32) error {
	u.w.raw("* ").number(seq).raw(" EXPUNGE").crlf()
	return u.done()
}

func (u *updateWriter) WriteNumMessages(n uint32) error {
	u.w.raw("* ").number(n).raw(" EXISTS").crlf()
	return u.done()
}

// WriteNumRecent sends RECENT (RFC 3501 §7.3.2).
func (u *updateWriter) WriteNumRecent(n uint32) error {
	u.w.raw("* ").number(n).raw(" RECENT").crlf()
	return u.done()
}

func (u *updateWriter) WriteMailboxFlags(flags []imap.Flag) error {
	u.w.raw("* FLAGS ").flags(flags).crlf()
	return u.done()
}

// WritePermanentFlags sends an untagged OK with PERMANENTFLAGS (RFC 3501 §7.1).
func (u *updateWriter) WritePermanentFlags(flags []imap.Flag) error {
	u.w.raw("* OK [PERMANENTFLAGS ").flags(flags).raw("] Flags that can be stored").crlf()
	return u.done()
}

// WriteMessageFlags sends FETCH (UID n FLAGS (...)); the UID is included always (as
// RFC 7162 §3.1.4 asks with CONDSTORE, and harmless without).
// With CONDSTORE enabled modSeq is the message's (RFC 7162 §3.1.4.1: every unsolicited
// FETCH of FLAGS carries MODSEQ), 0 otherwise.
func (u *updateWriter) WriteMessageFlags(seq uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	if u.w.uidOnly { // RFC 9586
		u.w.writeFetchStart(msgRef{seq: seq, uid: uint32(uid)}).raw("FLAGS ").flags(flags)
	} else {
		u.w.raw("* ").number(seq).raw(" FETCH (UID ").number(uint32(uid)).raw(" FLAGS ").flags(flags)
	}
	if modSeq != 0 {
		u.w.raw(" MODSEQ (").modSeq(modSeq).raw(")")
	}
	u.w.raw(")").crlf()
	return u.done()
}

// expungeWriter sends the EXPUNGE responses of EXPUNGE and UID EXPUNGE; CLOSE has none
// (nil).
type expungeWriter struct{ w *responseWriter }

func (e *expungeWriter) WriteExpunge(seq uint32) error {
	e.w.raw("* ").number(seq).raw(" EXPUNGE").crlf()
	return e.w.err
}

// moveWriter sends MOVE's COPYUID (in an untagged OK, RFC 6851 §4.3) and EXPUNGEs.
type moveWriter struct {
	w *responseWriter
}

func (m *moveWriter) WriteCopyData(data *imap.CopyData) error {
	m.w.raw("* OK [").raw(copyUIDCode(data)).raw("] COPY completed").crlf()
	return m.w.err
}

func (m *moveWriter) WriteExpunge(seq uint32) error {
	m.w.raw("* ").number(seq).raw(" EXPUNGE").crlf()
	return m.w.err
}

// copyUIDCode is COPYUID's response code (RFC 4315 §3).
func copyUIDCode(data *imap.CopyData) string {
	return "COPYUID " + strconv.FormatUint(uint64(data.UIDValidity), 10) + " " +
		data.SourceUIDs.String() + " " + data.DestUIDs.String()
}

// listWriter sends LIST and LSUB responses (RFC 3501 §7.2.2, §7.2.3; RFC 5258 §3.5
// CHILDINFO; RFC 5819 STATUS after each).
type listWriter struct {
	w      *responseWriter
	lsub   bool
	status *imap.StatusOptions // LIST-STATUS: the items asked for
	// statusMailboxID: LIST-STATUS asked for MAILBOXID; objectID is the listed
	// mailbox's, set by List before each WriteList.
	statusMailboxID bool
	objectID        string
}

func (l *listWriter) WriteList(data *imap.ListData) error {
	w := l.w
	if l.lsub {
		w.raw("* LSUB (")
	} else {
		w.raw("* LIST (")
	}
	n := 0
	for _, a := range data.Attrs {
		if l.lsub && a == imap.MailboxAttrSubscribed {
			continue // LSUB lists subscribed mailboxes only; the attribute is LIST's
		}
		if n > 0 {
			w.sp()
		}
		w.raw(string(a))
		n++
	}
	w.raw(") ")
	if data.Delim == 0 {
		w.raw("NIL")
	} else {
		w.quoted(string(data.Delim))
	}
	w.sp()
	w.mailbox(data.Mailbox)
	if data.ChildInfo != nil && data.ChildInfo.Subscribed {
		w.raw(` ("CHILDINFO" ("SUBSCRIBED"))`)
	}
	w.crlf()
	if data.Status != nil && l.status != nil {
		id := ""
		if l.statusMailboxID {
			id = l.objectID
		}
		writeStatus(w, data.Status, l.status, id)
	}
	return w.err
}

// writeStatus sends a STATUS response (RFC 3501 §7.2.4) with the items asked for, and
// MAILBOXID (RFC 8474 §4.2) unless objectID is "".
func writeStatus(w *responseWriter, d *imap.StatusData, o *imap.StatusOptions, objectID string) {
	w.raw("* STATUS ").mailbox(d.Mailbox).raw(" (")
	sep := ""
	item := func(name string) *responseWriter {
		w.raw(sep).raw(name).sp()
		sep = " "
		return w
	}
	if o.NumMessages && d.NumMessages != nil {
		item("MESSAGES").number(*d.NumMessages)
	}
	if o.NumRecent && d.NumRecent != nil {
		item("RECENT").number(*d.NumRecent)
	}
	if o.UIDNext {
		item("UIDNEXT").number(uint32(d.UIDNext))
	}
	if o.UIDValidity {
		item("UIDVALIDITY").number(d.UIDValidity)
	}
	if o.NumUnseen && d.NumUnseen != nil {
		item("UNSEEN").number(*d.NumUnseen)
	}
	if o.NumDeleted && d.NumDeleted != nil {
		item("DELETED").number(*d.NumDeleted)
	}
	if o.Size && d.Size != nil {
		item("SIZE").number64(*d.Size)
	}
	if o.AppendLimit && d.AppendLimit != nil {
		item("APPENDLIMIT").number(*d.AppendLimit)
	}
	if o.DeletedStorage && d.DeletedStorage != nil {
		item("DELETED-STORAGE").number64(*d.DeletedStorage)
	}
	if o.HighestModSeq {
		item("HIGHESTMODSEQ").modSeq(d.HighestModSeq)
	}
	if objectID != "" {
		item("MAILBOXID").raw("(").raw(objectID).raw(")")
	}
	w.raw(")").crlf()
}

// fetchWriter starts the FETCH responses of FETCH, UID FETCH and STORE (RFC 3501 §7.4.2).
type fetchWriter struct {
	w    *responseWriter
	args *fetchArgs // nil for STORE
}

// CreateMessage starts the FETCH response of message ref (UIDFETCH with UIDONLY, whose
// UID item is written only when the client asked for it: RFC 9586).
func (f *fetchWriter) CreateMessage(ref msgRef) *fetchResponseWriter {
	f.w.writeFetchStart(ref)
	return &fetchResponseWriter{w: f.w, args: f.args, noUID: f.w.uidOnly && (f.args == nil || !f.args.explicitUID)}
}

// fetchResponseWriter writes the items of one FETCH response.
type fetchResponseWriter struct {
	w     *responseWriter
	args  *fetchArgs
	items int
	noUID bool // UIDFETCH without a UID item asked for
}

func (r *fetchResponseWriter) item(name string) *responseWriter {
	if r.items > 0 {
		r.w.sp()
	}
	r.items++
	return r.w.raw(name)
}

func (r *fetchResponseWriter) WriteUID(uid imap.UID) {
	if !r.noUID {
		r.item("UID ").number(uint32(uid))
	}
}

func (r *fetchResponseWriter) WriteFlags(flags []imap.Flag) { r.item("FLAGS ").flags(flags) }

func (r *fetchResponseWriter) WriteRFC822Size(size int64) { r.item("RFC822.SIZE ").number64(size) }

func (r *fetchResponseWriter) WriteInternalDate(t time.Time) {
	r.item("INTERNALDATE ").dateTime(t)
}

func (r *fetchResponseWriter) WriteModSeq(modSeq uint64) {
	r.item("MODSEQ (").modSeq(modSeq).raw(")")
}

// WriteEnvelope writes ENVELOPE from the store's envelope (source routes included).
func (r *fetchResponseWriter) WriteEnvelope(env *store.Envelope) {
	r.item("ENVELOPE ")
	writeStoreEnvelope(r.w, env)
}

// WriteBodyStructure writes BODYSTRUCTURE, or BODY (without extension data) when that is
// what was asked for.
func (r *fetchResponseWriter) WriteBodyStructure(bs imap.BodyStructure) {
	extended := r.args == nil || r.args.options.BodyStructure == nil || r.args.options.BodyStructure.Extended
	if extended {
		r.item("BODYSTRUCTURE ")
	} else {
		r.item("BODY ")
	}
	writeBodyStructure(r.w, bs, extended)
}

// WriteBodySection starts a body section's literal of size octets; the caller writes
// exactly that many and closes.
func (r *fetchResponseWriter) WriteBodySection(section *imap.FetchItemBodySection, size int64) io.WriteCloser {
	if name := r.args.rfc822[section]; name != "" {
		r.item(name).sp()
	} else {
		r.item("BODY[")
		writeSectionSpec(r.w, section)
		r.w.raw("]")
		if section.Partial != nil {
			r.w.raw("<").number64(section.Partial.Offset).raw(">")
		}
		r.w.sp()
	}
	r.w.octet('{').number64(size).raw("}\r\n")
	return literalSink{r.w}
}

// WriteBinarySection starts a BINARY section's literal8 (RFC 3516 §4.2; literal8 always,
// since decoded data may hold NUL).
func (r *fetchResponseWriter) WriteBinarySection(section *imap.FetchItemBinarySection, size int64) io.WriteCloser {
	r.item("BINARY[")
	writePart(r.w, section.Part)
	r.w.raw("]")
	if section.Partial != nil {
		r.w.raw("<").number64(section.Partial.Offset).raw(">")
	}
	r.w.raw(" ~{").number64(size).raw("}\r\n")
	return literalSink{r.w}
}

func (r *fetchResponseWriter) WriteBinarySectionSize(section *imap.FetchItemBinarySectionSize, size uint32) {
	r.item("BINARY.SIZE[")
	writePart(r.w, section.Part)
	r.w.raw("] ").number(size)
}

// Close ends the FETCH response.
func (r *fetchResponseWriter) Close() error {
	r.w.raw(")").crlf()
	return r.w.err
}

// literalSink takes a literal's data into the response writer.
type literalSink struct{ w *responseWriter }

func (l literalSink) Write(p []byte) (int, error) {
	l.w.rawBytes(p)
	if l.w.err != nil {
		return 0, l.w.err
	}
	return len(p), nil
}

// ReadFrom reads a literal's data straight into the response writer's buffer, so that
// io.Copy from a message body needs no buffer of its own (a 32 KiB allocation per literal)
// and copies each octet once. An error of r is returned as it is, leaving the writer
// usable (writeLiteral pads the literal to its announced size); a write error sticks.
func (l literalSink) ReadFrom(r io.Reader) (int64, error) {
	if l.w.err != nil {
		return 0, l.w.err
	}
	src := &readErr{r: r}
	n, err := l.w.buf().ReadFrom(src)
	if err != nil && err != src.err {
		l.w.fail(err)
		return n, l.w.err
	}
	return n, err
}

// readErr remembers the error its reader returned, to tell it from a write error.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

func (l literalSink) Close() error { return l.w.err }

func writePart(w *responseWriter, part []int) {
	for i, n := range part {
		if i > 0 {
			w.octet('.')
		}
		w.number(uint32(n))
	}
}

// writeSectionSpec writes section-spec (RFC 3501 §9) as the client asked for it.
func writeSectionSpec(w *responseWriter, s *imap.FetchItemBodySection) {
	writePart(w, s.Part)
	if s.Specifier == imap.PartSpecifierNone {
		return
	}
	if len(s.Part) > 0 {
		w.octet('.')
	}
	w.raw(string(s.Specifier))
	fields, not := s.HeaderFields, false
	if len(s.HeaderFieldsNot) > 0 {
		fields, not = s.HeaderFieldsNot, true
	}
	if s.Specifier == imap.PartSpecifierHeader && (len(fields) > 0 || not) {
		if not {
			w.raw(".FIELDS.NOT (")
		} else {
			w.raw(".FIELDS (")
		}
		for i, f := range fields {
			if i > 0 {
				w.sp()
			}
			w.astring(f)
		}
		w.raw(")")
	}
}

// envelopeDateLayout is RFC 5322's date-time, as env-date carries it.
const envelopeDateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// envelopeText prepares a subject or display name: to a client without UTF-8, non-ASCII
// text goes as an RFC 2047 encoded word, as it stood in the header.
func envelopeText(w *responseWriter, s string) string {
	if w.utf8 {
		return s
	}
	for i := range len(s) {
		if s[i] >= 0x80 {
			if !utf8.ValidString(s) {
				return strings.ToValidUTF8(s, "\uFFFD")
			}
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// envelopeAddress is one address of ENVELOPE: RFC 3501 §9's addr-name, addr-adl (the
// source route, which imap.Address has no field for), addr-mailbox, addr-host.
type envelopeAddress struct{ name, route, mailbox, host string }

// writeEnvelope writes envelope (RFC 3501 §7.4.2, §9) from go-imap's type (a message/rfc822
// part's, in BODYSTRUCTURE). Sender and Reply-To default to From, as RFC 3501 requires.
func writeEnvelope(w *responseWriter, env *imap.Envelope) {
	if env == nil {
		env = &imap.Envelope{}
	}
	conv := func(list []imap.Address) []envelopeAddress {
		out := make([]envelopeAddress, len(list))
		for i, a := range list {
			out[i] = envelopeAddress{name: a.Name, mailbox: a.Mailbox, host: a.Host}
		}
		return out
	}
	inReplyTo := ""
	if len(env.InReplyTo) > 0 {
		inReplyTo = "<" + strings.Join(env.InReplyTo, "> <") + ">"
	}
	messageID := ""
	if env.MessageID != "" {
		messageID = "<" + env.MessageID + ">"
	}
	writeEnvelopeFields(w, env.Date, env.Subject, [6][]envelopeAddress{conv(env.From), conv(env.Sender),
		conv(env.ReplyTo), conv(env.To), conv(env.Cc), conv(env.Bcc)}, inReplyTo, messageID)
}

// writeStoreEnvelope writes the envelope the store computed at delivery, source routes
// included (RFC 3501 §7.4.2: ((NIL "@route" "user" "domain"))).
func writeStoreEnvelope(w *responseWriter, e *store.Envelope) {
	if e == nil {
		e = &store.Envelope{}
	}
	conv := func(list []store.Address) []envelopeAddress {
		out := make([]envelopeAddress, len(list))
		for i, a := range list {
			out[i] = envelopeAddress{name: a.Name, route: a.Route, mailbox: a.Mailbox, host: a.Host}
		}
		return out
	}
	var ids []string
	for _, id := range e.InReplyTo {
		if id = trimAngles(id); id != "" {
			ids = append(ids, id)
		}
	}
	inReplyTo := ""
	if len(ids) > 0 {
		inReplyTo = "<" + strings.Join(ids, "> <") + ">"
	}
	messageID := ""
	if id := trimAngles(e.MessageID); id != "" {
		messageID = "<" + id + ">"
	}
	writeEnvelopeFields(w, e.Date, e.Subject, [6][]envelopeAddress{conv(e.From), conv(e.Sender),
		conv(e.ReplyTo), conv(e.To), conv(e.Cc), conv(e.Bcc)}, inReplyTo, messageID)
}

// writeEnvelopeFields writes "(" env-date SP env-subject SP env-from SP env-sender SP
// env-reply-to SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")".
func writeEnvelopeFields(w *responseWriter, date time.Time, subject string, lists [6][]envelopeAddress, inReplyTo, messageID string) {
	w.octet('(')
	if date.IsZero() {
		w.raw("NIL")
	} else {
		w.string(date.Format(envelopeDateLayout))
	}
	w.sp().nilOrString(envelopeText(w, subject))
	if len(lists[1]) == 0 { // Sender defaults to From
		lists[1] = lists[0]
	}
	if len(lists[2]) == 0 { // Reply-To too
		lists[2] = lists[0]
	}
	for _, list := range lists {
		w.sp()
		writeAddresses(w, list)
	}
	w.sp().nilOrString(inReplyTo).sp().nilOrString(messageID).octet(')')
}

// writeAddresses writes an address list, NIL when empty: "(" 1*address ")", no space
// between the addresses (RFC 3501 §9). A group is written as RFC 3501 §7.4.2 has it: a
// start (NIL NIL name NIL), its members, an end (NIL NIL NIL NIL).
func writeAddresses(w *responseWriter, list []envelopeAddress) {
	if len(list) == 0 {
		w.raw("NIL")
		return
	}
	w.octet('(')
	for _, a := range list {
		w.octet('(').nilOrString(envelopeText(w, a.name)).sp().nilOrString(a.route).sp().
			nilOrString(a.mailbox).sp().nilOrString(a.host).octet(')')
	}
	w.octet(')')
}

// writeBodyStructure writes body (RFC 3501 §9), with the extension data when extended
// (BODYSTRUCTURE), without (BODY).
func writeBodyStructure(w *responseWriter, bs imap.BodyStructure, extended bool) {
	w.octet('(')
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		// body-type-mpart = 1*body SP media-subtype: no SP between the parts.
		for _, c := range bs.Children {
			writeBodyStructure(w, c, extended)
		}
		w.sp().string(bs.Subtype)
		if extended {
			ext := bs.Extended
			if ext == nil {
				ext = &imap.BodyStructureMultiPartExt{}
			}
			w.sp()
			writeBodyParams(w, ext.Params)
			w.sp()
			writeDisposition(w, ext.Disposition)
			w.sp()
			writeLanguage(w, ext.Language)
			w.sp().nilOrString(ext.Location)
		}
	case *imap.BodyStructureSinglePart:
		w.string(bs.Type).sp().string(bs.Subtype).sp()
		writeBodyParams(w, bs.Params)
		w.sp().nilOrString(bs.ID).sp().nilOrString(bs.Description).sp()
		enc := strings.ToLower(bs.Encoding)
		if enc == "" {
			enc = "7bit"
		}
		w.string(enc).sp().number(bs.Size)
		switch {
		case bs.MessageRFC822 != nil:
			w.sp()
			writeEnvelope(w, bs.MessageRFC822.Envelope)
			w.sp()
			writeBodyStructure(w, bs.MessageRFC822.BodyStructure, extended)
			w.sp().number64(bs.MessageRFC822.NumLines)
		case bs.Text != nil:
			w.sp().number64(bs.Text.NumLines)
		}
		if extended {
			ext := bs.Extended
			if ext == nil {
				ext = &imap.BodyStructureSinglePartExt{}
			}
			w.raw(" NIL ") // body-fld-md5
			writeDisposition(w, ext.Disposition)
			w.sp()
			writeLanguage(w, ext.Language)
			w.sp().nilOrString(ext.Location)
		}
	}
	w.octet(')')
}

// writeBodyParams writes body-fld-param, sorted by name so that it is the same each time.
func writeBodyParams(w *responseWriter, params map[string]string) {
	if len(params) == 0 {
		w.raw("NIL")
		return
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	w.octet('(')
	for i, k := range names {
		if i > 0 {
			w.sp()
		}
		w.string(k).sp().string(params[k])
	}
	w.octet(')')
}

func writeDisposition(w *responseWriter, d *imap.BodyStructureDisposition) {
	if d == nil {
		w.raw("NIL")
		return
	}
	w.octet('(').string(d.Value).sp()
	writeBodyParams(w, d.Params)
	w.octet(')')
}

func writeLanguage(w *responseWriter, langs []string) {
	if len(langs) == 0 {
		w.raw("NIL")
		return
	}
	w.octet('(')
	for i, l := range langs {
		if i > 0 {
			w.sp()
		}
		w.string(l)
	}
	w.octet(')')
}

// matchList says whether mailbox name matches a LIST pattern with its reference
// (RFC 3501 §6.3.8): "*" matches anything, "%" anything but the delimiter. The reference
// is prefixed to the pattern; a pattern starting with the delimiter stands alone.
func matchList(name string, delim rune, ref, pattern string) bool {
	d := string(delim)
	if strings.HasPrefix(pattern, d) && strings.HasSuffix(ref, d) {
		pattern = pattern[len(d):]
	}
	return matchPattern(name, ref+pattern, byte(delim))
}

// matchPattern matches in O(len(name)·len(pattern)), whatever the wildcards: reach holds
// the positions in name that the pattern so far can have consumed up to.
func matchPattern(name, pattern string, delim byte) bool {
	reach := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	reach[0] = true
	for j := 0; j < len(pattern); j++ {
		clear(next)
		any := false
		switch c := pattern[j]; c {
		case '*':
			on := false
			for k := range reach {
				on = on || reach[k]
				next[k] = on
				any = any || on
			}
		case '%':
			on := false
			for k := range reach {
				if reach[k] {
					on = true
				}
				next[k] = on
				any = any || on
				if k < len(name) && name[k] == delim {
					on = false
				}
			}
		default:
			for k := 0; k < len(name); k++ {
				if reach[k] && name[k] == c {
					next[k+1] = true
					any = true
				}
			}
		}
		if !any {
			return false
		}
		reach, next = next, reach
	}
	return reach[len(name)]
}
