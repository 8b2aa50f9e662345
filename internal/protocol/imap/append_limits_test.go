package imap

import (
	"fmt"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// headerOf is a message whose header section (the fields, without the blank line) is n
// octets, then a short body.
func headerOf(n int) string {
	var b strings.Builder
	b.WriteString("Subject: big header\r\n")
	n -= b.Len()
	for n > 0 {
		line := min(n, 998)
		if rest := n - line; rest > 0 && rest < 8 {
			line -= 8
		}
		b.WriteString("X: " + strings.Repeat("x", line-5) + "\r\n")
		n -= line
	}
	return b.String() + "\r\nbody\r\n"
}

// nestedMessage is depth levels of multipart (even levels) and message/rfc822 (odd ones)
// inside each other.
func nestedMessage(depth int) string {
	var b strings.Builder
	b.WriteString("Subject: nested\r\n")
	for i := range depth {
		if i%2 == 0 {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
		} else {
			b.WriteString("Content-Type: message/rfc822\r\n\r\n")
		}
	}
	return b.String() + "Subject: bottom\r\n\r\ndeep\r\n"
}

// TestAppendContentLimits: APPEND of a message whose header section is over the store's
// limit (default 1 MiB), or nested deeper than its limit (default 64 levels), gets
// NO [LIMIT] (RFC 5530), stores nothing, and the session goes on; at the limits it is
// stored.
func TestAppendContentLimits(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	inbox := e.mailbox("INBOX")
	if h, _, _ := strings.Cut(headerOf(store.DefaultMaxHeaderSize+1), "\r\n\r\n"); len(h)+2 != store.DefaultMaxHeaderSize+1 {
		t.Fatalf("headerOf makes a header of %d octets", len(h)+2)
	}
	stored := 0
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"header at the limit", headerOf(store.DefaultMaxHeaderSize), "OK [APPENDUID"},
		{"header over the limit", headerOf(store.DefaultMaxHeaderSize + 1), fmt.Sprintf("NO [LIMIT] Message header section larger than %d octets", store.DefaultMaxHeaderSize)},
		{"64 levels", nestedMessage(64), "OK [APPENDUID"},
		{"65 levels", nestedMessage(65), "NO [LIMIT] MIME nesting deeper than 64 levels"},
	} {
		for _, sync := range []bool{true, false} {
			if sync { // the synchronizing literal: the data after the continuation request
				c.send("A1 APPEND INBOX {%d}", len(tc.msg))
				if l := c.line(); !strings.HasPrefix(l, "+") {
					t.Fatalf("%s: continuation %q", tc.name, l)
				}
				c.send("%s", tc.msg)
				if l := c.line(); !strings.HasPrefix(l, "A1 "+tc.want) {
					t.Errorf("%s: %q, want %s", tc.name, l, tc.want)
				}
			} else if _, status := c.cmd("APPEND INBOX {%d+}\r\n%s", len(tc.msg), tc.msg); !strings.HasPrefix(status, tc.want) {
				t.Errorf("%s (non-synchronizing literal): %q, want %s", tc.name, status, tc.want)
			}
			if strings.HasPrefix(tc.want, "OK") {
				stored++
			}
			// The session goes on, and nothing refused was stored.
			untagged := c.ok("STATUS INBOX (MESSAGES)")
			if want := fmt.Sprintf("* STATUS INBOX (MESSAGES %d)", stored); len(untagged) != 1 || untagged[0] != want {
				t.Errorf("%s: %q, want %s", tc.name, untagged, want)
			}
		}
	}
	if msgs, err := e.st.Messages(t.Context(), inbox.ID); err != nil || len(msgs) != stored {
		t.Errorf("%d messages stored (%v), want %d", len(msgs), err, stored)
	}
}
