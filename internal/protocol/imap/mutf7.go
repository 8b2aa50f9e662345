package imap

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Modified UTF-7 (RFC 3501 §5.1.3): printable US-ASCII stands for itself, except "&",
// which is written "&-"; every other character is UTF-16 (big-endian, surrogate pairs for
// the astral planes) in a "&...-" run of modified BASE64, the RFC 2045 alphabet with ","
// instead of "/" and no "=" padding.

// errModifiedUTF7 says a mailbox name is not valid modified UTF-7. The client gets NO
// for it, as from Dovecot: the name it meant cannot be known.
var errModifiedUTF7 = errors.New("mailbox name is not valid modified UTF-7 (RFC 3501 §5.1.3)")

const mbase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

// mbase64Value is the 6-bit value of each modified BASE64 octet, or -1.
var mbase64Value = func() (v [256]int8) {
	for i := range v {
		v[i] = -1
	}
	for i := range len(mbase64) {
		v[mbase64[i]] = int8(i)
	}
	return v
}()

// decodeModifiedUTF7 decodes a mailbox name. It is strict, as RFC 3501 §5.1.3 is: an
// octet outside printable US-ASCII, a "&" run that is unterminated, empty, not a whole
// number of UTF-16 units, has padding bits set, encodes printable US-ASCII, a lone
// surrogate, or follows another run directly, is an error.
func decodeModifiedUTF7(s string) (string, error) {
	if strings.IndexByte(s, '&') < 0 {
		for i := range len(s) {
			if s[i] < 0x20 || s[i] > 0x7e {
				return "", errModifiedUTF7
			}
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	afterRun := false // the previous octets were a "&...-" run
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errModifiedUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			afterRun = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errModifiedUTF7
		}
		run := s[i+1 : i+1+end]
		i += end + 2
		if run == "" {
			b.WriteByte('&')
			afterRun = false
			continue
		}
		if afterRun { // "&AAA-&AAA-" must have been one run
			return "", errModifiedUTF7
		}
		if err := decodeRun(&b, run); err != nil {
			return "", err
		}
		afterRun = true
	}
	return b.String(), nil
}

// decodeRun decodes the modified BASE64 between "&" and "-".
func decodeRun(b *strings.Builder, run string) error {
	var units []uint16
	var acc uint32
	bits := 0
	for i := range len(run) {
		v := mbase64Value[run[i]]
		if v < 0 {
			return errModifiedUTF7
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 16 {
			bits -= 16
			units = append(units, uint16(acc>>bits))
			acc &= 1<<bits - 1
		}
	}
	// What is left must be fewer than 6 bits, all zero (RFC 2045 §6.8 without padding).
	if bits >= 6 || acc != 0 || len(units) == 0 {
		return errModifiedUTF7
	}
	for i := 0; i < len(units); i++ {
		u := rune(units[i])
		switch {
		case utf16.IsSurrogate(u):
			if u >= 0xdc00 || i+1 >= len(units) {
				return errModifiedUTF7
			}
			r := utf16.DecodeRune(u, rune(units[i+1]))
			if r == utf8.RuneError {
				return errModifiedUTF7
			}
			b.WriteRune(r)
			i++
		case u >= 0x20 && u <= 0x7e:
			return errModifiedUTF7 // printable US-ASCII must stand for itself
		default:
			b.WriteRune(u)
		}
	}
	return nil
}

// encodeModifiedUTF7 encodes a UTF-8 mailbox name for a client that has not enabled
// UTF8=ACCEPT or IMAP4rev2. Invalid UTF-8 is encoded as U+FFFD.
func encodeModifiedUTF7(s string) string {
	plain := true
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '&' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	var units []uint16
	flush := func() {
		if len(units) == 0 {
			return
		}
		b.WriteByte('&')
		var acc uint32
		bits := 0
		for _, u := range units {
			acc = acc<<16 | uint32(u)
			bits += 16
			for bits >= 6 {
				bits -= 6
				b.WriteByte(mbase64[acc>>bits&0x3f])
			}
			acc &= 1<<bits - 1
		}
		if bits > 0 {
			b.WriteByte(mbase64[acc<<(6-bits)&0x3f])
		}
		b.WriteByte('-')
		units = units[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		units = utf16.AppendRune(units, r)
	}
	flush()
	return b.String()
}
