package maildrop

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxUIDLLength is the longest unique-id RFC 1939 §7 allows.
const MaxUIDLLength = 70

// DefaultUIDLFormat is Dovecot's default pop3_uidl_format: the UID and the UIDVALIDITY as
// eight lower-case hex digits each.
const DefaultUIDLFormat = "%08Xu%08Xv"

// FormatUIDL is the unique-id a POP3 server with the given pop3.uidl_format ("" means
// DefaultUIDLFormat) shows for the INBOX message uid of a mailbox with uidValidity. It lets
// other views of the store (the test API, the inspector) show the UIDL without a POP3 session.
func FormatUIDL(format string, uid, uidValidity uint32) (string, error) {
	f, err := ParseUIDLFormat(format)
	if err != nil {
		return "", err
	}
	return f.UIDL(uid, uidValidity), nil
}

// UIDLFormat is a parsed pop3.uidl_format.
type UIDLFormat []uidlToken

// uidlToken is literal text, or a variable (key != 0) as Dovecot's var_expand takes it:
// %[0][width][modifiers]key.
type uidlToken struct {
	literal string
	key     byte   // 'u' (UID) or 'v' (UIDVALIDITY); 0 for literal text
	zero    bool   // width pads with zeros; without it, width truncates (as in Dovecot)
	width   int    // 0: as long as it is
	mods    string // modifiers applied in order: X (lower-case hex), U (upper), L (lower)
}

// ParseUIDLFormat parses and checks a pop3.uidl_format ("" means DefaultUIDLFormat),
// expanded as Dovecot's var_expand does: the variables %u (the UID) and %v (the INBOX
// UIDVALIDITY), also spelt %{uid} and %{uidvalidity}, with an optional width (zero-padded as
// in %08u, truncating without the 0) and the modifiers X (lower-case hex), U and L; %%, and
// literal printable ASCII. It must contain a %u that is not truncated, so that UIDLs are
// unique, and expand to at most 70 printable characters (RFC 1939 §7). Errors name the
// setting pop3.uidl_format.
func ParseUIDLFormat(format string) (UIDLFormat, error) {
	if format == "" {
		format = DefaultUIDLFormat
	}
	f, err := parseUIDLFormat(format)
	if err != nil {
		return nil, fmt.Errorf("pop3.uidl_format: %w", err)
	}
	return f, nil
}

func parseUIDLFormat(format string) (UIDLFormat, error) {
	var f UIDLFormat
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f = append(f, uidlToken{literal: lit.String()})
			lit.Reset()
		}
	}
	unique := false
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			if c < 0x21 || c > 0x7e {
				return nil, fmt.Errorf("%q: character %q is not printable ASCII (RFC 1939 §7)", format, c)
			}
			lit.WriteByte(c)
			continue
		}
		i++
		if i < len(format) && format[i] == '%' {
			lit.WriteByte('%')
			continue
		}
		var t uidlToken
		if i < len(format) && format[i] == '0' {
			t.zero = true
			i++
		}
		for i < len(format) && format[i] >= '0' && format[i] <= '9' {
			t.width = t.width*10 + int(format[i]-'0')
			if t.width > MaxUIDLLength {
				return nil, fmt.Errorf("%q: width is longer than a UIDL may be", format)
			}
			i++
		}
		for i < len(format) && strings.IndexByte("XUL", format[i]) >= 0 {
			t.mods += string(format[i])
			i++
		}
		if i >= len(format) {
			return nil, fmt.Errorf("%q: '%%' at the end", format)
		}
		switch format[i] {
		case 'u', 'v':
			t.key = format[i]
		case '{':
			end := strings.IndexByte(format[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("%q: unterminated %%{", format)
			}
			switch name := format[i+1 : i+end]; name {
			case "uid":
				t.key = 'u'
			case "uidvalidity":
				t.key = 'v'
			default:
				return nil, fmt.Errorf("%q: unsupported variable %%{%s}: use %%u (uid) or %%v (uidvalidity)", format, name)
			}
			i += end
		default:
			return nil, fmt.Errorf("%q: unsupported variable %%%c: use %%u (UID), %%v (UIDVALIDITY) or %%%%",
				format, format[i])
		}
		// A width without 0 truncates (as in Dovecot): a truncated UID is not unique.
		if t.key == 'u' && (t.width == 0 || t.zero) {
			unique = true
		}
		flush()
		f = append(f, t)
	}
	flush()
	if !unique {
		return nil, errors.New("format must contain %u (the UID), not truncated, so that UIDLs are unique")
	}
	for _, v := range []uint32{0, 1, 1<<32 - 1} {
		if uidl := f.UIDL(v, v); len(uidl) > MaxUIDLLength {
			return nil, fmt.Errorf("%q expands to %d characters, more than the %d RFC 1939 §7 allows",
				format, len(uidl), MaxUIDLLength)
		}
	}
	return f, nil
}

// UIDL gives the unique-id of the message with uid in a mailbox with uidValidity.
func (f UIDLFormat) UIDL(uid, uidValidity uint32) string {
	var b strings.Builder
	for _, t := range f {
		if t.key == 0 {
			b.WriteString(t.literal)
			continue
		}
		n := uid
		if t.key == 'v' {
			n = uidValidity
		}
		v := strconv.FormatUint(uint64(n), 10)
		for _, m := range t.mods {
			switch m {
			case 'X':
				// Dovecot's %X: the decimal value in lower-case hex (0 if not a number).
				d, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					d = 0
				}
				v = strconv.FormatUint(d, 16)
			case 'U':
				v = strings.ToUpper(v)
			case 'L':
				v = strings.ToLower(v)
			}
		}
		switch {
		case t.width == 0:
		case t.zero:
			if len(v) < t.width {
				b.WriteString(strings.Repeat("0", t.width-len(v)))
			}
		case len(v) > t.width:
			v = v[:t.width]
		}
		b.WriteString(v)
	}
	return b.String()
}
