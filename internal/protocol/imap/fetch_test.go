package imap

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/letterbox-mail/letterbox/internal/store"
)

func fetchOne(t *testing.T, c *imapclient.Client, seq uint32, options *imap.FetchOptions) *imapclient.FetchMessageBuffer {
	t.Helper()
	msgs, err := c.Fetch(imap.SeqSetNum(seq), options).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("FETCH returned %d messages", len(msgs))
	}
	return msgs[0]
}

func TestFetchEnvelopeAndBodyStructure(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", multipartMessage)
	c := e.client()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	m := fetchOne(t, c, 1, &imap.FetchOptions{
		Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		RFC822Size: true, InternalDate: true, Flags: true, UID: true,
	})
	env := m.Envelope
	if env.Subject != "Grüße with attachment" {
		t.Errorf("subject %q", env.Subject)
	}
	if len(env.From) != 1 || env.From[0].Name != "Dave" || env.From[0].Addr() != "dave@example.com" {
		t.Errorf("from %+v", env.From)
	}
	if len(env.Sender) != 1 || len(env.ReplyTo) != 1 || env.Sender[0].Addr() != "dave@example.com" {
		t.Errorf("sender/reply-to %+v %+v", env.Sender, env.ReplyTo)
	}
	if env.MessageID != "multi@example.com" {
		t.Errorf("message-id %q", env.MessageID)
	}
	if want := time.Date(2024, 1, 16, 9, 0, 0, 0, time.UTC); !env.Date.Equal(want) {
		t.Errorf("date %v", env.Date)
	}
	if m.RFC822Size != int64(len(multipartMessage)) {
		t.Errorf("RFC822.SIZE %d, want %d", m.RFC822Size, len(multipartMessage))
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 2 || !strings.EqualFold(mp.Subtype, "mixed") {
		t.Fatalf("BODYSTRUCTURE %#v", m.BodyStructure)
	}
	text := mp.Children[0].(*imap.BodyStructureSinglePart)
	pdf := mp.Children[1].(*imap.BodyStructureSinglePart)
	if text.MediaType() != "text/plain" || text.Params["charset"] != "utf-8" || text.Text == nil || text.Text.NumLines != 1 {
		t.Errorf("text part %+v", text)
	}
	if pdf.MediaType() != "application/pdf" || !strings.EqualFold(pdf.Encoding, "base64") ||
		pdf.Size != uint32(len(pdfBase64)) || pdf.Filename() != "report.pdf" {
		t.Errorf("pdf part %+v ext %+v", pdf, pdf.Extended)
	}
}

func TestFetchBodySections(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", multipartMessage)
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	pdf, _ := base64.StdEncoding.DecodeString(pdfBase64)
	header := multipartMessage[:strings.Index(multipartMessage, "\r\n\r\n")+4]

	for _, tt := range []struct{ item, want string }{
		{"BODY.PEEK[]", multipartMessage},
		{"BODY.PEEK[HEADER]", header},
		{"BODY.PEEK[TEXT]", multipartMessage[len(header):]},
		// The CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1).
		{"BODY.PEEK[1]", "Hello, the report is attached."},
		{"BODY.PEEK[2]", pdfBase64},
		{"BODY.PEEK[2.MIME]", "Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n"},
		{"BODY.PEEK[HEADER.FIELDS (subject message-id)]", "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= with attachment\r\nMessage-ID: <multi@example.com>\r\n\r\n"},
		{"BODY.PEEK[HEADER.FIELDS.NOT (From To Subject Date Message-ID MIME-Version)]", "Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n"},
		{"BODY.PEEK[]<6.4>", multipartMessage[6:10]},
		{"BODY.PEEK[1]<7.1000>", "the report is attached."},
		{"BODY.PEEK[3]", ""},
		{"BINARY.PEEK[2]", string(pdf)},
		{"BINARY.PEEK[1]", "Hello, the report is attached."},
		{"RFC822.HEADER", header},
	} {
		got := grep(c.ok("FETCH 1 (%s)", tt.item), `^\* 1 FETCH`)
		if len(got) != 1 {
			t.Errorf("%s: %q", tt.item, got)
			continue
		}
		_, data, ok := strings.Cut(got[0], "}\r\n")
		if !ok {
			t.Errorf("%s: no literal in %q", tt.item, got[0])
			continue
		}
		if data = strings.TrimSuffix(data, ")"); data != tt.want {
			t.Errorf("%s = %q, want %q", tt.item, data, tt.want)
		}
	}
	size := grep(c.ok("FETCH 1 (BINARY.SIZE[2])"), `BINARY.SIZE`)
	if len(size) != 1 || !strings.Contains(size[0], fmt.Sprintf("BINARY.SIZE[2] %d", len(pdf))) {
		t.Errorf("BINARY.SIZE[2]: %q", size)
	}
	// PEEK set no flag.
	if flags := grep(c.ok("FETCH 1 (FLAGS)"), `FLAGS \(\\Recent\)`); len(flags) != 1 {
		t.Errorf("flags after PEEK: %q", flags)
	}
}

func TestFetchNestedMessage(t *testing.T) {
	inner := "From: Inner <inner@example.org>\r\nSubject: Inner subject\r\n\r\nInner body\r\n"
	outer := "From: Outer <outer@example.org>\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner +
		"--b--\r\n"
	e := newEnv(t)
	e.deliver("INBOX", outer)
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	for _, tt := range []struct{ item, want string }{
		{"BODY.PEEK[2]", strings.TrimSuffix(inner, "\r\n")},
		{"BODY.PEEK[2.HEADER]", "From: Inner <inner@example.org>\r\nSubject: Inner subject\r\n\r\n"},
		{"BODY.PEEK[2.TEXT]", "Inner body"},
		{"BODY.PEEK[2.1]", "Inner body"},
	} {
		got := grep(c.ok("FETCH 1 (%s)", tt.item), `^\* 1 FETCH`)
		_, data, _ := strings.Cut(strings.Join(got, ""), "}\r\n")
		if data = strings.TrimSuffix(data, ")"); data != tt.want {
			t.Errorf("%s = %q, want %q", tt.item, data, tt.want)
		}
	}
	bs := grep(c.ok("FETCH 1 (BODYSTRUCTURE)"), `BODYSTRUCTURE`)
	if len(bs) != 1 || !strings.Contains(bs[0], `"message" "rfc822"`) || !strings.Contains(bs[0], `"Inner subject"`) {
		t.Errorf("BODYSTRUCTURE of a forwarded message: %q", bs)
	}
}

func TestFetchSetsSeen(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("Peeked", "a\r\n"))
	e.deliver("INBOX", plainMessage("Read", "b\r\n"))
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	if got := c.ok("FETCH 1 (BODY.PEEK[])"); len(grep(got, `FLAGS`)) != 0 {
		t.Errorf("BODY.PEEK[] reported flags: %q", got)
	}
	got := grep(c.ok("FETCH 2 (BODY[TEXT])"), `^\* 2 FETCH`)
	if len(got) != 1 || !strings.Contains(got[0], `FLAGS (\Recent \Seen)`) {
		t.Errorf("BODY[TEXT] did not report \\Seen: %q", got)
	}
	// Set once: a second fetch does not report the flags again.
	if got := c.ok("FETCH 2 (BODY[TEXT])"); len(grep(got, `FLAGS`)) != 0 {
		t.Errorf("second BODY[] reported flags again: %q", got)
	}
	if got := c.ok("NOOP"); len(got) != 0 {
		t.Errorf("NOOP after BODY[] repeated the change: %q", got)
	}
	msgs, _ := e.st.Messages(t.Context(), e.mailbox("INBOX").ID)
	if msgs[0].HasFlag(store.FlagSeen) || !msgs[1].HasFlag(store.FlagSeen) {
		t.Errorf("stored flags %v %v", msgs[0].Flags, msgs[1].Flags)
	}
}

func TestFetchBodyIdentical(t *testing.T) {
	e := newEnv(t)
	big := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz.\r\n"), 30000)
	raw := plainMessage("Big", string(big))
	e.deliver("INBOX", raw)
	c := e.client()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	m := fetchOne(t, c, 1, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}, RFC822Size: true})
	if got := m.FindBodySection(section); string(got) != raw || m.RFC822Size != int64(len(raw)) {
		t.Errorf("BODY.PEEK[] of %d bytes: got %d bytes, RFC822.SIZE %d", len(raw), len(got), m.RFC822Size)
	}
}

// TestFetchRFC822 covers the RFC 1730 forms, which set \Seen like BODY[] (RFC 3501 §6.4.5):
// the whole message needs no metadata, its text does.
func TestFetchRFC822(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", multipartMessage)
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	header := multipartMessage[:strings.Index(multipartMessage, "\r\n\r\n")+4]
	for _, tt := range []struct{ item, want string }{
		{"RFC822.TEXT", multipartMessage[len(header):]},
		{"RFC822", multipartMessage},
	} {
		got := strings.Join(grep(c.ok("FETCH 1 (%s)", tt.item), `^\* 1 FETCH`), "")
		if !strings.Contains(got, fmt.Sprintf("%s {%d}\r\n%s", tt.item, len(tt.want), tt.want)) {
			t.Errorf("FETCH 1 (%s) = %q, want the literal %q", tt.item, got, tt.want)
		}
	}
}
