package mailimport

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func readAll(t *testing.T, r io.Reader) []MboxMessage {
	t.Helper()
	mr := NewMboxReader(r)
	var out []MboxMessage
	for {
		m, err := mr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		body, err := io.ReadAll(m.Body)
		if err != nil {
			t.Fatalf("reading message %d: %v", len(out)+1, err)
		}
		out = append(out, MboxMessage{Separator: m.Separator, Date: m.Date, Body: bytes.NewReader(body)})
	}
}

func bodyOf(t *testing.T, m MboxMessage) string {
	t.Helper()
	b, _ := io.ReadAll(m.Body)
	return string(b)
}

func TestMboxSplitsAndUnquotes(t *testing.T) {
	mbox := "From alice@example.org Mon Jan 15 09:30:00 2024\n" +
		"Subject: one\n\nHello\n>From the start of a line\n>>From twice quoted\n> From not quoted\n\n" +
		"From bob@example.org Tue Feb  6 10:00:00 2024\n" +
		"Subject: two\n\nA paragraph\nFrom inside a paragraph is text, not a separator\n\n\nlast line\n\n"
	msgs := readAll(t, strings.NewReader(mbox))
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	want1 := "Subject: one\n\nHello\nFrom the start of a line\n>From twice quoted\n> From not quoted\n"
	if got := bodyOf(t, msgs[0]); got != want1 {
		t.Errorf("message 1 = %q\nwant %q", got, want1)
	}
	// "From " not after a blank line is text; of the two blank lines before "last line" both
	// stay; the final blank line (the separator's) goes.
	want2 := "Subject: two\n\nA paragraph\nFrom inside a paragraph is text, not a separator\n\n\nlast line\n"
	if got := bodyOf(t, msgs[1]); got != want2 {
		t.Errorf("message 2 = %q\nwant %q", got, want2)
	}
	if want := time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC); !msgs[0].Date.Equal(want) {
		t.Errorf("date 1 = %v, want %v", msgs[0].Date, want)
	}
	if want := time.Date(2024, 2, 6, 10, 0, 0, 0, time.UTC); !msgs[1].Date.Equal(want) {
		t.Errorf("date 2 = %v, want %v", msgs[1].Date, want)
	}
	if msgs[1].Separator != "From bob@example.org Tue Feb  6 10:00:00 2024" {
		t.Errorf("separator = %q", msgs[1].Separator)
	}
}

func TestMboxCRLFAndNoTrailingNewline(t *testing.T) {
	mbox := "From a@b Mon Jan 15 09:30:00 2024\r\nSubject: x\r\n\r\nbody\r\n\r\nFrom c@d bogus date\r\nSubject: y\r\n\r\nno newline at the end"
	msgs := readAll(t, strings.NewReader(mbox))
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	if got := bodyOf(t, msgs[0]); got != "Subject: x\r\n\r\nbody\r\n" {
		t.Errorf("message 1 = %q", got)
	}
	if got := bodyOf(t, msgs[1]); got != "Subject: y\r\n\r\nno newline at the end" {
		t.Errorf("message 2 = %q", got)
	}
	if !msgs[1].Date.IsZero() {
		t.Errorf("unparseable date gave %v, want zero", msgs[1].Date)
	}
}

// TestMboxStreamsLongLinesAndSmallReads feeds one byte at a time and a line far longer than
// the reader's buffer: the message must come out intact.
func TestMboxStreamsLongLinesAndSmallReads(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	mbox := "From a@b Mon Jan 15 09:30:00 2024\nSubject: long\n\n" + long + "\nFrom here on text\n\nFrom c@d Mon Jan 15 09:30:01 2024\nSubject: next\n\nok\n"
	msgs := readAll(t, iotest.OneByteReader(strings.NewReader(mbox)))
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	if got, want := bodyOf(t, msgs[0]), "Subject: long\n\n"+long+"\nFrom here on text\n"; got != want {
		t.Errorf("long message: got %d bytes, want %d", len(got), len(want))
	}
	if got := bodyOf(t, msgs[1]); got != "Subject: next\n\nok\n" {
		t.Errorf("message 2 = %q", got)
	}
}

func TestMboxSkipsUnreadRest(t *testing.T) {
	mbox := "From a@b Mon Jan 15 09:30:00 2024\nSubject: 1\n\nbody one\n\nFrom a@b Mon Jan 15 09:30:00 2024\nSubject: 2\n\nbody two\n"
	mr := NewMboxReader(strings.NewReader(mbox))
	m, err := mr.Next()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(m.Body, buf); err != nil {
		t.Fatal(err)
	}
	m, err = mr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(m.Body); string(got) != "Subject: 2\n\nbody two\n" {
		t.Errorf("second message = %q", got)
	}
	if _, err := mr.Next(); err != io.EOF {
		t.Errorf("after the last message: %v, want io.EOF", err)
	}
}

func TestMboxRejectsNonMbox(t *testing.T) {
	_, err := NewMboxReader(strings.NewReader("Subject: not an mbox\n\nhello\n")).Next()
	if !errors.Is(err, ErrNotMbox) {
		t.Errorf("err = %v, want ErrNotMbox", err)
	}
	if _, err := NewMboxReader(strings.NewReader("")).Next(); err != io.EOF {
		t.Errorf("empty file: err = %v, want io.EOF", err)
	}
}
