package mailmsg

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPreviewText(t *testing.T) {
	if got := previewText("a\x00b\x1bc \u00a0 d"); got != "abc d" {
		t.Errorf("previewText = %q", got)
	}
	in := strings.Repeat("x", PreviewMax-1) + " yz"
	if got := previewText(in); utf8.RuneCountInString(got) > PreviewMax || strings.HasSuffix(got, " ") {
		t.Errorf("previewText(%d chars) = %d chars %q", len(in), utf8.RuneCountInString(got), got[len(got)-3:])
	}
}
