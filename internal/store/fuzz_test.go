package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

// FuzzParse sends arbitrary octets through the store's spool path (CRLF normalisation,
// size limit, MIME description) and checks what delivery would store:
//
//   - as migrated mail (import): nothing panics, and the only refusal is ErrNotMessage;
//   - the spooled octets are the input with every line ending made CRLF (and no line
//     ending added or dropped at the end), and Size is their length;
//   - every MIME part has HeaderStart <= BodyStart <= End, Size = End - BodyStart, lies
//     within its parent's body, and siblings follow each other without overlapping; the
//     top-level part spans the whole message;
//   - the message's line count is its number of CRLFs, and the metadata encodes;
//   - as new mail, under small content limits (so that the fuzzer reaches them): the
//     message is refused with a *ContentLimitError exactly when... see checkNewMail.
//
// Seeds: malformed, truncated, deeply nested and long-header messages; crashers found by
// `go test -fuzz` are kept in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, seed := range parseSeeds() {
		f.Add([]byte(seed))
	}
	s := openStoreWith(f, Options{MaxHeaderSize: 200, MaxMIMEDepth: 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		if _, err := checkSpool(s, in); err != nil {
			t.Fatalf("%v\ninput: %.300q", err, in)
		}
	})
}

func openStoreWith(t testing.TB, opts Options) *Store {
	t.Helper()
	opts.Logger = quietLogger()
	dir := t.TempDir()
	s, err := Open(dir, testOptions(t, dir, opts))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestParseHostileShapes runs FuzzParse's checks on inputs too big to be good fuzz seeds:
// a header beyond mailmsg.MaxHeaderBytes, nesting far beyond mailmsg.MaxDepth, more parts than mailmsg.MaxParts.
// Imported (migrated), each is stored whole and described within the parse bounds; as new
// mail, under the default limits, the first four are refused.
func TestParseHostileShapes(t *testing.T) {
	s := newStore(t) // the default limits: 1 MiB of header, 64 levels
	hugeHeader := "Subject: " + strings.Repeat("x", mailmsg.MaxHeaderBytes+1000) + "\r\n\r\nbody\r\n"
	manyFields := strings.Repeat("X-Filler: yes\r\n", 100000) + "\r\nbody\r\n"
	var many strings.Builder
	many.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range mailmsg.MaxParts + 100 {
		many.WriteString("--b\r\n\r\npart\r\n")
	}
	many.WriteString("--b--\r\n")
	for name, c := range map[string]struct {
		in   string
		want error // as new mail
	}{
		"huge header":      {hugeHeader, ErrHeaderTooBig},
		"many fields":      {manyFields, ErrHeaderTooBig},
		"nested 1000":      {nestedMultipart(1000, true), ErrNestingTooDeep},
		"nested 1000 open": {nestedMultipart(1000, false), ErrNestingTooDeep},
		"rfc822 1000":      {nestedRFC822(1000), ErrNestingTooDeep},
		"many parts":       {many.String(), nil},
	} {
		newErr, err := checkSpool(s, []byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !errors.Is(newErr, c.want) || (c.want == nil && newErr != nil) {
			t.Errorf("%s as new mail: %v, want %v", name, newErr, c.want)
		}
	}
}

func parseSeeds() []string {
	return []string{
		"Subject: hi\r\n\r\nbody\r\n",
		"Subject: no final newline",
		"From: a@b\n\nbare LF body\nline\n",
		"From: a@b\r\rbare CR\r",
		"\r\n\r\nno header at all",
		"not a header line\r\n",
		"Subject: folded\r\n continued\r\n\tmore\r\n\r\n",
		// Truncated multiparts: no closing delimiter, a delimiter cut mid-line, no body at all.
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\n\r\ntwo",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\nepilogue\r\n",
		"Content-Type: multipart/mixed\r\n\r\nno boundary\r\n",
		"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n--b\r\n--b--\r\n",
		// Delimiters right after the header, with trailing space, of an outer boundary.
		"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\ninner\r\n--o  \r\n\r\nouter\r\n--o--\r\n",
		"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in digest\r\n\r\nx\r\n--d--\r\n",
		"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\nq\r\n",
		"Content-Type: message/rfc822\r\n\r\n",
		"Content-Type: text/plain; charset=\"bogus\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n",
		"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n",
		"Content-Type: ;;;=\"\r\nContent-Disposition: attachment; filename*=utf-8''%ff\r\n\r\nx\r\n",
		"From: \"unterminated <a@b\r\nTo: ,,,@,<>\r\nMessage-ID: <<>>\r\nIn-Reply-To: <a@b> junk <c\r\nDate: yesterday\r\n\r\n",
		"Subject: =?utf-8?B?////?= =?x?Q?_?=\r\n\r\n",
		"Subject: " + strings.Repeat("h", 70<<10) + "\r\n\r\nlong header line\r\n",
		// FuzzParse's find: a part whose header's blank line is the CRLF before an outer
		// delimiter ended after its parent (testdata/fuzz/FuzzParse/child-ends-after-parent).
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n--a--\r\n",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--a--\r\n",
		"Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX: y\r\n\r\n",
		nestedMultipart(200, true),
		nestedMultipart(200, false),
		nestedRFC822(200),
	}
}

// nestedMultipart is depth multiparts inside each other, each closed or left open.
func nestedMultipart(depth int, closed bool) string {
	var b strings.Builder
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
	if closed {
		for i := depth - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
	}
	return b.String()
}

// nestedRFC822 is depth message/rfc822 parts inside each other.
func nestedRFC822(depth int) string {
	var b strings.Builder
	for i := range depth {
		fmt.Fprintf(&b, "Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n", i)
	}
	b.WriteString("Subject: bottom\r\n\r\nbody\r\n")
	return b.String()
}

// normalize is the reference CRLF normalisation: CRLF, bare LF and bare CR each become
// CRLF; nothing else changes, an unterminated last line included.
func normalize(in []byte) []byte {
	var out []byte
	for i := 0; i < len(in); i++ {
		switch c := in[i]; c {
		case '\r':
			if i+1 < len(in) && in[i+1] == '\n' {
				i++
			}
			out = append(out, '\r', '\n')
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// checkSpool spools in as migrated mail and checks the invariants FuzzParse names, then as
// new mail (checkNewMail), whose verdict it returns.
func checkSpool(s *Store, in []byte) (newErr error, err error) {
	want := normalize(in)
	sp, err := s.Spool(bytes.NewReader(in), SpoolOptions{Migrated: true})
	if err != nil {
		if errors.Is(err, ErrNotMessage) {
			if _, nerr := s.Spool(bytes.NewReader(in), SpoolOptions{}); !errors.Is(nerr, ErrNotMessage) && !isContentLimit(nerr) {
				return nerr, fmt.Errorf("not a message when migrated, as new mail: %v", nerr)
			}
			return nil, nil
		}
		return nil, fmt.Errorf("Spool: %w", err)
	}
	defer sp.Close()
	if sp.Size() != int64(len(want)) {
		return nil, fmt.Errorf("Size = %d, normalised input is %d octets", sp.Size(), len(want))
	}
	got := make([]byte, sp.Size())
	if _, err := sp.data.ReadAt(got, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("spooled octets differ from the normalised input")
	}
	md := sp.md
	top := md.Structure
	if top.HeaderStart != 0 || top.End != sp.Size() {
		return nil, fmt.Errorf("top part spans %d..%d, message is 0..%d", top.HeaderStart, top.End, sp.Size())
	}
	if md.HeaderSize != top.BodyStart {
		return nil, fmt.Errorf("headerSize %d != top BodyStart %d", md.HeaderSize, top.BodyStart)
	}
	n := int64(bytes.Count(want, []byte("\r\n")))
	if len(want) > 0 && !bytes.HasSuffix(want, []byte("\r\n")) {
		n++ // the unterminated last line
	}
	if md.Lines != n {
		return nil, fmt.Errorf("lines = %d, message has %d lines", md.Lines, n)
	}
	if err := checkPart(top, 0, sp.Size(), "TEXT", want); err != nil {
		return nil, err
	}
	if _, _, err := md.Encode(); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return checkNewMail(s, in, sp)
}

func isContentLimit(err error) bool {
	var cle *ContentLimitError
	return errors.As(err, &cle)
}

// checkNewMail spools in as new mail, migrated being the same input spooled as migrated
// mail, and checks the verdict against the description of migrated (which has every part
// the parser looked at):
//
//   - accepted: no described header section is above the header limit, no multipart or
//     message/rfc822 is described at a depth at or below the nesting limit, and the spool
//     and its description are exactly those of migrated mail;
//   - refused for the header: some described header section is above the limit.
//
// (A refusal for nesting is not checked against the description: a multipart whose
// delimiters never come is refused as nesting but described as text/plain.)
func checkNewMail(s *Store, in []byte, migrated *Spooled) (newErr error, err error) {
	var hdr, depth int64
	walkParts(migrated.md.Structure, 0, func(p Part, d int) {
		hdr = max(hdr, headerSection(p, migrated))
		if len(p.Children) > 0 || p.Message != nil {
			depth = max(depth, int64(d)+1)
		}
	})
	sp, newErr := s.Spool(bytes.NewReader(in), SpoolOptions{})
	lim := s.limits
	switch {
	case newErr == nil:
		defer sp.Close()
		if lim.HeaderSize > 0 && hdr > lim.HeaderSize {
			return nil, fmt.Errorf("new mail accepted with a header section of %d octets, limit %d", hdr, lim.HeaderSize)
		}
		if lim.MIMEDepth > 0 && depth > int64(lim.MIMEDepth) {
			return nil, fmt.Errorf("new mail accepted with %d levels of nesting, limit %d", depth, lim.MIMEDepth)
		}
		a, b := make([]byte, sp.Size()), make([]byte, migrated.Size())
		sp.data.ReadAt(a, 0)
		migrated.data.ReadAt(b, 0)
		e1, s1, _ := sp.md.Encode()
		e2, s2, _ := migrated.md.Encode()
		if !bytes.Equal(a, b) || !bytes.Equal(e1, e2) || !bytes.Equal(s1, s2) || sp.md.Text != migrated.md.Text || sp.md.Header != migrated.md.Header || sp.md.Lines != migrated.md.Lines {
			return nil, fmt.Errorf("new mail spooled or described differently from migrated mail")
		}
	case errors.Is(newErr, ErrHeaderTooBig):
		if hdr <= lim.HeaderSize {
			return newErr, fmt.Errorf("new mail refused (%v), but its largest header section is %d octets", newErr, hdr)
		}
	case errors.Is(newErr, ErrNestingTooDeep):
	default:
		return newErr, fmt.Errorf("new mail: unexpected refusal %v", newErr)
	}
	return newErr, nil
}

// walkParts calls fn for p and every part inside it, with its depth (0: the message).
func walkParts(p Part, depth int, fn func(Part, int)) {
	fn(p, depth)
	for _, c := range p.Children {
		walkParts(c, depth+1, fn)
	}
	if p.Message != nil {
		walkParts(*p.Message, depth+1, fn)
	}
}

// headerSection is the size of p's header section, without the blank line that ends it if
// it has one (the parser's count for the header limit).
func headerSection(p Part, sp *Spooled) int64 {
	n := p.BodyStart - p.HeaderStart
	if n < 2 {
		return n
	}
	b := make([]byte, 4)
	from := max(p.BodyStart-4, p.HeaderStart)
	b = b[:p.BodyStart-from]
	sp.data.ReadAt(b, from)
	// A blank line: CRLF at the header's start or right after another CRLF.
	if bytes.HasSuffix(b, []byte("\r\n")) && (len(b) == 2 || bytes.HasPrefix(b, []byte("\r\n"))) {
		return n - 2
	}
	return n
}

// checkPart checks p's offsets against the range [lo, hi) of its parent and recurses.
func checkPart(p Part, lo, hi int64, path string, msg []byte) error {
	if !(lo <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= hi) {
		return fmt.Errorf("part %s: offsets %d/%d/%d outside %d..%d or out of order",
			path, p.HeaderStart, p.BodyStart, p.End, lo, hi)
	}
	if p.Size != p.End-p.BodyStart {
		return fmt.Errorf("part %s: Size %d, End-BodyStart %d", path, p.Size, p.End-p.BodyStart)
	}
	if p.Lines < 0 || p.Lines > int64(bytes.Count(msg[p.BodyStart:p.End], []byte("\n")))+1 {
		return fmt.Errorf("part %s: Lines %d for a body of %q", path, p.Lines, msg[p.BodyStart:p.End])
	}
	if p.Type == "multipart" && len(p.Children) == 0 {
		return fmt.Errorf("part %s: multipart without children", path)
	}
	prev := p.BodyStart
	for i, c := range p.Children {
		if c.HeaderStart < prev {
			return fmt.Errorf("part %s.%d starts at %d, before the end of its sibling (%d)", path, i+1, c.HeaderStart, prev)
		}
		if err := checkPart(c, p.BodyStart, p.End, fmt.Sprintf("%s.%d", path, i+1), msg); err != nil {
			return err
		}
		prev = c.End
	}
	if p.Message != nil {
		if err := checkPart(*p.Message, p.BodyStart, p.End, path+".RFC822", msg); err != nil {
			return err
		}
	}
	return nil
}
