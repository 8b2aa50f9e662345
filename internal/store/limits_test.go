package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

// New mail beyond the content limits (Options.MaxHeaderSize, MaxMIMEDepth) is refused with a
// *ContentLimitError naming the limit, as it streams in; migrated mail is kept as it was.

// headerOf is a message whose header section (without the blank line) is n octets, in
// fields of at most 80 octets, followed by a one-line body.
func headerOf(n int) string {
	var b strings.Builder
	for n > 0 {
		line := min(n, 80)
		if line < len("X: \r\n") { // too short for a field of its own: lengthen the last
			s := b.String()
			b.Reset()
			b.WriteString(s[:len(s)-2] + strings.Repeat("y", line) + "\r\n")
			break
		}
		b.WriteString("X: " + strings.Repeat("x", line-len("X: \r\n")) + "\r\n")
		n -= line
	}
	return b.String() + "\r\nbody\r\n"
}

func TestContentLimits(t *testing.T) {
	const limit = 1000
	s := openStoreWith(t, Options{MaxHeaderSize: limit}) // MIME depth: the default, 64
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	part := func(header string) string { // a multipart whose second part has header
		return "Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n" +
			header + "\r\ntwo\r\n--b--\r\n"
	}
	cases := []struct {
		name string
		msg  string
		want error
	}{
		{"header at the limit", headerOf(limit), nil},
		{"header over the limit", headerOf(limit + 1), ErrHeaderTooBig},
		{"part header at the limit", part(strings.TrimSuffix(headerOf(limit), "\r\nbody\r\n")), nil},
		{"part header over the limit", part(strings.TrimSuffix(headerOf(limit+1), "\r\nbody\r\n")), ErrHeaderTooBig},
		{"one long header line over the limit", "Subject: " + strings.Repeat("s", 200<<10) + "\r\n\r\nbody\r\n", ErrHeaderTooBig},
		{"64 levels of multipart", nestedMultipart(64, true), nil},
		{"65 levels of multipart", nestedMultipart(65, true), ErrNestingTooDeep},
		{"65 levels of multipart, unclosed", nestedMultipart(65, false), ErrNestingTooDeep},
		{"64 levels of message/rfc822", nestedRFC822(64), nil},
		{"65 levels of message/rfc822", nestedRFC822(65), ErrNestingTooDeep},
		{"65 levels, multipart and message/rfc822 mixed", mixedNesting(65), ErrNestingTooDeep},
		{"64 levels, mixed", mixedNesting(64), nil},
	}
	for _, n := range []int{limit, limit + 1, 81, 83, 84} {
		if h, _, _ := strings.Cut(headerOf(n), "\r\n\r\n"); len(h)+2 != n {
			t.Fatalf("headerOf(%d) has a header section of %d octets", n, len(h)+2)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == nil {
				d := deliver(t, s, a.ID, c.msg, DeliverOptions{})
				if got := readMessage(t, s, d.MailboxID, d.UID); got != c.msg {
					t.Error("stored message differs")
				}
				return
			}
			before := len(mustMessages(t, s, in.ID))
			bodies := countRows(t, s, "bodies")
			_, err := s.Deliver(ctx, a.ID, strings.NewReader(c.msg), DeliverOptions{})
			var cle *ContentLimitError
			if !errors.Is(err, c.want) || !errors.As(err, &cle) {
				t.Fatalf("Deliver: %v, want %v in a *ContentLimitError", err, c.want)
			}
			wantLimit := int64(limit)
			if c.want == ErrNestingTooDeep {
				wantLimit = DefaultMaxMIMEDepth
			}
			if cle.Limit != wantLimit {
				t.Errorf("limit %d, want %d", cle.Limit, wantLimit)
			}
			if errors.Is(err, ErrTooBig) || errors.Is(err, ErrNotMessage) || errors.Is(err, ErrTemporary) {
				t.Errorf("%v also matches another refusal", err)
			}
			// Nothing stored, nothing left in the spool directory.
			if n := len(mustMessages(t, s, in.ID)); n != before || countRows(t, s, "bodies") != bodies {
				t.Errorf("refused message stored: %d messages, was %d", n, before)
			}
			if left, _ := os.ReadDir(s.tmpDir()); len(left) != 0 {
				t.Errorf("spool files left: %v", left)
			}
			// Migrated (import), the same message is kept as it was.
			d := deliver(t, s, a.ID, c.msg, DeliverOptions{Migrated: true})
			if got := readMessage(t, s, d.MailboxID, d.UID); got != c.msg {
				t.Error("migrated message stored differently")
			}
		})
	}

	// The 64 levels the default allows are all described: the store describes that deep.
	d := deliver(t, s, a.ID, nestedMultipart(64, true), DeliverOptions{})
	p := mustMetadata(t, s, d.MailboxID, d.UID).Structure
	for range 64 {
		if p.Type != "multipart" || len(p.Children) != 1 {
			t.Fatalf("level described as %s/%s", p.Type, p.Subtype)
		}
		p = p.Children[0]
	}
	if p.Type != "text" || p.Size != int64(len("deep")) { // the CRLF is the delimiter's
		t.Errorf("innermost part %s/%s of %d octets", p.Type, p.Subtype, p.Size)
	}
}

// mixedNesting is depth levels alternating multipart and message/rfc822.
func mixedNesting(depth int) string {
	var b strings.Builder
	for i := range depth {
		if i%2 == 0 {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"m%d\"\r\n\r\n--m%d\r\n", i, i)
		} else {
			b.WriteString("Content-Type: message/rfc822\r\n\r\n")
		}
	}
	b.WriteString("Subject: bottom\r\n\r\nbody\r\n")
	return b.String()
}

func TestContentLimitsOff(t *testing.T) {
	s := openStoreWith(t, Options{MaxHeaderSize: -1, MaxMIMEDepth: -1})
	a := newAccount(t, s, "alice")
	for _, msg := range []string{headerOf(mailmsg.MaxHeaderBytes + 100), nestedMultipart(200, true), nestedRFC822(200)} {
		d := deliver(t, s, a.ID, msg, DeliverOptions{})
		if got := readMessage(t, s, d.MailboxID, d.UID); got != msg {
			t.Error("stored message differs")
		}
	}
}

func TestSpoolSharesTheRefusal(t *testing.T) {
	s := openStoreWith(t, Options{MaxHeaderSize: 100, MaxMIMEDepth: 2})
	for msg, want := range map[string]error{
		headerOf(101):            ErrHeaderTooBig,
		nestedMultipart(3, true): ErrNestingTooDeep,
		nestedRFC822(3):          ErrNestingTooDeep,
	} {
		if _, err := s.Spool(strings.NewReader(msg), SpoolOptions{}); !errors.Is(err, want) {
			t.Errorf("Spool: %v, want %v", err, want)
		}
		sp, err := s.Spool(strings.NewReader(msg), SpoolOptions{Migrated: true})
		if err != nil {
			t.Fatalf("Spool migrated: %v", err)
		}
		sp.Close()
	}
}

// endless yields prefix, then repeat over and over up to n octets in all, without holding
// them.
type endless struct {
	prefix, repeat string
	n, off         int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.off >= e.n {
		return 0, io.EOF
	}
	i := 0
	for i < len(p) && e.off < e.n {
		var c byte
		if e.off < int64(len(e.prefix)) {
			c = e.prefix[e.off]
		} else {
			r := e.off - int64(len(e.prefix))
			c = e.repeat[r%int64(len(e.repeat))]
		}
		p[i] = c
		i++
		e.off++
	}
	return i, nil
}

// TestContentLimitStopsReading: a 64 MiB header (or 64 MiB of nesting) is refused after
// little more than the limit is read, and the process allocates nothing like 64 MiB for it.
func TestContentLimitStopsReading(t *testing.T) {
	const huge = 64 << 20
	s := openStoreWith(t, Options{MaxMessageSize: 2 * huge, MaxHeaderSize: 4 << 10, MaxMIMEDepth: 8})
	a := newAccount(t, s, "alice")
	for _, c := range []struct {
		name   string
		in     *endless
		want   error
		before int64 // octets of the message before the limit is crossed
	}{
		{"one endless header line", &endless{prefix: "Subject: ", repeat: "x", n: huge}, ErrHeaderTooBig, 4 << 10},
		{"endless header fields", &endless{repeat: "X-Filler: yes\r\n", n: huge}, ErrHeaderTooBig, 4 << 10},
		{"endless nesting", &endless{repeat: "Content-Type: message/rfc822\r\n\r\n", n: huge}, ErrNestingTooDeep, 8 * 32},
	} {
		t.Run(c.name, func(t *testing.T) {
			counted := &countingReader{r: c.in}
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			_, err := s.Deliver(ctx, a.ID, counted, DeliverOptions{})
			runtime.ReadMemStats(&m1)
			if !errors.Is(err, c.want) {
				t.Fatalf("Deliver: %v, want %v", err, c.want)
			}
			// The parser's and the spool's buffers (64 KiB each, and a 32 KiB read) are all
			// that may be read beyond the limit.
			if max := c.before + 256<<10; counted.n > max {
				t.Errorf("read %d octets of a %d-octet message, want at most %d", counted.n, int64(huge), max)
			}
			if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 8<<20 {
				t.Errorf("allocated %d bytes refusing it", alloc)
			}
		})
	}
	// The same input, migrated, is read to its end (and kept, up to the message size).
	counted := &countingReader{r: &endless{repeat: "X-Filler: yes\r\n", n: 1 << 20}}
	if _, err := s.Deliver(ctx, a.ID, counted, DeliverOptions{Migrated: true}); err != nil || counted.n != 1<<20 {
		t.Errorf("migrated: %v after %d octets", err, counted.n)
	}
}
