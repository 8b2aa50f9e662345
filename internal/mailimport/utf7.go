package mailimport

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// IMAP's modified UTF-7 (RFC 3501 §5.1.3), in which Dovecot spells Maildir++ folder names
// on disk: printable ASCII stands for itself, "&-" for "&", and "&...-" holds UTF-16 in
// base64 with "," for "/" and no padding.

var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// DecodeMailboxName turns a modified UTF-7 mailbox name into UTF-8. Text that is already
// UTF-8 (Dovecot's maildir ":UTF-8" option) passes through; invalid UTF-8 is an error.
func DecodeMailboxName(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("modified UTF-7: not UTF-8 either")
	}
	if !strings.Contains(s, "&") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		j := strings.IndexByte(s, '-')
		if j < 0 {
			return "", errors.New("modified UTF-7: unterminated &")
		}
		if j == 0 {
			b.WriteByte('&')
		} else {
			raw, err := mutf7.DecodeString(s[:j])
			if err != nil || len(raw)%2 != 0 {
				return "", errors.New("modified UTF-7: bad base64")
			}
			units := make([]uint16, len(raw)/2)
			for k := range units {
				units[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
			}
			b.WriteString(string(utf16.Decode(units)))
		}
		s = s[j+1:]
	}
}

// EncodeMailboxName turns a UTF-8 mailbox name into modified UTF-7.
func EncodeMailboxName(s string) string {
	var b strings.Builder
	var pending []rune
	flush := func() {
		if len(pending) == 0 {
			return
		}
		units := utf16.Encode(pending)
		raw := make([]byte, 2*len(units))
		for k, u := range units {
			raw[2*k], raw[2*k+1] = byte(u>>8), byte(u)
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(raw))
		b.WriteByte('-')
		pending = pending[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e && r != utf8.RuneError {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		pending = append(pending, r)
	}
	flush()
	return b.String()
}
