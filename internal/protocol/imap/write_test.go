package imap

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// countingWriter records each Write it gets.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

func TestWriterStringForms(t *testing.T) {
	for _, tc := range []struct {
		in           string
		utf8         bool
		astring, str string
		mailbox      string
	}{
		{"plain", false, "plain", `"plain"`, `"plain"`},
		{"", false, `""`, `""`, `""`},
		{"NIL", false, `"NIL"`, `"NIL"`, `"NIL"`},
		{"two words", false, `"two words"`, `"two words"`, `"two words"`},
		{`a"b\c`, false, `"a\"b\\c"`, `"a\"b\\c"`, `"a\"b\\c"`},
		{"a]b", false, "a]b", `"a]b"`, `"a]b"`},
		{"a(b", false, `"a(b"`, `"a(b"`, `"a(b"`},
		{"line\r\nbreak", false, "{11}\r\nline\r\nbreak", "{11}\r\nline\r\nbreak", `"line&AA0ACg-break"`},
		{"Entwürfe", false, "{9}\r\nEntwürfe", "{9}\r\nEntwürfe", `"Entw&APw-rfe"`},
		{"Entwürfe", true, `"Entwürfe"`, `"Entwürfe"`, `"Entwürfe"`},
		{"bad\xffutf8", true, "{8}\r\nbad\xffutf8", "{8}\r\nbad\xffutf8", ""},
		{"nul\x00x", false, "{4}\r\nnulx", "{4}\r\nnulx", `"nul&AAA-x"`},
	} {
		for form, want := range map[string]string{"astring": tc.astring, "string": tc.str, "mailbox": tc.mailbox} {
			var out bytes.Buffer
			w := newResponseWriter(&out)
			w.utf8 = tc.utf8
			switch form {
			case "astring":
				w.astring(tc.in)
			case "string":
				w.string(tc.in)
			case "mailbox":
				w.mailbox(tc.in)
			}
			if err := w.flush(); err != nil {
				t.Fatal(err)
			}
			if tc.in == "bad\xffutf8" && form == "mailbox" {
				continue // encoded as modified UTF-7 of U+FFFD: not this test's business
			}
			if out.String() != want {
				t.Errorf("%s(%q, utf8 %v) = %q, want %q", form, tc.in, tc.utf8, out.String(), want)
			}
		}
	}
	// A long string goes as a literal.
	var out bytes.Buffer
	w := newResponseWriter(&out)
	w.string(strings.Repeat("a", 2000))
	w.flush()
	if !strings.HasPrefix(out.String(), "{2000}\r\n") {
		t.Errorf("long string: %.20q", out.String())
	}
}

func TestWriterBuffersUntilFlush(t *testing.T) {
	var dst countingWriter
	w := newResponseWriter(&dst)
	for i := range 50 {
		w.raw("* ").number(uint32(i + 1)).raw(" EXISTS").crlf()
	}
	w.status("a1", imap.StatusResponseTypeOK, "", "done")
	if dst.writes != 0 {
		t.Fatalf("%d writes before the flush: responses must not go out line by line", dst.writes)
	}
	if w.bw == nil || w.buffered() == 0 {
		t.Fatal("nothing buffered")
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if dst.writes != 1 {
		t.Errorf("%d writes for one flush", dst.writes)
	}
	if w.bw != nil {
		t.Error("the buffer is kept after the flush: an idle session would hold it")
	}
	if !strings.HasSuffix(dst.String(), "* 50 EXISTS\r\na1 OK done\r\n") {
		t.Errorf("written %q", dst.String()[len(dst.String())-40:])
	}
	// A continuation request goes out at once.
	if err := w.continuation("Ready"); err != nil || !strings.HasSuffix(dst.String(), "+ Ready\r\n") || dst.writes != 2 {
		t.Errorf("continuation: %v, %d writes", err, dst.writes)
	}
	if w.bw != nil {
		t.Error("the buffer is kept after a continuation request")
	}
}

func TestWriterStatus(t *testing.T) {
	var out bytes.Buffer
	w := newResponseWriter(&out)
	w.status("", imap.StatusResponseTypeOK, "UIDNEXT 5", "")
	w.status("t", imap.StatusResponseTypeNo, "BADCHARSET (US-ASCII UTF-8)", "no\r\n* OK injected")
	w.status("t", imap.StatusResponseTypeBad, "", "[LIMIT] pretend")
	w.statusError("t", &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"})
	w.flush()
	want := "* OK [UIDNEXT 5] Done\r\nt NO [BADCHARSET (US-ASCII UTF-8)] no\r\nt BAD  [LIMIT] pretend\r\nt NO [TRYCREATE] No such mailbox\r\n"
	if out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
}

func TestWriterLiterals(t *testing.T) {
	var out bytes.Buffer
	w := newResponseWriter(&out)
	if err := w.literal(5, strings.NewReader("hello, and more"), false); err != nil {
		t.Fatal(err)
	}
	w.sp()
	if err := w.literal(3, strings.NewReader("\x00\x01\x02"), true); err != nil {
		t.Fatal(err)
	}
	w.sp().flags([]imap.Flag{imap.FlagSeen, "$Label"}).sp().dateTime(time.Date(2020, 2, 7, 9, 5, 3, 0, time.FixedZone("", -3600*8)))
	w.flush()
	if want := "{5}\r\nhello ~{3}\r\n\x00\x01\x02 (\\Seen $Label) \"07-Feb-2020 09:05:03 -0800\""; out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
	// A short source is an error that sticks: the client counts on the size.
	w = newResponseWriter(&out)
	if err := w.literal(10, strings.NewReader("short"), false); err == nil {
		t.Fatal("a short literal passed")
	}
	w.raw("more")
	if err := w.flush(); err == nil {
		t.Error("the error did not stick")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriterErrorSticks(t *testing.T) {
	w := newResponseWriter(failingWriter{})
	w.raw("* OK").crlf()
	if err := w.flush(); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("flush: %v", err)
	}
	w.raw(strings.Repeat("x", 3*writeBufferSize))
	if err := w.flush(); err == nil {
		t.Error("a later flush succeeded")
	}
}
