package store

import (
	"slices"
	"strings"
)

// System flags are stored as bits (messages.sysflags) so that SQL can count unseen or
// deleted messages; keywords are stored as given, space-separated.
const (
	bitSeen = 1 << iota
	bitAnswered
	bitFlagged
	bitDeleted
	bitDraft
)

// systemFlags lists the system flags in the order Message.Flags gives them (sorted).
var systemFlags = []struct {
	name string
	bit  int
}{
	{FlagAnswered, bitAnswered},
	{FlagDeleted, bitDeleted},
	{FlagDraft, bitDraft},
	{FlagFlagged, bitFlagged},
	{FlagSeen, bitSeen},
}

// flagSet is a message's flags: system flags as bits, keywords sorted and unique
// (compared case-insensitively, as IMAP compares them).
type flagSet struct {
	sys      int
	keywords []string
}

// parseFlags normalises flags from a caller: system flags in any case become bits,
// \Recent (a session property, never stored) and malformed atoms are dropped, keywords
// keep the spelling first given.
func parseFlags(flags []string) flagSet {
	var fs flagSet
	for _, f := range flags {
		if bit := systemBit(f); bit != 0 {
			fs.sys |= bit
			continue
		}
		if f == "" || equalFold(f, `\Recent`) || strings.ContainsAny(f, " \t\r\n()") {
			continue
		}
		fs.addKeyword(f)
	}
	fs.sortKeywords()
	return fs
}

func systemBit(f string) int {
	for _, sf := range systemFlags {
		if equalFold(f, sf.name) {
			return sf.bit
		}
	}
	return 0
}

func (fs *flagSet) hasKeyword(k string) bool {
	return slices.ContainsFunc(fs.keywords, func(x string) bool { return equalFold(x, k) })
}

func (fs *flagSet) addKeyword(k string) {
	if !fs.hasKeyword(k) {
		fs.keywords = append(fs.keywords, k)
	}
}

func (fs *flagSet) sortKeywords() {
	slices.SortFunc(fs.keywords, func(a, b string) int {
		if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

// decodeFlags builds a flagSet from the stored columns.
func decodeFlags(sys int, keywords string) flagSet {
	return flagSet{sys: sys, keywords: strings.Fields(keywords)}
}

// keywordsColumn is the stored form of the keywords.
func (fs flagSet) keywordsColumn() string { return strings.Join(fs.keywords, " ") }

// list is the flags as Message.Flags gives them: system flags, then keywords, each sorted.
func (fs flagSet) list() []string {
	out := make([]string, 0, 5+len(fs.keywords))
	for _, sf := range systemFlags {
		if fs.sys&sf.bit != 0 {
			out = append(out, sf.name)
		}
	}
	return append(out, fs.keywords...)
}

func (fs flagSet) equal(o flagSet) bool {
	return fs.sys == o.sys && slices.Equal(fs.keywords, o.keywords)
}

// apply returns fs changed by op with the flags in change.
func (fs flagSet) apply(op FlagOp, change flagSet) flagSet {
	switch op {
	case FlagsReplace:
		return flagSet{sys: change.sys, keywords: slices.Clone(change.keywords)}
	case FlagsAdd:
		out := flagSet{sys: fs.sys | change.sys, keywords: slices.Clone(fs.keywords)}
		for _, k := range change.keywords {
			out.addKeyword(k)
		}
		out.sortKeywords()
		return out
	case FlagsRemove:
		out := flagSet{sys: fs.sys &^ change.sys}
		for _, k := range fs.keywords {
			if !change.hasKeyword(k) {
				out.keywords = append(out.keywords, k)
			}
		}
		return out
	}
	return fs
}
