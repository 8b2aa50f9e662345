package pop3

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

func TestDotWriter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ".\r\n"},
		{"a\r\n", "a\r\n.\r\n"},
		{".\r\n", "..\r\n.\r\n"},
		{"a\r\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n.\r\n"},
		{"no end", "no end\r\n.\r\n"},
		{".", "..\r\n.\r\n"},
		{"a.b\r\nc. \r\n", "a.b\r\nc. \r\n.\r\n"},
		{"\r\n.\r\n", "\r\n..\r\n.\r\n"},
	} {
		// Whole, and one octet per Write: line starts are tracked across writes.
		for _, split := range []bool{false, true} {
			var out bytes.Buffer
			dw := newDotWriter(&out)
			if split {
				for i := 0; i < len(tc.in); i++ {
					dw.Write([]byte{tc.in[i]})
				}
			} else {
				dw.Write([]byte(tc.in))
			}
			if err := dw.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("dot-stuff %q (split %v) = %q, want %q", tc.in, split, out.String(), tc.want)
			}
			if dw.n != int64(len(tc.in)) {
				t.Errorf("dot-stuff %q counted %d octets, want %d", tc.in, dw.n, len(tc.in))
			}
		}
	}
}

func TestCopyTop(t *testing.T) {
	msg := "Subject: x\r\nFrom: y\r\n\r\nline 1\r\nline 2\r\n\r\nline 4\r\n"
	long := "Subject: long\r\n\r\n" + strings.Repeat("z", 3*readBufferSize) + "\r\nsecond\r\n"
	for _, tc := range []struct {
		msg   string
		lines int64
		want  string
	}{
		{msg, 0, "Subject: x\r\nFrom: y\r\n\r\n"},
		{msg, 1, "Subject: x\r\nFrom: y\r\n\r\nline 1\r\n"},
		{msg, 3, "Subject: x\r\nFrom: y\r\n\r\nline 1\r\nline 2\r\n\r\n"},
		{msg, 4, msg},
		{msg, 1 << 62, msg},
		{"Subject: header only\r\n", 5, "Subject: header only\r\n"},
		{"\r\nbody right away\r\nmore\r\n", 1, "\r\nbody right away\r\n"},
		{"Subject: lf\n\nbody\nmore\n", 1, "Subject: lf\n\nbody\n"},
		{long, 1, "Subject: long\r\n\r\n" + strings.Repeat("z", 3*readBufferSize) + "\r\n"},
		{"Subject: " + strings.Repeat("h", 2*readBufferSize) + "\r\n\r\nb\r\n", 0,
			"Subject: " + strings.Repeat("h", 2*readBufferSize) + "\r\n\r\n"},
		{"", 3, ""},
	} {
		var out bytes.Buffer
		if err := copyTop(&out, strings.NewReader(tc.msg), tc.lines); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("TOP %d of %.40q = %.60q, want %.60q", tc.lines, tc.msg, out.String(), tc.want)
		}
	}
}

func TestRetrIdentical(t *testing.T) {
	e := newEnv(t)
	rng := rand.New(rand.NewSource(1))
	var big strings.Builder
	for big.Len() < 1<<20 {
		// Lines of varying length; some start with a dot, some are long.
		n := rng.Intn(200)
		if rng.Intn(20) == 0 {
			n = 5000 + rng.Intn(5000)
		}
		if rng.Intn(10) == 0 {
			big.WriteByte('.')
		}
		for range n {
			big.WriteByte(byte('a' + rng.Intn(26)))
		}
		big.WriteString("\r\n")
	}
	msgs := []string{
		plainMessage("plain", "Hello,\r\nworld.\r\n"),
		plainMessage("dot lines", ".\r\n..\r\n.hidden\r\nend.\r\n.\r\n"),
		plainMessage("big", big.String()),
	}
	for _, m := range msgs {
		e.deliver(m)
	}
	c := e.login()
	for i, m := range msgs {
		status := c.ok(fmt.Sprintf("RETR %d", i+1))
		if want := fmt.Sprintf("+OK %d octets", len(m)); status != want {
			t.Errorf("RETR %d status %q, want %q", i+1, status, want)
		}
		if got := c.body(); !bytes.Equal(got, []byte(m)) {
			t.Errorf("RETR %d: %d octets differ from the %d delivered", i+1, len(got), len(m))
		}
	}
}

func TestTop(t *testing.T) {
	e := newEnv(t)
	msg := plainMessage("top", "first\r\n.second\r\nthird\r\n")
	e.deliver(msg)
	c := e.login()
	head := msg[:strings.Index(msg, "\r\n\r\n")+4]
	c.ok("TOP 1 0")
	if got := string(c.body()); got != head {
		t.Errorf("TOP 1 0 = %q, want the header and blank line %q", got, head)
	}
	c.ok("TOP 1 2")
	if got, want := string(c.body()), head+"first\r\n.second\r\n"; got != want {
		t.Errorf("TOP 1 2 = %q, want %q", got, want)
	}
	c.ok("TOP 1 100")
	if got := string(c.body()); got != msg {
		t.Errorf("TOP 1 100 = %q, want the whole message", got)
	}
	c.err("TOP 2 0")
	c.err("TOP 1 -1")
	c.err("TOP 1 2 3")
}

func TestRetrExpungedDuringSession(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("doomed", "x\r\n"))
	kept := plainMessage("kept", "y\r\n")
	e.deliver(kept)
	c := e.login()
	// Another client (IMAP) expunges message 1 meanwhile.
	uid := e.inbox()[0].UID
	if _, err := e.st.Expunge(context.Background(), e.inboxID(), []uint32{uid}); err != nil {
		t.Fatal(err)
	}
	if got := c.err("RETR 1"); got != "-ERR message was removed" {
		t.Errorf("RETR of an expunged message: %q", got)
	}
	c.err("TOP 1 0")
	if got := string(c.retr(2)); got != kept {
		t.Errorf("RETR 2 = %q, want %q", got, kept)
	}
	// Deleting the vanished message and committing is harmless.
	c.ok("DELE 1")
	c.ok("QUIT")
	c.closed()
	if n := len(e.inbox()); n != 1 {
		t.Errorf("INBOX has %d messages, want 1", n)
	}
}
