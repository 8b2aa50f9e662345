package pop3

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

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
