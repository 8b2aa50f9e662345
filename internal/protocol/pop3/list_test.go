package pop3

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in string
		n  int64
		ok bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"00042", 42, true},
		{"99999999999999999999999", 1<<63 - 1, true},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1x", 0, false},
		{"١", 0, false}, // Arabic-Indic digit one
	} {
		n, ok := parseNumber(tc.in)
		if n != tc.n || ok != tc.ok {
			t.Errorf("parseNumber(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.n, tc.ok)
		}
	}
}

func TestStatListSizesMatchRetr(t *testing.T) {
	e := newEnv(t)
	msgs := []string{
		plainMessage("small", "hello\r\n"),
		plainMessage("dots", ".\r\n..\r\n.leading dot\r\n"),
		plainMessage("no final newline", "last line without CRLF"),
	}
	for _, m := range msgs {
		e.deliver(m)
	}
	c := e.login()
	stat := strings.Fields(c.ok("STAT"))
	status, list := c.multi("LIST")
	if !strings.HasPrefix(status, "+OK 3 messages") {
		t.Errorf("LIST status %q", status)
	}
	if len(list) != 3 || stat[1] != "3" {
		t.Fatalf("STAT %q, LIST %q: want 3 messages", stat, list)
	}
	var total int64
	for i, l := range list {
		f := strings.Fields(l)
		size, _ := strconv.ParseInt(f[1], 10, 64)
		total += size
		if f[0] != strconv.Itoa(i+1) {
			t.Errorf("LIST line %q, want number %d", l, i+1)
		}
		if one := c.ok(fmt.Sprintf("LIST %d", i+1)); one != "+OK "+l {
			t.Errorf("LIST %d = %q, want %q", i+1, one, "+OK "+l)
		}
		// RFC 1939 §3: a multi-line response is lines each ending in CRLF, so RETR ends an
		// unterminated last line before the dot; that CRLF is framing, not the message, whose
		// octets LIST announces as they are stored (as Dovecot does).
		got := c.retr(i + 1)
		want := []byte(msgs[i])
		served := got
		if !bytes.HasSuffix(want, []byte("\r\n")) {
			served = bytes.TrimSuffix(got, []byte("\r\n"))
		}
		if !bytes.Equal(served, want) {
			t.Errorf("message %d: RETR sent %q, want %q", i+1, got, want)
		}
		if size != int64(len(want)) {
			t.Errorf("message %d: LIST says %d octets, the message is %d", i+1, size, len(want))
		}
	}
	if stat[2] != strconv.FormatInt(total, 10) {
		t.Errorf("STAT octets %s, want the LIST total %d", stat[2], total)
	}
}

func TestBadArguments(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("only", "x\r\n"))
	c := e.login()
	// The commands the acceptance suite sends, in a row.
	for _, cmd := range []string{"RETR 0", "RETR 99999", "RETR abc", "RETR", "DELE 0", "TOP 1", "LIST 999", "FROBNICATE"} {
		c.err(cmd)
	}
	c.ok("NOOP")
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Errorf("STAT after the refused commands: %q", got)
	}
}

func TestSnapshotAtLogin(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("before", "x\r\n"))
	c := e.login()
	_, uidls := c.multi("UIDL")
	e.deliver(plainMessage("during", "y\r\n"))
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Errorf("STAT after a delivery during the session: %q, want 1 message", got)
	}
	if _, again := c.multi("UIDL"); strings.Join(again, ",") != strings.Join(uidls, ",") {
		t.Errorf("UIDL changed during the session: %q -> %q", uidls, again)
	}
	c.err("RETR 2")
	c.ok("QUIT")
	c.closed()
	c = e.login()
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 2 ") {
		t.Errorf("STAT in the next session: %q, want 2 messages", got)
	}
}

func TestInboxOnly(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("inbox", "x\r\n"))
	if _, err := e.st.CreateMailbox(t.Context(), e.acct.ID, "Work", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Deliver(t.Context(), e.acct.ID, strings.NewReader(plainMessage("filed", "y\r\n")),
		store.DeliverOptions{Mailbox: "Work"}); err != nil {
		t.Fatal(err)
	}
	c := e.login()
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Errorf("STAT = %q, want only the INBOX message", got)
	}
}
