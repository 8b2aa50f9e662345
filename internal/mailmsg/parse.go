package mailmsg

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"slices"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// Bounds that keep a hostile or broken message from costing more than it is worth. A
// message beyond them is still stored whole; only its description is cut short. New mail
// is refused earlier, at its header size and nesting, by Limits (Options).
const (
	maxDepth       = 64      // MIME nesting: deeper multiparts are described as text/plain
	maxParts       = 2000    // MIME parts described; further siblings are left out
	maxHeaderBytes = 1 << 20 // header octets of one part kept for parsing
	maxTextBytes   = 1 << 20 // decoded text kept for SEARCH
)

// Limits are the shapes new mail is refused for (the store's Options.MaxHeaderSize and
// MaxMIMEDepth), checked as the message streams through the parser; a zero field refuses
// nothing. Migrated mail is parsed without them (the store's SpoolOptions).
type Limits struct {
	HeaderSize int64 // octets of one header section, without the blank line ending it
	MIMEDepth  int   // levels of multipart and message/rfc822 the parser descends into
}

// Parsed is what delivery computes once from a stored message (see store.Metadata).
type Parsed struct {
	Structure  Part
	Envelope   Envelope
	HeaderSize int64
	Lines      int64
	Header     string // the raw top-level header
	Text       string // decoded text of the text/* parts, for SEARCH
	Preview    string // RFC 8970 preview text (preview.go)
}

// Encode gives the envelope (envelope.go's encoding) and the structure (JSON) as stored.
func (md *Parsed) Encode() (env, structure []byte, err error) {
	env = encodeEnvelope(&md.Envelope) // envelope.go
	if structure, err = json.Marshal(md.Structure); err != nil {
		return nil, nil, fmt.Errorf("encode structure: %w", err)
	}
	return env, structure, nil
}

// WithPrepend describes prepend (header lines, CRLF-terminated) followed by the message md
// describes: offsets move by len(prepend), and the prepended lines join the top header.
func (md *Parsed) WithPrepend(prepend []byte) *Parsed {
	n := int64(len(prepend))
	out := *md
	out.Structure = shiftPart(md.Structure, n)
	out.Structure.HeaderStart = 0
	out.HeaderSize += n
	out.Lines += int64(bytes.Count(prepend, []byte("\n")))
	out.Header = string(prepend) + md.Header
	return &out
}

// shiftPart returns a deep copy of p with every offset moved by n.
func shiftPart(p Part, n int64) Part {
	p.HeaderStart += n
	p.BodyStart += n
	p.End += n
	if p.Children != nil {
		children := make([]Part, len(p.Children))
		for i, c := range p.Children {
			children[i] = shiftPart(c, n)
		}
		p.Children = children
	}
	if p.Message != nil {
		m := shiftPart(*p.Message, n)
		p.Message = &m
	}
	return p
}

// Parse describes the CRLF-normalised message read from r in one streaming pass
// over its lines: the MIME tree and its offsets. Malformed MIME never fails: what cannot be
// understood is described as text/plain. It refuses ErrNotMessage, for input without a
// header, and a message beyond lim (a *ContentLimitError), at the line that crosses the
// limit, reading no further than the parser's buffer beyond it. Otherwise r is read to its
// end. The decoded text (Parsed.Text) is left to ExtractText, once the message is spooled.
// With anyOctets (SpoolOptions.AnyOctets) input without a header is described as a message
// whose header section is empty, not refused.
func Parse(r io.Reader, lim Limits, anyOctets bool) (*Parser, *Parsed, error) {
	p := &Parser{s: &lineScanner{r: bufio.NewReaderSize(r, 64<<10), atStart: true}, lim: lim}
	top, h, fields := p.entity(0, nil, false)
	if err := p.s.err; err != nil {
		if cle := (*ContentLimitError)(nil); errors.As(err, &cle) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("read message: %w", err)
	}
	if fields == 0 && !anyOctets {
		return nil, nil, ErrNotMessage
	}
	md := &Parsed{
		Structure:  top,
		Envelope:   envelopeOf(h),
		HeaderSize: top.BodyStart,
		Lines:      p.s.crlfs,
		Header:     string(p.topHeader),
	}
	if !p.s.atStart && p.s.off > 0 {
		md.Lines++
	}
	return p, md, nil
}

// lineScanner reads a message line by line (a line longer than the buffer comes in
// fragments), keeping the offsets and line counts that Part needs. A line is looked at
// (peek) before it is taken (consume), so that a MIME part can stop at a boundary line and
// leave it to the enclosing multipart.
type lineScanner struct {
	r        *bufio.Reader
	err      error
	off      int64 // offset of the first byte not consumed
	crlfs    int64 // line ends consumed
	atStart  bool  // off is at the start of a line
	lineFrom int64 // where the line being consumed began
	lastLine int64 // where the last complete line consumed began

	line   []byte // peeked, valid until the next peek after consume
	lineAt bool   // line starts a line (is not the continuation of a long one)
	has    bool
}

// peek returns the next line (or fragment), empty at the end or after an error.
func (s *lineScanner) peek() (line []byte, atStart bool) {
	if s.err != nil {
		return nil, false
	}
	if !s.has {
		l, err := s.r.ReadSlice('\n')
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			s.err, l = err, nil
		}
		s.line, s.lineAt, s.has = l, s.atStart, true
	}
	return s.line, s.lineAt
}

// stop ends the scan with err: from now on the message seems to end here, so that the
// parse unwinds at once and nothing more is read.
func (s *lineScanner) stop(err error) {
	if s.err == nil {
		s.err = err
	}
	s.line, s.has = nil, false
}

func (s *lineScanner) consume() {
	l := s.line
	s.has = false
	if s.lineAt {
		s.lineFrom = s.off
	}
	s.off += int64(len(l))
	s.atStart = len(l) > 0 && l[len(l)-1] == '\n'
	if s.atStart {
		s.crlfs++
		s.lastLine = s.lineFrom
	}
}

// finish computes where a part's body that began at bodyStart (after crlfsAtStart line
// ends) ends, and its line count. If the scanner stopped at a boundary line (cut), the CRLF
// before it belongs to the delimiter, not to the part (RFC 2046 §5.1.1).
func (s *lineScanner) finish(bodyStart, crlfsAtStart int64, cut bool) (end, lines int64) {
	if !cut {
		lines = s.crlfs - crlfsAtStart
		if s.off > bodyStart && !s.atStart {
			lines++
		}
		return s.off, lines
	}
	end = s.off - 2
	if end < bodyStart { // the delimiter's CRLF was the one ending the header
		return bodyStart, 0
	}
	lines = s.crlfs - crlfsAtStart - 1
	if end > s.lastLine { // the last line has text before the CRLF given to the delimiter
		lines++
	}
	return end, lines
}

// matchBoundary reports which of bounds (innermost last) line delimits, and whether it is
// the closing delimiter; -1 if none.
func matchBoundary(line []byte, bounds []string) (idx int, closing bool) {
	if len(bounds) == 0 || len(line) < 3 || line[0] != '-' || line[1] != '-' {
		return -1, false
	}
	l := bytes.TrimRight(line[2:], " \t\r\n")
	for i := len(bounds) - 1; i >= 0; i-- {
		b := bounds[i]
		if len(l) < len(b) || string(l[:len(b)]) != b {
			continue
		}
		switch string(l[len(b):]) {
		case "":
			return i, false
		case "--":
			return i, true
		}
	}
	return -1, false
}

type textPart struct {
	header      textproto.Header
	start, end  int64
	subtype     string // Part.Subtype: "plain", "html", ...
	disposition string // Part.Disposition: "", "inline", "attachment", ...
}

// Parser is a message's parse, kept after Parse to read its text parts again (ExtractText,
// Preview) from the spooled octets.
type Parser struct {
	s         *lineScanner
	lim       Limits
	parts     int
	topHeader []byte
	texts     []textPart
}

// entity describes the MIME entity starting at the scanner's position and ending at one of
// bounds (or the end). It returns the part, its parsed header and its number of fields.
func (p *Parser) entity(depth int, bounds []string, digest bool) (Part, textproto.Header, int) {
	s := p.s
	part := Part{HeaderStart: s.off}
	raw, fields := p.header(bounds)
	if depth == 0 {
		p.topHeader = raw
	}
	part.BodyStart = s.off
	h := parseHeader(raw)
	describe(&part, h, digest)
	p.parts++
	crlfs := s.crlfs

	var cut bool
	switch {
	case part.Type == "multipart":
		boundary := part.Params["boundary"]
		// nestingAllowed stops the scan (and so the parse) when the nesting limit refuses a
		// multipart the parser would otherwise descend into.
		if boundary == "" || p.parts >= maxParts || !p.nestingAllowed(depth) || depth >= maxDepth {
			cut = p.skipTo(bounds) >= 0
		} else {
			cut = p.multipart(&part, depth, bounds, boundary)
		}
		if len(part.Children) == 0 {
			asPlainText(&part)
		}
	case isEncapsulated(part) && p.parts < maxParts && p.nestingAllowed(depth) && depth < maxDepth:
		child, ch, _ := p.entity(depth+1, bounds, false)
		env := envelopeOf(ch)
		part.Message, part.Envelope = &child, &env
		cut = p.atBoundary(bounds)
	default:
		cut = p.skipTo(bounds) >= 0
	}
	part.End, part.Lines = s.finish(part.BodyStart, crlfs, cut)
	// A child cut by a delimiter right at the end of its header (or with no header at all)
	// ends after the CRLF that finish gives the delimiter: the same CRLF ended the child's
	// header. The enclosing part must not end before its child (found by FuzzParse).
	if n := len(part.Children); n > 0 {
		part.End = max(part.End, part.Children[n-1].End)
	}
	if part.Message != nil {
		part.End = max(part.End, part.Message.End)
	}
	part.Size = part.End - part.BodyStart
	switch {
	case part.Type == "text":
		p.texts = append(p.texts, textPart{header: h, start: part.BodyStart, end: part.End,
			subtype: part.Subtype, disposition: part.Disposition})
	case part.Message == nil:
		part.Lines = 0 // IMAP gives line counts for text/* and message/rfc822 only
	}
	return part, h, fields
}

// nestingAllowed reports whether the limit on nesting lets the parser descend into a
// multipart or message/rfc822 at depth (0: the message itself), which would be nesting
// level depth+1. If not, it stops the scan with ErrNestingTooDeep.
func (p *Parser) nestingAllowed(depth int) bool {
	if p.lim.MIMEDepth > 0 && depth >= p.lim.MIMEDepth {
		p.s.stop(&ContentLimitError{Err: ErrNestingTooDeep, Limit: int64(p.lim.MIMEDepth)})
		return false
	}
	return true
}

// header consumes a part's header, through the blank line that ends it. A header also ends,
// without a blank line, at a boundary or at a line that is no header field (the body then
// starts there). Under a header size limit it stops the scan with ErrHeaderTooBig before
// consuming the line (or fragment of a long line) that crosses it.
func (p *Parser) header(bounds []string) (raw []byte, fields int) {
	var size int64
	for {
		line, atStart := p.s.peek()
		if len(line) == 0 {
			return raw, fields
		}
		if atStart {
			if string(line) == "\r\n" {
				p.s.consume()
				return raw, fields
			}
			if idx, _ := matchBoundary(line, bounds); idx >= 0 {
				return raw, fields
			}
			switch {
			case line[0] == ' ' || line[0] == '\t':
				if fields == 0 { // a header cannot begin with a continuation line
					return raw, fields
				}
			case isHeaderField(line):
				fields++
			default:
				return raw, fields
			}
		}
		size += int64(len(line))
		if p.lim.HeaderSize > 0 && size > p.lim.HeaderSize {
			p.s.stop(&ContentLimitError{Err: ErrHeaderTooBig, Limit: p.lim.HeaderSize})
			return raw, fields
		}
		if len(raw)+len(line) <= maxHeaderBytes {
			raw = append(raw, line...)
		}
		p.s.consume()
	}
}

// isHeaderField reports whether line starts with a field name and a colon (tolerating
// spaces before the colon, as old software wrote them).
func isHeaderField(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

func parseHeader(raw []byte) textproto.Header {
	// The header lines were checked already; a field go-message still rejects ends the
	// header there, which is the best that can be done with it.
	h, _ := textproto.ReadHeader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw), strings.NewReader("\r\n"))))
	return h
}

// multipart describes the body parts of a multipart entity and consumes it through its
// epilogue. It reports whether it stopped at an enclosing boundary.
func (p *Parser) multipart(part *Part, depth int, bounds []string, boundary string) (cut bool) {
	inner := append(slices.Clip(bounds), boundary)
	me := len(inner) - 1
	digest := part.Subtype == "digest"
	idx, closing := p.skipToDelimiter(inner) // the preamble
	for idx == me && !closing {
		p.s.consume() // the delimiter line
		if p.parts >= maxParts {
			idx, closing = p.skipToDelimiter(inner)
			continue
		}
		child, _, _ := p.entity(depth+1, inner, digest)
		part.Children = append(part.Children, child)
		idx, closing = p.peekDelimiter(inner)
	}
	if idx == me && closing {
		p.s.consume()
		return p.skipTo(bounds) >= 0 // the epilogue
	}
	// An enclosing delimiter or the end of the message: this multipart was not closed.
	return idx >= 0
}

func (p *Parser) skipTo(bounds []string) int {
	idx, _ := p.skipToDelimiter(bounds)
	return idx
}

func (p *Parser) skipToDelimiter(bounds []string) (idx int, closing bool) {
	for {
		line, atStart := p.s.peek()
		if len(line) == 0 {
			return -1, false
		}
		if atStart {
			if idx, closing := matchBoundary(line, bounds); idx >= 0 {
				return idx, closing
			}
		}
		p.s.consume()
	}
}

func (p *Parser) peekDelimiter(bounds []string) (idx int, closing bool) {
	line, atStart := p.s.peek()
	if len(line) == 0 || !atStart {
		return -1, false
	}
	return matchBoundary(line, bounds)
}

func (p *Parser) atBoundary(bounds []string) bool {
	idx, _ := p.peekDelimiter(bounds)
	return idx >= 0
}

// isEncapsulated reports whether part encloses a message that is described in turn. An
// encoded message/rfc822 (not allowed, but seen) is left opaque.
func isEncapsulated(part Part) bool {
	return part.Type == "message" && part.Subtype == "rfc822" &&
		(part.Encoding == "7BIT" || part.Encoding == "8BIT" || part.Encoding == "BINARY")
}

// describe fills part's MIME fields from its header. In a multipart/digest the default
// type is message/rfc822 (RFC 2046 §5.1.5), elsewhere text/plain; us-ascii.
func describe(part *Part, h textproto.Header, digest bool) {
	part.Type, part.Subtype, part.Params = "text", "plain", map[string]string{"charset": "us-ascii"}
	if digest {
		part.Type, part.Subtype, part.Params = "message", "rfc822", nil
	}
	if v := h.Get("Content-Type"); v != "" {
		if mt, params, ok := parseMediaType(v); ok {
			if typ, sub, ok := strings.Cut(mt, "/"); ok && isToken(typ) && isToken(sub) {
				part.Type, part.Subtype, part.Params = typ, sub, params
			}
		}
	}
	part.ID = h.Get("Content-Id")
	part.Description = h.Get("Content-Description")
	part.Encoding = strings.ToUpper(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	if part.Encoding == "" || !isToken(part.Encoding) {
		part.Encoding = "7BIT"
	}
	part.MD5 = h.Get("Content-Md5")
	if v := h.Get("Content-Disposition"); v != "" {
		if d, params, ok := parseMediaType(v); ok && isToken(d) {
			part.Disposition, part.DispositionParams = d, params
		}
	}
	if v := h.Get("Content-Language"); v != "" {
		for l := range strings.SplitSeq(v, ",") {
			if l = strings.TrimSpace(l); l != "" {
				part.Language = append(part.Language, l)
			}
		}
	}
	part.Location = h.Get("Content-Location")
}

// parseMediaType parses a Content-Type or Content-Disposition value leniently: when the
// parameters are broken, the value before them is still used.
func parseMediaType(v string) (string, map[string]string, bool) {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil || mt != "" {
		return mt, params, mt != ""
	}
	mt, _, _ = strings.Cut(v, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt, nil, mt != ""
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// asPlainText turns a multipart that could not be split into parts into a text/plain leaf.
func asPlainText(part *Part) {
	part.Type, part.Subtype = "text", "plain"
	part.Params = map[string]string{"charset": "us-ascii"}
	part.Children = nil
}

// ExtractText decodes (transfer encoding, then charset to UTF-8) the text parts, up to
// maxTextBytes in all. Undecodable input gives what could be decoded.
func (p *Parser) ExtractText(r io.ReaderAt) string {
	var b strings.Builder
	budget := int64(maxTextBytes)
	for _, t := range p.texts {
		if budget <= 0 {
			break
		}
		ent, _ := message.New(message.Header{Header: t.header}, io.NewSectionReader(r, t.start, t.end-t.start))
		if ent == nil {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
			budget--
		}
		n, _ := io.Copy(&b, io.LimitReader(ent.Body, budget))
		budget -= n
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// --- envelope ---

var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeText decodes RFC 2047 encoded words; undecodable text is kept as it is.
func decodeText(s string) string {
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		s = d
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func envelopeOf(h textproto.Header) Envelope {
	var env Envelope
	if d := h.Get("Date"); d != "" {
		if t, err := netmail.ParseDate(d); err == nil {
			env.Date = t
		}
	}
	env.Subject = decodeText(h.Get("Subject"))
	env.From = addressList(h.Get("From"))
	env.Sender = addressList(h.Get("Sender"))
	env.ReplyTo = addressList(h.Get("Reply-To"))
	env.To = addressList(h.Get("To"))
	env.Cc = addressList(h.Get("Cc"))
	env.Bcc = addressList(h.Get("Bcc"))
	// RFC 3501 §7.4.2: the server defaults Sender and Reply-To to From.
	if len(env.Sender) == 0 {
		env.Sender = env.From
	}
	if len(env.ReplyTo) == 0 {
		env.ReplyTo = env.From
	}
	env.InReplyTo = ParseMessageIDs(h.Get("In-Reply-To"))
	if ids := ParseMessageIDs(h.Get("Message-Id")); len(ids) > 0 {
		env.MessageID = ids[0]
	} else {
		env.MessageID = strings.TrimSpace(h.Get("Message-Id"))
	}
	return env
}

// ParseMessageIDs returns the msg-ids of a Message-ID, References or In-Reply-To header
// field value, in order, each with its angle brackets: every "<...>" token, so that
// comments, folding and phrases between them (obs-in-reply-to, RFC 5322 §4.5.4) are
// skipped.
func ParseMessageIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return ids
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return ids
		}
		ids = append(ids, v[i:i+j+1])
		v = v[i+j+1:]
	}
}

// Placeholders for what an unparseable address lacks, as Dovecot writes them: an address
// without a host would read as group syntax in an IMAP ENVELOPE.
const (
	missingMailbox = "MISSING_MAILBOX"
	missingDomain  = "MISSING_DOMAIN"
)

// addressList parses an address list leniently (address.go), groups and routes included.
func addressList(v string) []Address {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	return parseAddressList(v) // address.go
}
