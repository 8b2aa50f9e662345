package store

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

func TestDeliverNormalisesLineEnds(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	cases := []struct{ name, in, want string }{
		{"crlf", "Subject: a\r\n\r\nbody\r\n", "Subject: a\r\n\r\nbody\r\n"},
		{"bare lf", "Subject: a\n\nline 1\nline 2\n", "Subject: a\r\n\r\nline 1\r\nline 2\r\n"},
		{"bare cr", "Subject: a\r\rx\ry\r", "Subject: a\r\n\r\nx\r\ny\r\n"},
		// A final line break is never added (nor dropped): the octets stored and announced
		// are those given, line ends aside.
		{"no final newline", "Subject: a\n\nlast line", "Subject: a\r\n\r\nlast line"},
		{"no final crlf", "From: a@b\r\nSubject: x\r\n\r\nno final line break", "From: a@b\r\nSubject: x\r\n\r\nno final line break"},
		{"header only", "Subject: a", "Subject: a"},
		{"mixed", "Subject: a\r\n\n\r\r\n\nend", "Subject: a\r\n\r\n\r\n\r\n\r\nend"},
		{"final bare cr", "Subject: a\r\n\r\nx\r", "Subject: a\r\n\r\nx\r\n"},
		{"empty body", "Subject: a\r\n\r\n", "Subject: a\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One byte at a time: a CR at the end of one read, its LF at the next.
			d, err := s.Deliver(ctx, a.ID, iotest.OneByteReader(strings.NewReader(c.in)), DeliverOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Size != int64(len(c.want)) {
				t.Errorf("size %d, want %d", d.Size, len(c.want))
			}
			if got := readMessage(t, s, in.ID, d.UID); got != c.want {
				t.Errorf("stored %q, want %q", got, c.want)
			}
			md, err := s.Metadata(ctx, in.ID, UIDRange{d.UID, d.UID})
			if err != nil || len(md) != 1 {
				t.Fatal(err)
			}
			lines := int64(strings.Count(c.want, "\r\n"))
			if !strings.HasSuffix(c.want, "\r\n") {
				lines++ // the unterminated last line
			}
			if md[0].Size != d.Size || md[0].Structure.End != d.Size || md[0].Lines != lines {
				t.Errorf("metadata %+v", md[0])
			}
		})
	}
}

func TestDeliverRefusals(t *testing.T) {
	s, err := openTest(t, Options{Logger: quietLogger(), MaxMessageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := newAccount(t, s, "alice")
	for _, in := range []string{"", "\r\n", "\r\nSubject: x\r\n", "just some text\r\n", " indented: x\r\n", "From alice Mon Jan 1\r\nSubject: x\r\n"} {
		if _, err := s.Deliver(ctx, a.ID, strings.NewReader(in), DeliverOptions{}); !errors.Is(err, ErrNotMessage) {
			t.Errorf("Deliver(%q): %v, want ErrNotMessage", in, err)
		}
	}
	// The limit applies to the normalised size; reading stops soon after it.
	big := &countingReader{r: strings.NewReader("Subject: x\r\n\r\n" + strings.Repeat("x", 10<<20))}
	if _, err := s.Deliver(ctx, a.ID, big, DeliverOptions{}); !errors.Is(err, ErrTooBig) {
		t.Errorf("big message: %v, want ErrTooBig", err)
	}
	if big.n > 1<<20 {
		t.Errorf("read %d bytes of an oversized message", big.n)
	}
	if _, err := s.Deliver(ctx, a.ID, strings.NewReader("Subject: x\n\n"+strings.Repeat("x\n", 490)), DeliverOptions{}); !errors.Is(err, ErrTooBig) {
		t.Errorf("message over the limit only once normalised: %v", err)
	}
	if _, err := s.Deliver(ctx, a.ID, strings.NewReader(simpleMessage("ok")), DeliverOptions{Mailbox: "Nope"}); !errors.Is(err, ErrNoSuchMailbox) {
		t.Errorf("missing mailbox: %v", err)
	}
	if _, err := s.Deliver(ctx, 9999, strings.NewReader(simpleMessage("ok")), DeliverOptions{}); !errors.Is(err, ErrNoSuchMailbox) && !errors.Is(err, ErrNoSuchAccount) {
		t.Errorf("missing account: %v", err)
	}
	// Nothing failed delivery left anything behind.
	if n := countRows(t, s, "bodies"); n != 0 {
		t.Errorf("%d bodies after failed deliveries", n)
	}
	entries, _ := os.ReadDir(filepath.Join(s.dir, "tmp"))
	if len(entries) != 0 {
		t.Errorf("spool files left: %v", entries)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestDeliverOptionsAndLeniency(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	sent, _ := s.MailboxByName(ctx, a.ID, "Sent")
	date := time.Date(2024, 2, 29, 13, 14, 15, 0, time.FixedZone("", -5*3600))
	d := deliver(t, s, a.ID, "X-Only: header\r\n", DeliverOptions{Mailbox: "Sent", Flags: []string{`\seen`, "$Label1", `\Recent`, "work", "WORK"}, InternalDate: date})
	if d.MailboxID != sent.ID || d.UID != 1 || d.UIDValidity != sent.UIDValidity || d.ModSeq == 0 {
		t.Errorf("delivered %+v", d)
	}
	msgs, err := s.Messages(ctx, sent.ID)
	if err != nil || len(msgs) != 1 {
		t.Fatal(err)
	}
	m := msgs[0]
	if fmt.Sprint(m.Flags) != `[\Seen $Label1 work]` {
		t.Errorf("flags %q", m.Flags)
	}
	if !m.InternalDate.Equal(date) || m.InternalDate.Format("-0700") != "-0500" {
		t.Errorf("internal date %v, want %v", m.InternalDate, date)
	}
	if m.ModSeq != d.ModSeq || m.Size != d.Size {
		t.Errorf("message %+v vs delivered %+v", m, d)
	}
}

// bigMessage is a message of well over a MiB with varied line lengths and bare LFs.
func bigMessage(size int) (raw, normalised string) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("Subject: big\nFrom: a@example.com\n\n")
	for b.Len() < size {
		n := rng.IntN(200)
		for i := 0; i < n; i++ {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
		b.WriteByte('\n')
	}
	raw = b.String()
	return raw, strings.ReplaceAll(raw, "\n", "\r\n")
}

// A message is spooled in memory up to spoolInMemory octets and in a file beyond: both
// sides of the edge, with and without prepended lines, are stored byte for byte, and no
// spool file is left behind.
func TestSpoolMemoryAndFile(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	head := "Subject: edge\r\n\r\n"
	for _, size := range []int{spoolInMemory - 1, spoolInMemory, spoolInMemory + 1, 3*spoolInMemory + 5} {
		body := strings.Repeat("0123456789abcdef\r\n", size/18+1)
		msg := head + body[:size-len(head)-2] + "\r\n"
		for _, prepend := range []string{"", "Delivered-To: alice\r\n"} {
			sp, err := s.Spool(strings.NewReader(msg), SpoolOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if (sp.file != nil) != (size > spoolInMemory) {
				t.Errorf("%d octets: spooled to a file: %v", size, sp.file != nil)
			}
			d, err := s.DeliverSpooled(ctx, a.ID, sp, DeliverOptions{Prepend: []byte(prepend)})
			sp.Close()
			if err != nil {
				t.Fatal(err)
			}
			if got := readMessage(t, s, d.MailboxID, d.UID); got != prepend+msg {
				t.Errorf("%d octets, prepend %q: stored message differs", size, prepend)
			}
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(s.dir, "tmp")); len(entries) != 0 {
		t.Errorf("spool files left: %v", entries)
	}
}

func TestLargeMessageRoundTrip(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	raw, want := bigMessage(1<<20 + 12345)
	d := deliver(t, s, a.ID, raw, DeliverOptions{})
	if d.Size != int64(len(want)) {
		t.Fatalf("size %d, want %d", d.Size, len(want))
	}
	if got := readMessage(t, s, d.MailboxID, d.UID); got != want {
		t.Fatal("stored message differs from the normalised input")
	}
	var chunks int
	s.readers.QueryRow(`SELECT count(*) FROM body_chunks`).Scan(&chunks)
	if wantChunks := (len(want) + chunkSize - 1) / chunkSize; chunks != wantChunks {
		t.Errorf("%d chunks, want %d", chunks, wantChunks)
	}

	b, err := s.OpenMessage(ctx, d.MailboxID, d.UID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// ReadAt across chunk boundaries, at the very end, and past it.
	for _, r := range []struct{ off, n int }{
		{chunkSize - 10, 20}, {chunkSize - 1, 2 * chunkSize}, {0, 1}, {3*chunkSize + 7, 5}, {len(want) - 3, 3},
	} {
		p := make([]byte, r.n)
		n, err := b.ReadAt(p, int64(r.off))
		if err != nil || n != r.n || string(p) != want[r.off:r.off+r.n] {
			t.Errorf("ReadAt(%d, %d) = %d, %v", r.off, r.n, n, err)
		}
	}
	p := make([]byte, 10)
	if n, err := b.ReadAt(p, int64(len(want)-4)); n != 4 || err != io.EOF || string(p[:4]) != want[len(want)-4:] {
		t.Errorf("ReadAt past the end = %d, %v", n, err)
	}
	if n, err := b.ReadAt(p, int64(len(want))); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v", n, err)
	}
	// Odd-sized reads through io.Reader, via a section (what IMAP BODY[]<partial> does).
	sec := io.NewSectionReader(b, chunkSize-100, 3*chunkSize)
	got, err := io.ReadAll(iotest.HalfReader(sec))
	if err != nil || string(got) != want[chunkSize-100:4*chunkSize-100] {
		t.Errorf("section read: %v", err)
	}
	if err := iotest.TestReader(io.NewSectionReader(b, 0, b.Size()), []byte(want)); err != nil {
		t.Error(err)
	}
	// Via OpenBody too.
	ob, err := s.OpenBody(ctx, mustMessages(t, s, d.MailboxID)[0].BodyID)
	if err != nil || ob.Size() != d.Size {
		t.Fatalf("OpenBody: %v", err)
	}
	ob.Close()
	if _, err := ob.Read(p); err == nil {
		t.Error("Read after Close succeeded")
	}
}

func mustMessages(t testing.TB, s *Store, mailboxID int64, ranges ...UIDRange) []Message {
	t.Helper()
	msgs, err := s.Messages(ctx, mailboxID, ranges...)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func mustMetadata(t testing.TB, s *Store, mailboxID int64, uid uint32) Metadata {
	t.Helper()
	md, err := s.Metadata(ctx, mailboxID, UIDRange{uid, uid})
	if err != nil || len(md) != 1 {
		t.Fatalf("Metadata(%d): %v %d", uid, err, len(md))
	}
	return md[0]
}

func TestEnvelope(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	msg := "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n" +
		"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\r\n" +
		"To: \"Bob, Jr.\" <bob@example.com>, carol@example.org,\r\n  =?ISO-8859-1?Q?Ren=E9?= <rene@example.fr>\r\n" +
		"Cc: undisclosed-recipients:;\r\n" +
		"Subject: =?UTF-8?B?R3LDvMOfZSDwn5iA?= and =?iso-8859-1?q?caf=E9?=\r\n" +
		"Message-ID: <abc.123@example.de>\r\n" +
		"In-Reply-To: <x@y> <z@w>\r\n" +
		"\r\nbody\r\n"
	d := deliver(t, s, a.ID, msg, DeliverOptions{})
	env := mustMetadata(t, s, d.MailboxID, d.UID).Envelope
	if env.Subject != "Grüße 😀 and café" {
		t.Errorf("subject %q", env.Subject)
	}
	if !env.Date.Equal(time.Date(2003, 7, 1, 8, 52, 37, 0, time.UTC)) {
		t.Errorf("date %v", env.Date)
	}
	wantFrom := []Address{{Name: "Jörg Müller", Mailbox: "joerg", Host: "example.de"}}
	if fmt.Sprint(env.From) != fmt.Sprint(wantFrom) || fmt.Sprint(env.Sender) != fmt.Sprint(wantFrom) || fmt.Sprint(env.ReplyTo) != fmt.Sprint(wantFrom) {
		t.Errorf("from/sender/reply-to %v %v %v", env.From, env.Sender, env.ReplyTo)
	}
	wantTo := []Address{{Name: "Bob, Jr.", Mailbox: "bob", Host: "example.com"}, {Mailbox: "carol", Host: "example.org"}, {Name: "René", Mailbox: "rene", Host: "example.fr"}}
	if fmt.Sprint(env.To) != fmt.Sprint(wantTo) {
		t.Errorf("to %+v", env.To)
	}
	// An empty group is its two markers (RFC 3501 §7.4.2).
	if fmt.Sprint(env.Cc) != fmt.Sprint([]Address{{Mailbox: "undisclosed-recipients"}, {}}) || env.MessageID != "<abc.123@example.de>" || fmt.Sprint(env.InReplyTo) != "[<x@y> <z@w>]" {
		t.Errorf("cc %v message-id %q in-reply-to %v", env.Cc, env.MessageID, env.InReplyTo)
	}

	// Broken headers still give an envelope, never a failed delivery.
	bad := "From: Broken <not an address\r\nTo: a@b, @@@, \"unterminated\r\nSubject: =?bogus?Q?x?= =?UTF-8?B?!!!?=\r\nDate: yesterday\r\nReply-To: r@example.com\r\n\r\n"
	d = deliver(t, s, a.ID, bad, DeliverOptions{})
	env = mustMetadata(t, s, d.MailboxID, d.UID).Envelope
	if len(env.From) == 0 || len(env.To) == 0 || !env.Date.IsZero() || env.Subject == "" {
		t.Errorf("lenient envelope %+v", env)
	}
	if len(env.ReplyTo) != 1 || env.ReplyTo[0].Mailbox != "r" {
		t.Errorf("reply-to %+v", env.ReplyTo)
	}
	for _, ad := range append(env.From, env.To...) {
		if ad.Host == "" {
			t.Errorf("address %+v without host (reads as a group in IMAP)", ad)
		}
	}
}

const attachment = "Q2VjaSBuJ2VzdCBwYXMgdW5lIHBpcGUuIENlY2kgbidlc3QgcGFzIHVuZSBwaXBlLiBDZWNpIG4n\r\nZXN0IHBhcyB1bmUgcGlwZS4=\r\n"

func mixedMessage() string {
	return "From: a@example.com\r\n" +
		"Subject: mixed\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n" +
		"\r\n" +
		"This is the preamble.\r\n" +
		"--outer\r\n" +
		"Content-Type: text/plain; charset=iso-8859-1\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"Caf=E9 cr=E8me\r\n" +
		"second line\r\n" +
		"--outer\r\n" +
		"Content-Type: application/octet-stream; name=\"pipe.txt\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"pipe.txt\"\r\n" +
		"Content-ID: <pipe@example.com>\r\n" +
		"\r\n" +
		attachment +
		"--outer\r\n" +
		"Content-Type: message/rfc822\r\n" +
		"\r\n" +
		"From: inner@example.com\r\n" +
		"Subject: =?UTF-8?Q?inn=C3=A9r?=\r\n" +
		"Content-Type: multipart/alternative; boundary=inner\r\n" +
		"\r\n" +
		"--inner\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"inner plain\r\n" +
		"--inner\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n" +
		"\r\n" +
		"<p>inner html</p>\r\n" +
		"--inner--\r\n" +
		"\r\n" +
		"--outer--\r\n" +
		"epilogue\r\n"
}

func TestBodyStructure(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	msg := mixedMessage()
	d := deliver(t, s, a.ID, msg, DeliverOptions{})
	md := mustMetadata(t, s, d.MailboxID, d.UID)
	st := md.Structure
	section := func(from, to int64) string { return msg[from:to] }

	if md.HeaderSize != int64(strings.Index(msg, "\r\n\r\n")+4) || st.BodyStart != md.HeaderSize || st.HeaderStart != 0 || st.End != int64(len(msg)) {
		t.Errorf("top offsets %d %d %d, header size %d", st.HeaderStart, st.BodyStart, st.End, md.HeaderSize)
	}
	if md.Lines != int64(strings.Count(msg, "\r\n")) {
		t.Errorf("lines %d", md.Lines)
	}
	if st.Type != "multipart" || st.Subtype != "mixed" || st.Params["boundary"] != "outer" || len(st.Children) != 3 {
		t.Fatalf("top %+v", st)
	}

	text := st.Children[0]
	if text.Type != "text" || text.Params["charset"] != "iso-8859-1" || text.Encoding != "QUOTED-PRINTABLE" {
		t.Errorf("part 1 %+v", text)
	}
	if got := section(text.BodyStart, text.End); got != "Caf=E9 cr=E8me\r\nsecond line" {
		t.Errorf("part 1 body %q", got)
	}
	if text.Lines != 2 || text.Size != int64(len("Caf=E9 cr=E8me\r\nsecond line")) {
		t.Errorf("part 1 lines %d size %d", text.Lines, text.Size)
	}
	if got := section(text.HeaderStart, text.BodyStart); !strings.HasPrefix(got, "Content-Type: text/plain") || !strings.HasSuffix(got, "\r\n\r\n") {
		t.Errorf("part 1 MIME header %q", got)
	}

	att := st.Children[1]
	if got := section(att.BodyStart, att.End); got+"\r\n" != attachment {
		t.Errorf("part 2 body %q, want the base64 text", got)
	}
	if att.Type != "application" || att.Subtype != "octet-stream" || att.Encoding != "BASE64" ||
		att.Disposition != "attachment" || att.DispositionParams["filename"] != "pipe.txt" ||
		att.Params["name"] != "pipe.txt" || att.ID != "<pipe@example.com>" || att.Lines != 0 {
		t.Errorf("part 2 %+v", att)
	}

	rfc := st.Children[2]
	if rfc.Type != "message" || rfc.Subtype != "rfc822" || rfc.Message == nil || rfc.Envelope == nil {
		t.Fatalf("part 3 %+v", rfc)
	}
	if rfc.Envelope.Subject != "innér" || rfc.Envelope.From[0].Mailbox != "inner" {
		t.Errorf("part 3 envelope %+v", rfc.Envelope)
	}
	inner := rfc.Message
	if inner.HeaderStart != rfc.BodyStart || inner.End != rfc.End || rfc.Lines != int64(strings.Count(section(rfc.BodyStart, rfc.End), "\r\n")) {
		t.Errorf("part 3 offsets: inner %d-%d, part %d-%d, lines %d", inner.HeaderStart, inner.End, rfc.BodyStart, rfc.End, rfc.Lines)
	}
	if inner.Type != "multipart" || inner.Subtype != "alternative" || len(inner.Children) != 2 {
		t.Fatalf("part 3 message %+v", inner)
	}
	if got := section(inner.Children[0].BodyStart, inner.Children[0].End); got != "inner plain" {
		t.Errorf("part 3.1 %q", got)
	}
	if c := inner.Children[0]; c.Params["charset"] != "" || c.Lines != 1 {
		// An explicit Content-Type without charset is described as it is.
		t.Errorf("part 3.1 %+v", c)
	}
	if got := section(inner.Children[1].BodyStart, inner.Children[1].End); got != "<p>inner html</p>" {
		t.Errorf("part 3.2 %q", got)
	}

	// The same through the stored bytes.
	b, _ := s.OpenMessage(ctx, d.MailboxID, d.UID)
	defer b.Close()
	got, _ := io.ReadAll(io.NewSectionReader(b, att.BodyStart, att.Size))
	if raw, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(got), "\r\n", "")); err != nil || !strings.HasPrefix(string(raw), "Ceci n'est pas une pipe.") {
		t.Errorf("decoded attachment %q, %v", raw, err)
	}

	// Decoded text for SEARCH, header for SEARCH HEADER.
	sd, err := s.SearchData(ctx, d.MailboxID)
	if err != nil || len(sd) != 1 {
		t.Fatal(err)
	}
	for _, w := range []string{"Café crème", "inner plain", "<p>inner html</p>"} {
		if !strings.Contains(sd[0].Text, w) {
			t.Errorf("search text %q lacks %q", sd[0].Text, w)
		}
	}
	if strings.Contains(sd[0].Text, "pipe") || strings.Contains(sd[0].Text, "preamble") {
		t.Errorf("search text %q has non-text parts", sd[0].Text)
	}
	if sd[0].Header != msg[:md.HeaderSize-2] {
		t.Errorf("search header %q", sd[0].Header)
	}
}

func TestDefaultsAndDigest(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	d := deliver(t, s, a.ID, "Subject: plain\r\n\r\nline\r\n", DeliverOptions{})
	st := mustMetadata(t, s, d.MailboxID, d.UID).Structure
	if st.Type != "text" || st.Subtype != "plain" || st.Params["charset"] != "us-ascii" || st.Encoding != "7BIT" || st.Lines != 1 || st.Size != 6 {
		t.Errorf("default structure %+v", st)
	}
	digest := "Subject: digest\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\n1\r\n--d\r\n\r\nSubject: two\r\n\r\n2\r\n--d--\r\n"
	d = deliver(t, s, a.ID, digest, DeliverOptions{})
	st = mustMetadata(t, s, d.MailboxID, d.UID).Structure
	if len(st.Children) != 2 || st.Children[1].Type != "message" || st.Children[1].Envelope == nil || st.Children[1].Envelope.Subject != "two" {
		t.Errorf("digest %+v", st)
	}
}

// checkOffsets verifies that every part lies within its parent and the message.
func checkOffsets(t *testing.T, p Part, lo, hi int64, depth int) int {
	t.Helper()
	if p.HeaderStart < lo || p.HeaderStart > p.BodyStart || p.BodyStart > p.End || p.End > hi || p.Size != p.End-p.BodyStart {
		t.Errorf("depth %d: part %s/%s offsets %d %d %d outside [%d, %d]", depth, p.Type, p.Subtype, p.HeaderStart, p.BodyStart, p.End, lo, hi)
	}
	if p.Type == "multipart" && len(p.Children) == 0 {
		t.Errorf("depth %d: multipart without parts", depth)
	}
	n := 1
	last := p.BodyStart
	for _, c := range p.Children {
		if c.HeaderStart < last {
			t.Errorf("depth %d: parts overlap", depth)
		}
		last = c.End
		n += checkOffsets(t, c, p.BodyStart, p.End, depth+1)
	}
	if p.Message != nil {
		n += checkOffsets(t, *p.Message, p.BodyStart, p.End, depth+1)
	}
	return n
}

func TestMalformedMIME(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	var deep strings.Builder
	deep.WriteString("Subject: deep\r\n")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&deep, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	deep.WriteString("Content-Type: text/plain\r\n\r\nbottom\r\n")
	var many strings.Builder
	many.WriteString("Subject: many\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n")
	for i := 0; i < mailmsg.MaxParts+100; i++ {
		many.WriteString("--m\r\n\r\nx\r\n")
	}
	many.WriteString("--m--\r\n")
	cases := map[string]string{
		"unclosed":         "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nno end\r\n",
		"no boundary":      "Content-Type: multipart/mixed\r\n\r\n--x\r\nhello\r\n--x--\r\n",
		"no parts":         "Content-Type: multipart/mixed; boundary=x\r\n\r\njust a preamble\r\n",
		"bad params":       "Content-Type: text/plain; charset=\"unterminated; x=\r\n\r\nhi\r\n",
		"garbage type":     "Content-Type: ???\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n",
		"unknown charset":  "Content-Type: text/plain; charset=x-klingon\r\n\r\nqapla'\r\n",
		"header no blank":  "Subject: x\r\nthis line is no header\r\nmore\r\n",
		"part no blank":    "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n--x--\r\n",
		"inner unclosed":   "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\ntext\r\n--o\r\n\r\nafter\r\n--o--\r\n",
		"encoded rfc822":   "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp4DQo=\r\n",
		"empty rfc822":     "Content-Type: message/rfc822\r\n\r\n",
		"deep":             deep.String(),
		"many parts":       many.String(),
		"long line":        "Subject: long\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\n" + strings.Repeat("y", 200<<10) + "\r\n--z--\r\n",
		"nul and 8bit":     "Subject: \xff\xfe\x00\r\nFrom: \xe9t\xe9 <a@b>\r\n\r\n\x00\xff\r\n",
		"boundary spaces":  "Content-Type: multipart/mixed; boundary=\"a b\"\r\n\r\n--a b  \r\n\r\none\r\n--a b--  \r\n",
		"continued header": "Subject: folded\r\n  over lines\r\nContent-Type: text/plain;\r\n\tcharset=utf-8\r\n\r\nx\r\n",
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			// 200 levels are refused as new mail (TestContentLimits); imported, they are kept.
			d, err := s.Deliver(ctx, a.ID, strings.NewReader(msg), DeliverOptions{Migrated: name == "deep"})
			if err != nil {
				t.Fatalf("delivery failed: %v", err)
			}
			md := mustMetadata(t, s, d.MailboxID, d.UID)
			if got := readMessage(t, s, d.MailboxID, d.UID); got != msg {
				t.Error("stored message differs")
			}
			n := checkOffsets(t, md.Structure, 0, d.Size, 0)
			if n > mailmsg.MaxParts+1 {
				t.Errorf("%d parts described", n)
			}
		})
	}
}

func TestSpoolSharedAndPrepend(t *testing.T) {
	s := newStore(t)
	alice := newAccount(t, s, "alice")
	bob := newAccount(t, s, "bob")
	carol := newAccount(t, s, "carol")
	msg := mixedMessage()
	sp, err := s.Spool(strings.NewReader(msg), SpoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if sp.Size() != int64(len(msg)) || sp.Envelope().Subject != "mixed" {
		t.Errorf("spooled size %d subject %q", sp.Size(), sp.Envelope().Subject)
	}
	da, err := s.DeliverSpooled(ctx, alice.ID, sp, DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := s.DeliverSpooled(ctx, bob.ID, sp, DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ma, mb := mustMessages(t, s, da.MailboxID)[0], mustMessages(t, s, db.MailboxID)[0]
	if ma.BodyID != mb.BodyID || countRows(t, s, "bodies") != 1 {
		t.Errorf("spooled body stored twice: %d %d", ma.BodyID, mb.BodyID)
	}
	// The shared body goes when its last message does; the next delivery stores it again.
	s.Expunge(ctx, da.MailboxID, []uint32{da.UID})
	s.Expunge(ctx, db.MailboxID, []uint32{db.UID})
	if n := countRows(t, s, "bodies"); n != 0 {
		t.Fatalf("%d bodies after expunging all", n)
	}
	da2, err := s.DeliverSpooled(ctx, alice.ID, sp, DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readMessage(t, s, da2.MailboxID, da2.UID); got != msg {
		t.Error("redelivered message differs")
	}

	// With a Prepend: its own body, with offsets that point into it.
	prepend := "Return-Path: <a@example.com>\nDelivered-To: carol@example.com\n"
	dc, err := s.DeliverSpooled(ctx, carol.ID, sp, DeliverOptions{Prepend: []byte(prepend)})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(prepend, "\n", "\r\n") + msg
	if got := readMessage(t, s, dc.MailboxID, dc.UID); got != want || dc.Size != int64(len(want)) {
		t.Fatalf("with prepend: stored %d bytes, want %d", len(got), len(want))
	}
	md := mustMetadata(t, s, dc.MailboxID, dc.UID)
	plain := mustMetadata(t, s, da2.MailboxID, da2.UID)
	shift := int64(len(want) - len(msg))
	if md.HeaderSize != plain.HeaderSize+shift || md.Structure.HeaderStart != 0 || md.Structure.End != dc.Size ||
		md.Lines != plain.Lines+2 || md.BodyID == plain.BodyID {
		t.Errorf("prepend metadata %+v", md)
	}
	att := md.Structure.Children[1]
	if want[att.BodyStart:att.End]+"\r\n" != attachment {
		t.Errorf("attachment offsets not shifted: %q", want[att.BodyStart:att.End])
	}
	if inner := md.Structure.Children[2].Message.Children[0]; want[inner.BodyStart:inner.End] != "inner plain" {
		t.Errorf("nested offsets not shifted")
	}
	if plain.Structure.Children[1].BodyStart+shift != att.BodyStart {
		t.Error("spooled metadata changed by a prepended delivery")
	}
	sd, _ := s.SearchData(ctx, dc.MailboxID)
	if !strings.HasPrefix(sd[0].Header, "Return-Path: <a@example.com>\r\nDelivered-To:") {
		t.Errorf("search header %q", sd[0].Header[:40])
	}
}

func TestCRLFWriter(t *testing.T) {
	// Every split of the input into two writes gives the same output.
	in := "a\r\nb\nc\rd\r\r\n\n\re"
	want := "a\r\nb\r\nc\r\nd\r\n\r\n\r\n\r\ne" // no final CRLF added
	for i := 0; i <= len(in); i++ {
		var out bytes.Buffer
		w := newTestCRLF(&out)
		w.Write([]byte(in[:i]))
		w.Write([]byte(in[i:]))
		if err := w.finish(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want || w.n != int64(len(want)) {
			t.Errorf("split at %d: %q (%d)", i, out.String(), w.n)
		}
	}
}

func newTestCRLF(out io.Writer) *crlfWriter {
	return &crlfWriter{w: out, limit: 1 << 30}
}
