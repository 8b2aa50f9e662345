package maildrop

import (
	"strings"
	"testing"
)

func TestUIDLFormatExpand(t *testing.T) {
	for _, tc := range []struct {
		format           string
		uid, uidvalidity uint32
		want             string
	}{
		// Dovecot's default: %X is lower-case hex, %08 zero-pads to 8.
		{"%08Xu%08Xv", 0x83, 0x6b025f75, "000000836b025f75"},
		{"%08Xv%08Xu", 0x83, 0x6b025f75, "6b025f7500000083"},
		{"%u", 1234, 99, "1234"},
		{"%v.%u", 7, 1700000000, "1700000000.7"},
		{"%Xu", 255, 0, "ff"},
		{"%XUu", 255, 0, "FF"},
		{"%06u", 42, 0, "000042"},
		{"%3v-%u", 5, 1700000000, "170-5"}, // a width without 0 truncates, as in Dovecot
		{"%%%u%%", 9, 0, "%9%"},
		{"%{uid}:%{uidvalidity}", 3, 4, "3:4"},
		{"%08Xu%08Xv", 0xffffffff, 0xffffffff, "ffffffffffffffff"},
		{"%02u", 12345, 0, "12345"}, // padding never truncates
	} {
		f, err := ParseUIDLFormat(tc.format)
		if err != nil {
			t.Errorf("ParseUIDLFormat(%q): %v", tc.format, err)
			continue
		}
		if got := f.UIDL(tc.uid, tc.uidvalidity); got != tc.want {
			t.Errorf("%q with uid %d, uidvalidity %d = %q, want %q", tc.format, tc.uid, tc.uidvalidity, got, tc.want)
		}
	}
}

func TestUIDLFormatInvalid(t *testing.T) {
	for _, format := range []string{
		"%08Xv", "%m", "%f", "%08Xu %08Xv", "%u\t", "%u%", "%{md5}%u", "%{uid",
		"%3u", "%-5u", "%5.3u", "%071u", "%070u%v", "%u\x80",
	} {
		_, err := ParseUIDLFormat(format)
		if err == nil {
			t.Errorf("ParseUIDLFormat(%q) accepted", format)
		} else if !strings.HasPrefix(err.Error(), "pop3.uidl_format: ") {
			t.Errorf("ParseUIDLFormat(%q): %v, want an error naming pop3.uidl_format", format, err)
		}
	}
}

func TestFormatUIDL(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   string
	}{
		{"", "000000836b025f75"}, // DefaultUIDLFormat
		{"%v.%u", "1795317621.131"},
	} {
		got, err := FormatUIDL(tc.format, 0x83, 0x6b025f75)
		if err != nil || got != tc.want {
			t.Errorf("FormatUIDL(%q) = %q, %v; want %q", tc.format, got, err, tc.want)
		}
	}
	if _, err := FormatUIDL("%v", 1, 2); err == nil {
		t.Error("FormatUIDL accepted a format without %u")
	}
}
