package mailimport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzMbox splits arbitrary input as an mbox file and compares the result with a simple
// whole-input model of the same rules (package comment): the messages, concatenated with
// their separator lines, the blank lines before separators, the blank line at the end and
// the '>' removed by mboxrd un-quoting, give back the input exactly. The reader is driven
// twice, once reading every message whole and once through one-octet reads skipping every
// other message, and must agree with the model both times. Nothing may panic.
func FuzzMbox(f *testing.F) {
	for _, seed := range []string{
		"From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n\nFrom c@d Tue Jan  2 00:00:00 2024\nSubject: two\n\n>From quoted\n>>From twice\n",
		"From a\r\n\r\nFrom b\r\nx\r\n\r\n\r\nFrom c\r\n",
		"\n\n\nFrom x\nno trailing newline",
		"From x\nFrom y\n\nFrom z\n\n",
		"not an mbox\n",
		"",
		"\n\n",
		"From x\n>From \n\r\n\rFrom y\n",
		"From x\n" + strings.Repeat("y", 70<<10) + "\n\nFrom " + strings.Repeat("z", 70<<10) + "\nlast\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want, wantErr := modelMbox(in)
		got, err := splitMbox(bytes.NewReader(in), nil)
		if !errors.Is(err, wantErr) {
			t.Fatalf("error %v, model says %v\ninput %.200q", err, wantErr, in)
		}
		if err := sameMessages(got, want); err != nil {
			t.Fatalf("%v\ninput %.200q", err, in)
		}
		// Again with one-octet reads, leaving every other message unread.
		skip := func(i int) bool { return i%2 == 1 }
		got, err = splitMbox(iotest.OneByteReader(bytes.NewReader(in)), skip)
		if !errors.Is(err, wantErr) {
			t.Fatalf("one-byte reads: error %v, model says %v\ninput %.200q", err, wantErr, in)
		}
		for i := range want {
			if skip(i) {
				want[i].body = ""
			}
		}
		if err := sameMessages(got, want); err != nil {
			t.Fatalf("one-byte reads: %v\ninput %.200q", err, in)
		}
	})
}

type mboxMsg struct{ sep, body string }

// splitMbox reads all messages with MboxReader; skip(i) leaves message i unread.
func splitMbox(r io.Reader, skip func(int) bool) ([]mboxMsg, error) {
	mr := NewMboxReader(r)
	var out []mboxMsg
	for i := 0; ; i++ {
		m, err := mr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		msg := mboxMsg{sep: m.Separator}
		if skip == nil || !skip(i) {
			b, err := io.ReadAll(m.Body)
			if err != nil {
				return out, err
			}
			msg.body = string(b)
		}
		out = append(out, msg)
	}
}

func sameMessages(got, want []mboxMsg) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d messages, model says %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("message %d: got %.200q, model says %.200q", i, got[i], want[i])
		}
	}
	return nil
}

// modelMbox splits in by the package's mbox rules, working on whole lines of the whole
// input: a separator is a "From " line at the start (after blank lines) or right after a
// blank line; that blank line, and a blank last line, are dropped; ^>+From  loses a '>'.
func modelMbox(in []byte) ([]mboxMsg, error) {
	lines := slices.Collect(bytes.Lines(in))
	// Before the first separator a blank line need not be complete: a file of only
	// line-end characters ("\r") holds no messages.
	i := 0
	for i < len(lines) && len(bytes.TrimRight(lines[i], "\r\n")) == 0 {
		i++
	}
	if i == len(lines) {
		return nil, nil
	}
	if !bytes.HasPrefix(lines[i], []byte("From ")) {
		return nil, ErrNotMbox
	}
	var out []mboxMsg
	cur := mboxMsg{sep: strings.TrimRight(string(lines[i]), "\r\n")}
	var body []byte
	for _, l := range lines[i+1:] {
		n := len(body)
		if bytes.HasPrefix(l, []byte("From ")) && n > 0 && isAfterBlankLine(body) {
			// Drop the blank line before the separator.
			body = body[:n-len(lastLine(body))]
			cur.body = string(body)
			out = append(out, cur)
			cur, body = mboxMsg{sep: strings.TrimRight(string(l), "\r\n")}, nil
			continue
		}
		if isQuotedFrom(l) {
			l = l[1:]
		}
		body = append(body, l...)
	}
	if len(body) > 0 && isAfterBlankLine(body) {
		body = body[:len(body)-len(lastLine(body))]
	}
	cur.body = string(body)
	return append(out, cur), nil
}

// lastLine is the last line of b (b ends with '\n' when called from isAfterBlankLine).
func lastLine(b []byte) []byte {
	i := bytes.LastIndexByte(b[:len(b)-1], '\n')
	return b[i+1:]
}

// isAfterBlankLine reports whether b ends with a complete blank line.
func isAfterBlankLine(b []byte) bool {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return false
	}
	return len(bytes.TrimRight(lastLine(b), "\r\n")) == 0
}

// FuzzMaildirName checks Maildir file names and dovecot-keywords files: whatever they
// hold, every flag is an IMAP flag or a keyword that is a valid IMAP atom (RFC 3501
// flag-keyword), no flag comes twice, and the unique part is the name up to the info.
func FuzzMaildirName(f *testing.F) {
	f.Add("1705311001.M2P1.host:2,FS", "0 $Label1\n1 Work\n")
	f.Add("1705311001.M2P1.host:2,abcz", "0 $Label1\n25 last\n26 toofar\n-1 neg\nx y\n")
	f.Add("noinfo", "")
	f.Add("1.x:1,experimental", "0  spaced  out \n")
	f.Add("2.y:2,SSRRa", "0 two words\n1 paren(\n2 \"quoted\"\n3 \\Seen\n4 per%cent\n5 star*\n6 brace{\n7 ]x\n")
	f.Fuzz(func(t *testing.T, name, keywordFile string) {
		if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || name == "" {
			t.Skip("not a file name")
		}
		dir := t.TempDir()
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte(keywordFile), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cur", name), []byte("Subject: x\n\n"), 0o644); err != nil {
			t.Skipf("the file system refuses the name: %v", err)
		}
		msgs, err := ReadMaildir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(name, ".") {
			if len(msgs) != 0 {
				t.Fatalf("a dot file was imported: %v", msgs)
			}
			return
		}
		if len(msgs) != 1 {
			t.Fatalf("%d messages, want 1", len(msgs))
		}
		seen := map[string]bool{}
		for _, fl := range msgs[0].Flags {
			if seen[fl] {
				t.Fatalf("flag %q twice in %q", fl, msgs[0].Flags)
			}
			seen[fl] = true
			if strings.HasPrefix(fl, `\`) {
				if !slices.Contains([]string{flagSeen, flagAnswered, flagFlagged, flagDeleted, flagDraft}, fl) {
					t.Fatalf("system flag %q is not one Maildir names", fl)
				}
				continue
			}
			if !isAtom(fl) {
				t.Fatalf("keyword %q is not an IMAP atom (from keywords file %q)", fl, keywordFile)
			}
		}
	})
}

// isAtom reports whether s is an RFC 3501 atom: ATOM-CHAR is any CHAR except
// atom-specials: ( ) { SP CTL % * " \ ].
func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// TestMboxSeparatorLongerThanBuffer is FuzzMbox's first find: a "From " line longer than
// the reader's buffer lost its beginning, because the first fragment was overwritten by
// the read of the rest.
func TestMboxSeparatorLongerThanBuffer(t *testing.T) {
	long := "From " + strings.Repeat("z", 70<<10)
	msgs, err := splitMbox(strings.NewReader("From a\nfirst\n\n"+long+"\nsecond\n"), nil)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("%d messages, %v; want 2", len(msgs), err)
	}
	if msgs[1].sep != long || msgs[1].body != "second\n" {
		t.Fatalf("second message: separator of %d octets starting %.10q, body %q", len(msgs[1].sep), msgs[1].sep, msgs[1].body)
	}
}
