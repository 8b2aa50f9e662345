package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// fetchBatch is how many messages one store read covers, so that FETCH 1:* of a large
// mailbox never holds all its metadata at once; fetchBodyBatch is the same when the bodies
// are read too, each batch holding the first chunk (up to 64 KiB) of each of its messages.
const (
	fetchBatch     = 256
	fetchBodyBatch = 64
)

// maxHeaderFields bounds the header block read into memory for HEADER.FIELDS.
const maxHeaderFields = 4 << 20

// Fetch answers FETCH and UID FETCH (RFC 3501 §6.4.5). Flags, dates and sizes come from
// the message rows, ENVELOPE and BODYSTRUCTURE from the delivery-time metadata, and body
// sections are streamed from the stored message at the offsets that metadata records.
// A non-PEEK body section sets \Seen, unless the mailbox is read-only, and the new flags
// are sent in the same FETCH response.
func (s *session) Fetch(w *fetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	v, err := s.lockSelected()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()

	needBody := len(options.BodySection) > 0 || len(options.BinarySection) > 0
	// The metadata is decoded per message, so only the parts something needs are read:
	// BODY[] and RFC822 of the whole message need just its size, which every row has, and
	// ENVELOPE alone does not need the MIME structure.
	parts := store.MetadataParts{Envelope: options.Envelope,
		Structure: options.BodyStructure != nil || len(options.BinarySectionSize) > 0 || len(options.BinarySection) > 0}
	for _, bs := range options.BodySection {
		parts.Structure = parts.Structure || len(bs.Part) > 0 || bs.Specifier != imap.PartSpecifierNone
	}
	parts.Preview = w.args != nil && w.args.ext.preview
	markSeen := false
	if !v.readOnly {
		for _, bs := range options.BodySection {
			markSeen = markSeen || !bs.Peek
		}
		for _, bs := range options.BinarySection {
			markSeen = markSeen || !bs.Peek
		}
	}

	// The responses of the whole command go out through the session's buffered writer
	// (write.go), in as few writes as its buffer allows.
	refs := v.resolve(numSet)
	if w.args != nil && w.args.partial != nil {
		if s.partialOverLimit(w.args.partial) {
			return s.errPartialOverLimit() // RFC 9738 §3.1
		}
		refs = w.args.partial.refs(refs) // partial.go
	}
	refs = s.limitRefs(refs) // RFC 9738 §3.1 (messagelimit.go)
	return s.loadBatches(v, refs, parts, needBody, func(batch []msgRef, metas map[uint32]*store.Metadata, bodies map[uint32]store.Body) error {
		if options.ChangedSince != 0 {
			// RFC 7162 §3.1.4.1: only the messages whose modseq is above CHANGEDSINCE.
			for uid, m := range metas {
				if m.ModSeq <= int64(options.ChangedSince) {
					delete(metas, uid)
				}
			}
		}
		seen := map[uint32][]string{}
		seenModSeq := map[uint32]int64{}
		if markSeen {
			var unseen []uint32
			for _, ref := range batch {
				if m := metas[ref.uid]; m != nil && !hasFlag(m.Flags, store.FlagSeen) {
					unseen = append(unseen, ref.uid)
				}
			}
			if len(unseen) > 0 {
				updates, err := s.st.SetFlags(s.ctx, v.mbox.ID, unseen, store.FlagsAdd, []string{store.FlagSeen})
				if err != nil {
					return s.storeError(err, "setting \\Seen")
				}
				for _, u := range updates {
					seen[u.UID] = u.Flags
					seenModSeq[u.UID] = u.ModSeq
				}
			}
		}
		for _, ref := range batch {
			m := metas[ref.uid]
			if m == nil || (needBody && bodies[ref.uid] == nil) {
				continue // expunged meanwhile; the change log will tell
			}
			if f, ok := seen[ref.uid]; ok {
				m.Flags, m.ModSeq = f, seenModSeq[ref.uid]
			}
			if err := s.fetchOne(w, v, ref, m, bodies[ref.uid], options, seen[ref.uid] != nil); err != nil {
				return err
			}
			if needBody {
				s.stats.fetched++
			}
		}
		return nil
	})
}

// eachMessage loads the messages of refs from the store in batches (metadata if withMeta,
// the message rows otherwise) and hands each batch to fn. Messages expunged meanwhile are
// missing from the map.
func (s *session) eachMessage(v *selected, refs []msgRef, withMeta bool, fn func([]msgRef, map[uint32]*store.Metadata) error) error {
	parts := store.MetadataParts{Envelope: withMeta, Structure: withMeta}
	return s.loadBatches(v, refs, parts, false, func(batch []msgRef, metas map[uint32]*store.Metadata, _ map[uint32]store.Body) error {
		return fn(batch, metas)
	})
}

// loadBatches loads the messages of refs in batches and hands each batch to fn: their
// metadata with the parts asked for (the message rows alone if none), and with withBodies
// their bodies, opened, which loadBatches closes after fn. Messages expunged meanwhile are
// missing from the maps.
func (s *session) loadBatches(v *selected, refs []msgRef, parts store.MetadataParts, withBodies bool,
	fn func([]msgRef, map[uint32]*store.Metadata, map[uint32]store.Body) error) error {
	size := fetchBatch
	if withBodies {
		size = fetchBodyBatch
	}
	for len(refs) > 0 {
		batch := refs[:min(len(refs), size)]
		refs = refs[len(batch):]
		uids := make([]uint32, len(batch))
		for i, r := range batch {
			uids[i] = r.uid
		}
		ranges := uidRanges(uids)
		metas := make(map[uint32]*store.Metadata, len(batch))
		var bodies map[uint32]store.Body
		err := s.loadMetadata(v, ranges, parts, withBodies, metas)
		if err == nil && withBodies {
			bodies, err = s.openBodies(v, ranges, parts, metas)
		}
		if err == nil {
			err = fn(batch, metas, bodies)
		}
		for _, b := range bodies {
			b.Close()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// loadMetadata fills metas with the metadata of the messages in ranges: the parts asked
// for, or the message rows alone, unless openBodies will read those (rowsLater).
func (s *session) loadMetadata(v *selected, ranges []store.UIDRange, parts store.MetadataParts, rowsLater bool, metas map[uint32]*store.Metadata) error {
	switch {
	case parts.Envelope || parts.Structure || parts.Preview:
		list, err := s.st.MetadataOf(s.ctx, v.mbox.ID, parts, ranges...)
		if err != nil {
			return s.storeError(err, "reading messages")
		}
		for i := range list {
			metas[list[i].UID] = &list[i]
		}
	case !rowsLater:
		list, err := s.st.Messages(s.ctx, v.mbox.ID, ranges...)
		if err != nil {
			return s.storeError(err, "reading messages")
		}
		for i := range list {
			metas[list[i].UID] = &store.Metadata{Message: list[i]}
		}
	}
	return nil
}

// openBodies opens the bodies of the messages in ranges; without metadata parts it also
// fills metas with their rows.
func (s *session) openBodies(v *selected, ranges []store.UIDRange, parts store.MetadataParts, metas map[uint32]*store.Metadata) (map[uint32]store.Body, error) {
	list, err := s.st.OpenMessages(s.ctx, v.mbox.ID, ranges...)
	if err != nil {
		return nil, s.storeError(err, "reading messages")
	}
	bodies := make(map[uint32]store.Body, len(list))
	var rows []store.Metadata // one allocation for the batch's rows, not one a message
	if !parts.Envelope && !parts.Structure && !parts.Preview {
		rows = make([]store.Metadata, len(list))
	}
	for i, mb := range list {
		bodies[mb.UID] = mb.Body
		if rows != nil {
			rows[i].Message = mb.Message
			metas[mb.UID] = &rows[i]
		}
	}
	return bodies, nil
}

// fetchOne writes the FETCH response of one message; body is its opened body when a
// section of it is asked for.
func (s *session) fetchOne(w *fetchWriter, v *selected, ref msgRef, m *store.Metadata, body store.Body,
	options *imap.FetchOptions, flagsChanged bool) error {
	// Binary sections are decoded before anything is written, so that a part that cannot be
	// decoded fails the command instead of leaving half a response.
	binaries := make([]binarySection, len(options.BinarySection))
	for i, bs := range options.BinarySection {
		sec, err := newBinarySection(body, m, bs.Part)
		if err != nil {
			return err
		}
		binaries[i] = sec
	}
	binarySizes := make([]int64, len(options.BinarySectionSize))
	for i, bs := range options.BinarySectionSize {
		if body == nil {
			b, err := s.st.OpenMessage(s.ctx, v.mbox.ID, ref.uid)
			if errors.Is(err, store.ErrNoSuchMessage) {
				return nil
			} else if err != nil {
				return s.storeError(err, "reading a message")
			}
			body = b
			defer body.Close()
		}
		sec, err := newBinarySection(body, m, bs.Part)
		if err != nil {
			return err
		}
		binarySizes[i] = sec.size
	}

	rw := w.CreateMessage(ref)
	if options.UID {
		rw.WriteUID(imap.UID(ref.uid))
	}
	if options.Flags || flagsChanged {
		// RFC 3501 §7.2.6: a keyword someone else has just stored may reach the client only
		// after FLAGS announces it, which a FETCH cannot send (it has only a
		// fetchWriter). Then the flags the client knows are shown, and the poll after the
		// command announces the keyword, then the message's new flags.
		if !hasNewKeyword(v, m.Flags) {
			v.flags.set(ref.uid, m.Flags)
		}
		rw.WriteFlags(v.flagsOf(ref.uid))
	}
	// RFC 7162 §3.1.4.1: MODSEQ when asked for, and once CONDSTORE is on, with every FLAGS.
	if options.ModSeq || ((options.Flags || flagsChanged) && s.condStore()) {
		rw.WriteModSeq(uint64(m.ModSeq))
	}
	if options.InternalDate {
		rw.WriteInternalDate(m.InternalDate)
	}
	if options.RFC822Size {
		rw.WriteRFC822Size(m.Size)
	}
	if options.Envelope {
		rw.WriteEnvelope(&m.Envelope)
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(imapBodyStructure(&m.Structure))
	}
	writeFetchExt(rw, w.args, m)
	for _, bs := range options.BodySection {
		r, size, err := bodySection(body, m, bs)
		if err != nil {
			rw.Close()
			return err
		}
		if err := writeLiteral(rw.WriteBodySection(bs, size), nulFilter{r}, size); err != nil {
			rw.Close()
			return fmt.Errorf("imap: writing body section: %w", err)
		}
	}
	for i, bs := range options.BinarySection {
		r, size := binaries[i].open(bs.Partial)
		if err := writeLiteral(rw.WriteBinarySection(bs, size), r, size); err != nil {
			rw.Close()
			return fmt.Errorf("imap: writing binary section: %w", err)
		}
	}
	for i, bs := range options.BinarySectionSize {
		rw.WriteBinarySectionSize(bs, uint32(min(binarySizes[i], 1<<32-1)))
	}
	return rw.Close()
}

// writeLiteral streams exactly size bytes of r into a literal. If r ends early (the store
// failed mid-way), the literal is padded with spaces so that the connection stays in step
// with the announced size, and the error is returned.
// nulFilter replaces NUL octets with 0x80 (as Dovecot does). RFC 3501 §4.3: a literal
// carries CHAR8, which excludes NUL; only a literal8 (BINARY, RFC 3516) may hold one, and
// BODY sections are written as plain literals. NULs come only from a message that
// arrived with them (a literal8 APPEND): its BINARY sections still give them unchanged.
type nulFilter struct{ r io.Reader }

func (f nulFilter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	for i := bytes.IndexByte(p[:n], 0); i >= 0; {
		p[i] = 0x80
		j := bytes.IndexByte(p[i+1:n], 0)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return n, err
}

func writeLiteral(w io.WriteCloser, r io.Reader, size int64) error {
	n, err := io.Copy(w, io.LimitReader(r, size))
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	for n < size {
		pad := bytes.Repeat([]byte{' '}, int(min(size-n, 32<<10)))
		m, werr := w.Write(pad)
		n += int64(m)
		if werr != nil {
			break
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// span is a byte range [start, end) of the stored message.
type span struct{ start, end int64 }

// findPart walks a section part path (RFC 3501 §6.4.5: "1.2.3") down the MIME tree. In a
// message that is not multipart, part 1 is its body; after a message/rfc822 part, the
// path continues in the enclosed message.
func findPart(top *store.Part, path []int) (*store.Part, bool) {
	cur := top
	for i, k := range path {
		if i > 0 && isMessageRFC822(cur) {
			if cur.Message == nil {
				return nil, false
			}
			cur = cur.Message
		}
		switch {
		case strings.EqualFold(cur.Type, "multipart"):
			if k < 1 || k > len(cur.Children) {
				return nil, false
			}
			cur = &cur.Children[k-1]
		case k != 1:
			return nil, false
		}
	}
	return cur, true
}

func isMessageRFC822(p *store.Part) bool {
	return strings.EqualFold(p.Type, "message") && strings.EqualFold(p.Subtype, "rfc822")
}

// sectionSpan finds the bytes of a body section, before HEADER.FIELDS filtering and
// partial ranges. A section that does not exist is empty.
func sectionSpan(m *store.Metadata, sec *imap.FetchItemBodySection) (span, bool) {
	if len(sec.Part) == 0 {
		top := &m.Structure
		headerEnd := m.HeaderSize
		if top.BodyStart > 0 {
			headerEnd = top.BodyStart
		}
		switch sec.Specifier {
		case imap.PartSpecifierHeader:
			return span{0, headerEnd}, true
		case imap.PartSpecifierText:
			return span{headerEnd, m.Size}, true
		case imap.PartSpecifierNone:
			return span{0, m.Size}, true
		}
		return span{}, false
	}
	p, ok := findPart(&m.Structure, sec.Part)
	if !ok {
		return span{}, false
	}
	switch sec.Specifier {
	case imap.PartSpecifierNone:
		return span{p.BodyStart, p.End}, true
	case imap.PartSpecifierMIME:
		return span{p.HeaderStart, p.BodyStart}, true
	case imap.PartSpecifierHeader, imap.PartSpecifierText:
		// HEADER and TEXT of a part are those of the message it encloses.
		if !isMessageRFC822(p) || p.Message == nil {
			return span{}, false
		}
		inner := p.Message
		if sec.Specifier == imap.PartSpecifierHeader {
			return span{inner.HeaderStart, inner.BodyStart}, true
		}
		return span{inner.BodyStart, inner.End}, true
	}
	return span{}, false
}

// bodySection returns a reader for a body section and its exact size.
func bodySection(body store.Body, m *store.Metadata, sec *imap.FetchItemBodySection) (io.Reader, int64, error) {
	sp, ok := sectionSpan(m, sec)
	if !ok || sp.end < sp.start {
		sp = span{}
	}
	sp.start, sp.end = clamp(sp.start, body.Size()), clamp(sp.end, body.Size())
	var data io.Reader = io.NewSectionReader(body, sp.start, sp.end-sp.start)
	size := sp.end - sp.start
	if len(sec.HeaderFields) > 0 || len(sec.HeaderFieldsNot) > 0 {
		if size > maxHeaderFields {
			size = maxHeaderFields
		}
		raw := make([]byte, size)
		if _, err := io.ReadFull(data, raw); err != nil {
			return nil, 0, fmt.Errorf("imap: reading header: %w", err)
		}
		filtered := filterHeader(raw, sec.HeaderFields, sec.HeaderFieldsNot)
		data, size = bytes.NewReader(filtered), int64(len(filtered))
	}
	return partial(data, size, sec.Partial)
}

func clamp(n, size int64) int64 {
	return min(max(n, 0), size)
}

// partial applies <offset.count> (RFC 3501 §6.4.5) to a section of the given size.
func partial(r io.Reader, size int64, p *imap.SectionPartial) (io.Reader, int64, error) {
	if p == nil {
		return r, size, nil
	}
	off := min(max(p.Offset, 0), size)
	n := min(max(p.Size, 0), size-off)
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		return nil, 0, fmt.Errorf("imap: skipping to partial offset: %w", err)
	}
	return io.LimitReader(r, n), n, nil
}

// filterHeader keeps (fields) or drops (not) header fields, matched case-insensitively,
// and ends the result with the blank line that ends a header (RFC 3501 §6.4.5).
func filterHeader(raw []byte, fields, not []string) []byte {
	want := func(name string) bool {
		list, keep := fields, true
		if len(fields) == 0 {
			list, keep = not, false
		}
		for _, f := range list {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return keep
			}
		}
		return !keep
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 4096), len(raw)+1)
	sc.Split(scanCRLFLines)
	keep := false
	for sc.Scan() {
		line := sc.Bytes()
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 {
			break // the blank line ending the header
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, ok := bytes.Cut(trimmed, []byte(":"))
			keep = ok && want(string(bytes.TrimSpace(name)))
		}
		if keep {
			out.Write(trimmed)
			out.WriteString("\r\n")
		}
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

// scanCRLFLines splits after each LF, keeping the line ending.
func scanCRLFLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// binarySection is a section decoded from its content transfer encoding (RFC 3516).
type binarySection struct {
	open0 func() io.Reader
	size  int64
}

// newBinarySection finds a part for BINARY[part] and measures it decoded. BINARY[] and a
// multipart or message part are sent as they are stored.
func newBinarySection(body store.Body, m *store.Metadata, path []int) (binarySection, error) {
	sp := span{0, m.Size}
	encoding := ""
	if len(path) > 0 {
		p, ok := findPart(&m.Structure, path)
		if !ok {
			return binarySection{open0: func() io.Reader { return strings.NewReader("") }}, nil
		}
		sp = span{p.BodyStart, p.End}
		if !strings.EqualFold(p.Type, "multipart") && !isMessageRFC822(p) {
			encoding = strings.ToLower(p.Encoding)
		}
	}
	sp.start, sp.end = clamp(sp.start, body.Size()), clamp(sp.end, body.Size())
	if sp.end < sp.start {
		sp.end = sp.start
	}
	raw := func() io.Reader { return io.NewSectionReader(body, sp.start, sp.end-sp.start) }
	var open func() io.Reader
	switch encoding {
	case "", "7bit", "8bit", "binary":
		return binarySection{open0: raw, size: sp.end - sp.start}, nil
	case "base64":
		open = func() io.Reader { return base64.NewDecoder(base64.StdEncoding, base64Filter{raw()}) }
	case "quoted-printable":
		open = func() io.Reader { return quotedprintable.NewReader(raw()) }
	default:
		return binarySection{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnknownCTE,
			Text: "Cannot decode content transfer encoding " + encoding}
	}
	size, err := io.Copy(io.Discard, open())
	if err != nil {
		return binarySection{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnknownCTE,
			Text: "The part is not valid " + encoding}
	}
	return binarySection{open0: open, size: size}, nil
}

func (b binarySection) open(p *imap.SectionPartial) (io.Reader, int64) {
	r, size, err := partial(b.open0(), b.size, p)
	if err != nil {
		return strings.NewReader(""), 0
	}
	return r, size
}

// base64Filter drops what base64.StdEncoding does not accept inside a MIME body besides
// line breaks: spaces and tabs that some mailers leave at line ends.
type base64Filter struct{ r io.Reader }

func (f base64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil || n == 0 {
			return j, err
		}
	}
}

// --- the commands of this file (command.go has the table)

// FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8).
func handleFetch(s *session, cmd *command) error {
	a := cmd.args.(*fetchArgs)
	if a.vanished && !s.qresyncEnabled() {
		return errQresyncNotEnabled // RFC 7162 §3.2.6
	}
	if a.options.ModSeq { // MODSEQ or CHANGEDSINCE: CONDSTORE-enabling (RFC 7162 §3.1)
		if err := s.enableCondStore(); err != nil {
			return err
		}
	}
	if a.vanished {
		if err := s.fetchVanished(a.nums, a.options.ChangedSince); err != nil {
			return err
		}
	}
	return s.Fetch(&fetchWriter{w: s.out, args: a}, a.nums, &a.options)
}
