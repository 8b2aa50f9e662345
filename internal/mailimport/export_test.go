package mailimport

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// oneByteAtATime hands text to w in one-byte writes, so that CRLF pairs and "From " are
// split across writes.
func oneByteAtATime(text string) func(io.Writer) error {
	return func(w io.Writer) error {
		for i := 0; i < len(text); i++ {
			if _, err := w.Write([]byte{text[i]}); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestMboxRoundTrip(t *testing.T) {
	msgs := []struct {
		text  string
		flags []string
		date  time.Time
	}{
		{"Subject: a\r\n\r\nFrom the start\r\n>From once\r\n>>From twice\r\nFro\r\n\r\n", []string{flagSeen, flagAnswered, "$Label1", "Work"}, time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC)},
		{"Subject: b\r\nStatus: kept? no: it is ours\r\n X-continued\r\n\r\nbody\r\n", nil, time.Date(2024, 2, 1, 0, 0, 1, 0, time.UTC)},
		{"Subject: c\r\n\r\nx\r\n", []string{flagDraft, flagDeleted, flagFlagged}, time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
	}
	var buf bytes.Buffer
	w := NewMboxWriter(&buf)
	for _, m := range msgs {
		if err := w.Add(m.flags, m.date, oneByteAtATime(m.text)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "\n>From the start\n>>From once\n>>>From twice\nFro\n") {
		t.Errorf("mboxrd quoting:\n%s", buf.String())
	}
	r := NewMboxReader(&buf)
	for i, m := range msgs {
		got, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		body, flags, err := MboxFlags(got.Body)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(body)
		want := strings.ReplaceAll(m.text, "\r\n", "\n")
		if i == 1 { // a Status field of the message's own is taken as flags too, and removed
			want = "Subject: b\n\nbody\n"
		}
		if string(raw) != want {
			t.Errorf("message %d: %q, want %q", i, raw, want)
		}
		if !got.Date.Equal(m.date) {
			t.Errorf("message %d: date %v, want %v", i, got.Date, m.date)
		}
		wantFlags := map[string]bool{}
		for _, f := range m.flags {
			wantFlags[f] = true
		}
		gotFlags := map[string]bool{}
		for _, f := range flags {
			gotFlags[f] = true
		}
		if !reflect.DeepEqual(gotFlags, wantFlags) {
			t.Errorf("message %d: flags %v, want %v", i, flags, m.flags)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last message: %v", err)
	}
}

func TestLFWriter(t *testing.T) {
	for in, want := range map[string]string{
		"a\r\nb\r\n":   "a\nb\n",
		"a\rb\r\n\r\n": "a\rb\n\n",
		"end\r":        "end\r",
	} {
		var buf bytes.Buffer
		lf := &lfWriter{w: &buf}
		oneByteAtATime(in)(lf)
		lf.flush()
		if buf.String() != want || lf.n != int64(len(want)) {
			t.Errorf("%q: %q (%d counted), want %q", in, buf.String(), lf.n, want)
		}
	}
}

// FuzzMboxExport: any message body (as the store keeps it: CRLF line ends) written by
// MboxWriter is read back by MboxReader and MboxFlags exactly, with LF line ends, and with
// the flags it was written with.
func FuzzMboxExport(f *testing.F) {
	f.Add("From here\n>From there\n\nFrom \n>>From\nFro", true)
	f.Add("\n\n\nFrom x\n\n", false)
	f.Add("", true)
	f.Fuzz(func(t *testing.T, body string, seen bool) {
		body = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(body)
		if body != "" && !strings.HasSuffix(body, "\n") {
			body += "\n"
		}
		msg := "Subject: x\n\n" + body
		var flags []string
		if seen {
			flags = []string{flagSeen, "$Label1"}
		}
		var buf bytes.Buffer
		w := NewMboxWriter(&buf)
		crlf := strings.ReplaceAll(msg, "\n", "\r\n")
		for i := 0; i < 2; i++ {
			if err := w.Add(flags, time.Unix(1705311000, 0), oneByteAtATime(crlf)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r := NewMboxReader(bytes.NewReader(buf.Bytes()))
		for i := 0; i < 2; i++ {
			m, err := r.Next()
			if err != nil {
				t.Fatalf("message %d: %v\n%q", i, err, buf.String())
			}
			got, gotFlags, err := MboxFlags(m.Body)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(got)
			if string(raw) != msg || len(gotFlags) != len(flags) {
				t.Fatalf("message %d: %q %v, want %q %v\nmbox: %q", i, raw, gotFlags, msg, flags, buf.String())
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Errorf("after two messages: %v", err)
		}
	})
}
