package threading

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// FuzzBaseSubject: whatever the subject, the base subject is a fixed point (nothing is
// left that the rules would remove), has no leading or trailing space and no run of
// spaces, and is part of the normalised input.
func FuzzBaseSubject(f *testing.F) {
	for _, s := range []string{
		"", "Re: foo", "[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "re: [fwd: [fwd: re: [fwd: babylon]]]",
		"[xyz]", "[a] [b]", "Re[2]: x", "fwd [x] : y", "[fwd: x] y", "a\t\r\n b", "[[]]", "[fwd:]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		base := BaseSubject(subject)
		if again := BaseSubject(base); again != base {
			t.Fatalf("BaseSubject(%q) = %q, but BaseSubject of that is %q", subject, base, again)
		}
		if strings.HasPrefix(base, " ") || strings.HasSuffix(base, " ") || strings.Contains(base, "  ") {
			t.Fatalf("BaseSubject(%q) = %q: stray spaces", subject, base)
		}
		if !strings.Contains(strings.ToLower(collapseWhitespace(subject)), strings.ToLower(base)) {
			t.Fatalf("BaseSubject(%q) = %q: not part of the subject", subject, base)
		}
	})
}

// FuzzReferences: whatever the Message-IDs and References, every message is in the
// threads exactly once, dummies only at the top with two or more children, and Format
// prints every message.
func FuzzReferences(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0, 1, 1, 0, 2, 1, 0, 3, 2, 1, 9, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Each message takes 3 bytes: its Message-ID, a reference (0: none), a subject.
		var msgs []Message
		for i := 0; i+2 < len(data) && len(msgs) < 200; i += 3 {
			m := Message{Seq: uint32(len(msgs) + 1), MessageID: fmt.Sprintf("<%d>", data[i]%16)}
			if data[i+1]%8 != 0 {
				m.References = []string{fmt.Sprintf("<%d>", data[i+1]%16), fmt.Sprintf("<%d>", data[i+1]/16)}
			}
			m.Subject = []string{"", "a", "Re: a", "A (fwd)", "b", "[fwd: b]"}[data[i+2]%6]
			m.InternalDate = at(time.Duration(data[i+2]/6) * time.Second)
			msgs = append(msgs, m)
		}
		seen := make([]int, len(msgs))
		var walk func(th *Thread, top bool)
		walk = func(th *Thread, top bool) {
			if th.Dummy() && (!top || len(th.Children) < 2) {
				t.Fatalf("dummy (top %v) with %d children", top, len(th.Children))
			}
			if !th.Dummy() {
				seen[th.Index]++
			}
			for _, c := range th.Children {
				walk(c, false)
			}
		}
		threads := References(msgs)
		for _, th := range threads {
			walk(th, true)
		}
		for i, n := range seen {
			if n != 1 {
				t.Fatalf("message %d in the threads %d times", i+1, n)
			}
		}
		text := bySeq(msgs, threads)
		if got := len(strings.FieldsFunc(text, func(r rune) bool { return r == '(' || r == ')' || r == ' ' })); got != len(msgs) {
			t.Fatalf("Format printed %d numbers for %d messages: %s", got, len(msgs), text)
		}
	})
}
