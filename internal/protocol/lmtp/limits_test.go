package lmtp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// headerOf is a message whose header section (the fields, without the blank line) is n
// octets, then a short body.
func headerOf(n int) string {
	first := "From: alice@example.org\r\n"
	n -= len(first)
	var b strings.Builder
	b.WriteString(first)
	for n > 0 {
		line := min(n, 78)
		if n-line > 0 && n-line < 6 { // leave enough for a last field
			line -= 6
		}
		b.WriteString("X: " + strings.Repeat("x", line-5) + "\r\n")
		n -= line
	}
	return b.String() + "\r\nHello\r\n"
}

// nested is depth levels of multipart inside each other around a text part.
func nested(depth int) string {
	var b strings.Builder
	b.WriteString("From: alice@example.org\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

// TestContentLimits: DATA and BDAT of new mail beyond the store's header size or MIME
// nesting limit answer every recipient permanently, 552 5.3.4 for the header and 554 5.6.0
// for the nesting, store nothing, and the session goes on; just within them, the message
// is delivered.
func TestContentLimits(t *testing.T) {
	const limit = 2000
	rcpts := []string{"bob@example.com", "carol@example.com"}
	env := newEnvWith(t, store.Options{MaxHeaderSize: limit}, Options{},
		map[string]int64{"bob@example.com": 0, "carol@example.com": 0})
	if h, _, _ := strings.Cut(headerOf(limit+1), "\r\n\r\n"); len(h)+2 != limit+1 {
		t.Fatalf("headerOf(%d) has a header of %d octets", limit+1, len(h)+2)
	}
	c := dialRaw(t, env.addr)
	c.expect("LHLO mta.example", 250)
	delivered := 0
	for _, tc := range []struct {
		name   string
		msg    string
		code   int
		status string // the enhanced code's start, and some text of the reply
		text   string
	}{
		{"header at the limit", headerOf(limit), 250, "2.0.0", ""},
		{"header over the limit", headerOf(limit + 1), 552, "5.3.4", fmt.Sprintf("larger than %d octets", limit)},
		{"64 levels", nested(64), 250, "2.0.0", ""},
		{"65 levels", nested(65), 554, "5.6.0", "deeper than 64 levels"},
	} {
		for _, bdat := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s bdat=%v", tc.name, bdat), func(t *testing.T) {
				c.expect("MAIL FROM:<alice@example.org>", 250)
				for _, r := range rcpts {
					c.expect("RCPT TO:<"+r+">", 250)
				}
				if bdat { // in chunks, the limit crossed in the first
					half := len(tc.msg) * 2 / 3
					c.bdat(tc.msg[:half], false)
					if code, text := c.reply(); code != 250 {
						t.Fatalf("first chunk: %d %q", code, text)
					}
					c.bdat(tc.msg[half:], true)
				} else {
					c.expect("DATA", 354)
					c.send(dotStuff(tc.msg))
				}
				for _, r := range rcpts { // RFC 2033 §4.2: one reply per recipient
					code, text := c.reply()
					line := strings.Join(text, " ")
					if code != tc.code || !strings.HasPrefix(line, tc.status) || !strings.Contains(line, tc.text) {
						t.Errorf("%s: %d %q, want %d %s ...%s", r, code, line, tc.code, tc.status, tc.text)
					}
				}
				if tc.code == 250 {
					delivered++
				}
				c.expect("NOOP", 250) // the session goes on
				for _, r := range rcpts {
					if n := len(env.inbox(t, r)); n != delivered {
						t.Errorf("%s has %d messages, want %d", r, n, delivered)
					}
				}
			})
		}
	}
	// And the next transaction on the same connection delivers.
	c.expect("MAIL FROM:<alice@example.org>", 250)
	c.expect("RCPT TO:<bob@example.com>", 250)
	c.expect("DATA", 354)
	c.send(dotStuff(testMessage))
	if code, text := c.reply(); code != 250 {
		t.Fatalf("delivery after refusals: %d %q", code, text)
	}
}
