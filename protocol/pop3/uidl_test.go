package pop3

import (
	"fmt"
	"regexp"
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
		f, err := parseUIDLFormat(tc.format)
		if err != nil {
			t.Errorf("parseUIDLFormat(%q): %v", tc.format, err)
			continue
		}
		if got := f.expand(tc.uid, tc.uidvalidity); got != tc.want {
			t.Errorf("%q with uid %d, uidvalidity %d = %q, want %q", tc.format, tc.uid, tc.uidvalidity, got, tc.want)
		}
	}
}

func TestUIDLFormatInvalid(t *testing.T) {
	for _, format := range []string{
		"", "%08Xv", "%m", "%f", "%08Xu %08Xv", "%u\t", "%u%", "%{md5}%u", "%{uid",
		"%3u", "%-5u", "%5.3u", "%071u", "%070u%v", "%u\x80",
	} {
		if _, err := parseUIDLFormat(format); err == nil {
			t.Errorf("parseUIDLFormat(%q) accepted", format)
		}
	}
}

func TestUIDL(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.deliver(plainMessage(fmt.Sprintf("message %d", i), "x\r\n"))
	}
	inbox := e.inbox()
	mb, err := e.st.MailboxByID(t.Context(), e.inboxID())
	if err != nil {
		t.Fatal(err)
	}
	c := e.login()
	_, lines := c.multi("UIDL")
	if len(lines) != 3 {
		t.Fatalf("UIDL = %q, want 3 lines", lines)
	}
	printable := regexp.MustCompile(`^[\x21-\x7e]{1,70}$`)
	for i, l := range lines {
		want := fmt.Sprintf("%d %08x%08x", i+1, inbox[i].UID, mb.UIDValidity)
		if l != want {
			t.Errorf("UIDL line %q, want %q", l, want)
		}
		if !printable.MatchString(strings.Fields(l)[1]) {
			t.Errorf("UIDL %q is not 1-70 printable characters (RFC 1939 §7)", l)
		}
		if one := c.ok(fmt.Sprintf("UIDL %d", i+1)); one != "+OK "+l {
			t.Errorf("UIDL %d = %q, want %q", i+1, one, "+OK "+l)
		}
	}
	c.err("UIDL 4")
	c.err("UIDL 1 2")
	c.ok("QUIT")
	c.closed()

	// Stable across sessions; a new message gets a new one.
	e.deliver(plainMessage("later", "y\r\n"))
	c = e.login()
	_, again := c.multi("UIDL")
	if len(again) != 4 || strings.Join(again[:3], ",") != strings.Join(lines, ",") {
		t.Errorf("UIDL in the next session = %q, want %q and one more", again, lines)
	}
	for _, l := range lines {
		if strings.Fields(l)[1] == strings.Fields(again[3])[1] {
			t.Errorf("the new message reuses UIDL %q", l)
		}
	}
}

func TestUIDLCustomFormat(t *testing.T) {
	e := newEnv(t, withOptions(func(o *Options) { o.UIDLFormat = "%v.%u" }))
	e.deliver(plainMessage("custom", "x\r\n"))
	m := e.inbox()[0]
	mb, err := e.st.MailboxByID(t.Context(), e.inboxID())
	if err != nil {
		t.Fatal(err)
	}
	c := e.login()
	if got, want := c.ok("UIDL 1"), fmt.Sprintf("+OK 1 %d.%d", mb.UIDValidity, m.UID); got != want {
		t.Errorf("UIDL 1 = %q, want %q", got, want)
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
