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
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/letterbox-mail/letterbox/store"
)

// fetchBatch is how many messages one store read covers, so that FETCH 1:* of a large
// mailbox never holds all its metadata at once.
const fetchBatch = 256

// maxHeaderFields bounds the header block read into memory for HEADER.FIELDS.
const maxHeaderFields = 4 << 20

// Fetch answers FETCH and UID FETCH (RFC 3501 §6.4.5). Flags, dates and sizes come from
// the message rows, ENVELOPE and BODYSTRUCTURE from the delivery-time metadata, and body
// sections are streamed from the stored message at the offsets that metadata records.
// A non-PEEK body section sets \Seen, unless the mailbox is read-only, and the new flags
// are sent in the same FETCH response.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	v, err := s.lockSelected()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()

	needBody := len(options.BodySection) > 0 || len(options.BinarySection) > 0
	// The metadata (decoded from JSON per message) is read only when something needs it:
	// BODY[] and RFC822 of the whole message need just its size, which every row has.
	needMeta := options.Envelope || options.BodyStructure != nil || len(options.BinarySectionSize) > 0 ||
		len(options.BinarySection) > 0
	for _, bs := range options.BodySection {
		needMeta = needMeta || len(bs.Part) > 0 || bs.Specifier != imap.PartSpecifierNone
	}
	markSeen := false
	if !v.readOnly {
		for _, bs := range options.BodySection {
			markSeen = markSeen || !bs.Peek
		}
		for _, bs := range options.BinarySection {
			markSeen = markSeen || !bs.Peek
		}
	}

	return s.eachMessage(v, v.resolve(numSet), needMeta, func(batch []msgRef, metas map[uint32]*store.Metadata) error {
		seen := map[uint32][]string{}
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
				}
			}
		}
		for _, ref := range batch {
			m := metas[ref.uid]
			if m == nil {
				continue // expunged meanwhile; the change log will tell
			}
			if f, ok := seen[ref.uid]; ok {
				m.Flags = f
			}
			if err := s.fetchOne(w, v, ref, m, options, needBody, seen[ref.uid] != nil); err != nil {
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
	for len(refs) > 0 {
		batch := refs[:min(len(refs), fetchBatch)]
		refs = refs[len(batch):]
		uids := make([]uint32, len(batch))
		for i, r := range batch {
			uids[i] = r.uid
		}
		ranges := uidRanges(uids)
		metas := make(map[uint32]*store.Metadata, len(batch))
		if withMeta {
			list, err := s.st.Metadata(s.ctx, v.mbox.ID, ranges...)
			if err != nil {
				return s.storeError(err, "reading messages")
			}
			for i := range list {
				metas[list[i].UID] = &list[i]
			}
		} else {
			list, err := s.st.Messages(s.ctx, v.mbox.ID, ranges...)
			if err != nil {
				return s.storeError(err, "reading messages")
			}
			for i := range list {
				metas[list[i].UID] = &store.Metadata{Message: list[i]}
			}
		}
		if err := fn(batch, metas); err != nil {
			return err
		}
	}
	return nil
}

// fetchOne writes the FETCH response of one message.
func (s *session) fetchOne(w *imapserver.FetchWriter, v *selected, ref msgRef, m *store.Metadata,
	options *imap.FetchOptions, needBody, flagsChanged bool) error {
	var body store.Body
	if needBody {
		b, err := s.st.OpenMessage(s.ctx, v.mbox.ID, ref.uid)
		if errors.Is(err, store.ErrNoSuchMessage) {
			return nil // expunged meanwhile
		} else if err != nil {
			return s.storeError(err, "reading a message")
		}
		body = b
		defer body.Close()
	}
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

	rw := w.CreateMessage(ref.seq)
	if options.UID {
		rw.WriteUID(imap.UID(ref.uid))
	}
	if options.Flags || flagsChanged {
		rw.WriteFlags(imapFlags(m.Flags))
		v.flags[ref.uid] = m.Flags
		v.noteKeywords(m.Flags)
	}
	if options.InternalDate {
		rw.WriteInternalDate(m.InternalDate)
	}
	if options.RFC822Size {
		rw.WriteRFC822Size(m.Size)
	}
	if options.Envelope {
		rw.WriteEnvelope(imapEnvelope(&m.Envelope))
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(imapBodyStructure(&m.Structure))
	}
	for _, bs := range options.BodySection {
		r, size, err := bodySection(body, m, bs)
		if err != nil {
			rw.Close()
			return err
		}
		if err := writeLiteral(rw.WriteBodySection(bs, size), r, size); err != nil {
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
