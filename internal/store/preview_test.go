package store

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func previewOf(t *testing.T, s *Store, accountID int64, msg string) string {
	t.Helper()
	d := deliver(t, s, accountID, msg, DeliverOptions{})
	md, err := s.MetadataOf(ctx, d.MailboxID, MetadataParts{Preview: true}, UIDRange{Start: d.UID, Stop: d.UID})
	if err != nil || len(md) != 1 {
		t.Fatalf("MetadataOf: %v, %v", md, err)
	}
	return md[0].Preview
}

func TestPreview(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice@example.com")
	long := strings.Repeat("wörd ", 100)
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"plain, white space collapsed",
			"Subject: x\r\n\r\n  Hello\r\n\r\n\tthere,\r\n  Bob.  \r\n",
			"Hello there, Bob."},
		{"quoted-printable and a charset decoded",
			"Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cr=E8me=\r\n br=FBl=E9e\r\n",
			"Café crème brûlée"},
		{"the first text/plain part of a multipart/alternative",
			"Subject: x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>HTML</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nPlain text\r\n--b--\r\n",
			"Plain text"},
		{"HTML alone: markup, style and entities dropped",
			"Subject: x\r\nContent-Type: text/html\r\n\r\n<html><head><style>p {color: red}</style></head><body><p>Fish &amp; chips</p><p>tonight?</p><!-- hidden --></body></html>\r\n",
			"Fish & chips tonight?"},
		{"HTML: inline tags join, block tags part, a stray closing tag drops nothing",
			"Subject: x\r\nContent-Type: text/html\r\n\r\n<div>Im<b>port</b>ant</div><div>news</div></title><p>for&nbsp;you</p>\r\n",
			"Important news for you"},
		{"an attached text is no preview",
			"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nattached\r\n--b--\r\n",
			""},
		{"no text at all", "Subject: x\r\nContent-Type: application/octet-stream\r\n\r\nxyz\r\n", ""},
		{"cut at 200 characters, not octets", "Subject: x\r\n\r\n" + long + "\r\n",
			strings.TrimSpace(long[:len(strings.Repeat("wörd ", 40))])},
	} {
		got := previewOf(t, s, a.ID, tc.msg)
		if got != tc.want {
			t.Errorf("%s: preview %q, want %q", tc.name, got, tc.want)
		}
		if n := utf8.RuneCountInString(got); n > PreviewMax || !utf8.ValidString(got) {
			t.Errorf("%s: %d characters (valid UTF-8 %v), want at most %d", tc.name, n, utf8.ValidString(got), PreviewMax)
		}
	}
}

// A prepended trace header (LMTP's Return-Path, Delivered-To) does not move the preview.
func TestPreviewWithPrepend(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice@example.com")
	d := deliver(t, s, a.ID, simpleMessage("traced"), DeliverOptions{Prepend: []byte("Delivered-To: alice@example.com\r\n")})
	md, err := s.MetadataOf(ctx, d.MailboxID, MetadataParts{Preview: true})
	if err != nil || len(md) != 1 || md[0].Preview != "Hello, traced." {
		t.Errorf("MetadataOf = %+v, %v", md, err)
	}
}
