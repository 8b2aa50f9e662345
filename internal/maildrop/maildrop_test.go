package maildrop

import (
	"strings"
	"testing"
)

// flags is a message as the rules see it; HasFlag compares as IMAP does, case-insensitively.
type flags []string

func (f flags) HasFlag(flag string) bool {
	for _, x := range f {
		if strings.EqualFold(x, flag) {
			return true
		}
	}
	return false
}

func TestInMaildrop(t *testing.T) {
	plain := flags{`\Seen`}
	deleted := flags{`\Deleted`}
	hidden := flags{"$pop3deleted"}
	for _, tc := range []struct {
		m    flags
		mode string
		want bool
	}{
		{plain, DeleteExpunge, true},
		{plain, DeleteKeepFlagged, true},
		{deleted, DeleteExpunge, true},
		{deleted, DeleteHide, true},
		{deleted, DeleteKeepFlagged, false},
		{hidden, DeleteExpunge, false},
		{hidden, DeleteHide, false},
		{hidden, DeleteKeepFlagged, false},
	} {
		if got := InMaildrop(tc.m, tc.mode); got != tc.want {
			t.Errorf("InMaildrop(%v, %s) = %v", tc.m, tc.mode, got)
		}
	}
}

func TestCheckDeleteMode(t *testing.T) {
	for _, mode := range []string{DeleteExpunge, DeleteKeepFlagged, DeleteHide} {
		if err := CheckDeleteMode(mode); err != nil {
			t.Errorf("CheckDeleteMode(%q): %v", mode, err)
		}
	}
	for _, mode := range []string{"", "Expunge", "delete"} {
		if err := CheckDeleteMode(mode); err == nil {
			t.Errorf("CheckDeleteMode(%q) accepted", mode)
		}
	}
}
