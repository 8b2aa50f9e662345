package threading

import (
	"strings"
	"testing"
)

func TestBaseSubject(t *testing.T) {
	tests := []struct {
		name, subject, base string
		replyOrForward      bool
	}{
		{"empty", "", "", false},
		{"plain", "Hello world", "Hello world", false},
		{"case kept", "HeLLo", "HeLLo", false},
		// (1) tabs and continuations become spaces, runs of spaces one space.
		{"tab", "a\tb", "a b", false},
		{"folded", "long\r\n subject", "long subject", false},
		{"runs of spaces", "a   b \t c", "a b c", false},
		// (2) subj-trailer: "(fwd)" and WSP, repeatedly, any case.
		{"trailing space", "foo  ", "foo", false},
		{"fwd trailer", "foo (fwd)", "foo", true},
		{"fwd trailers any case", "foo (fWd)  (FWD)", "foo", true},
		{"fwd trailer glued", "foo(fwd)", "foo", true},
		{"fwd in the middle stays", "foo (fwd) bar", "foo (fwd) bar", false},
		{"other parenthesis stays", "b (a)", "b (a)", false},
		// (3) subj-leader: *subj-blob subj-refwd, or WSP.
		{"re", "Re: foo", "foo", true},
		{"RE upper", "RE: foo", "foo", true},
		{"fw", "Fw: foo", "foo", true},
		{"fwd", "fwd: foo", "foo", true},
		{"re without space", "re:foo", "foo", true},
		{"space before colon", "Re : foo", "foo", true},
		{"re with counter blob", "Re[2]: foo", "foo", true},
		{"re space blob", "Re [2] : foo", "foo", true},
		{"repeated leaders", "Re: Re: Fwd: re: foo", "foo", true},
		{"blob before re", "[list] Re: foo", "foo", true},
		{"blobs before re", "[a][b] Re: foo", "foo", true},
		{"leading space", "   foo", "foo", false},
		{"not a leader: word", "Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x", false},
		{"not a leader: longer word", "Reply: foo", "Reply: foo", false},
		{"not a leader: refwd without colon", "Re foo", "Re foo", false},
		{"not a leader: fwd-d-d", "Fwdd: foo", "Fwdd: foo", false},
		{"re alone", "Re:", "", true},
		// (4) a leading subj-blob goes when something is left after it.
		{"blob", "[list] foo", "foo", false},
		{"blob alone stays", "[xyz]", "[xyz]", false},
		{"blob then blob alone", "[a] [b]", "[b]", false},
		{"blob then re", "[a] Re: [b] foo", "foo", true},
		{"nested brackets not a blob", "[a [b] c] foo", "[a [b] c] foo", false},
		{"unclosed blob", "[abc foo", "[abc foo", false},
		// (5) (3) and (4) until nothing matches.
		{"imaptest mixed", "[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b", true},
		// (6) the [fwd: ...] wrapper, then from (2) again.
		{"fwd wrapper", "[fwd: foo]", "foo", true},
		{"fwd wrapper upper", "Re: [FWD: c]", "c", true},
		{"fwd wrapper with trailer inside", "[Fwd: foo (fwd)]", "foo", true},
		{"nested fwd wrappers", "re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", true},
		{"fwd wrapper not closed at the end", "[fwd: foo] bar", "bar", false},
		{"fwd wrapper empty", "[fwd:]", "", true},
		// Non-ASCII (already decoded UTF-8) is text like any other.
		{"utf-8", "Re: [liste] Grüße  aus Köln", "Grüße aus Köln", true},
		{"utf-8 blob", "[Ärger] x", "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, rf := baseSubject(tt.subject)
			if base != tt.base || rf != tt.replyOrForward {
				t.Errorf("baseSubject(%q) = %q, %v; want %q, %v", tt.subject, base, rf, tt.base, tt.replyOrForward)
			}
			if got := BaseSubject(tt.subject); got != tt.base {
				t.Errorf("BaseSubject(%q) = %q, want %q", tt.subject, got, tt.base)
			}
			// The base subject of a base subject is itself: nothing is left to remove.
			if again := BaseSubject(base); again != base {
				t.Errorf("BaseSubject(%q) = %q: not a fixed point", base, again)
			}
		})
	}
}

func TestBaseSubjectNoCopy(t *testing.T) {
	// A subject without whitespace to normalise is sliced, not copied.
	allocs := testing.AllocsPerRun(100, func() {
		_ = BaseSubject("Re: [list] Fwd: the quarterly report (fwd)")
	})
	if allocs != 0 {
		t.Errorf("BaseSubject allocated %v times", allocs)
	}
}

func TestCasemapCollation(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "a", -1},
		{"a", "A", 0},
		{"abc", "ABD", -1},
		{"b", "a", 1},
		{"a", "ab", -1},
		// i;ascii-casemap maps to upper case: "_" (0x5F) is above "C" (0x43) and "c",
		// "[" (0x5B) above "C" and below "_".
		{"_", "c", 1},
		{"[xyz]", "c", 1},
		{"[xyz]", "_", -1},
		// Non-ASCII octets compare as octets, not folded.
		{"é", "É", 1},
	}
	for _, tt := range tests {
		keys := []string{tt.a, tt.b}
		foldKeys(keys)
		if got := strings.Compare(keys[0], keys[1]); got != tt.want {
			t.Errorf("i;ascii-casemap(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	// Strings without lower-case letters are kept, not copied.
	keys := []string{"ABC", "_[]", ""}
	if allocs := testing.AllocsPerRun(10, func() { foldKeys(keys) }); allocs != 0 {
		t.Errorf("foldKeys of upper-case keys allocated %v times", allocs)
	}
}
