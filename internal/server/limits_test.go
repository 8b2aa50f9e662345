package server

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

// TestConnectionLimitAnsweredInProtocolWords fills limits.max_connections with one POP3
// session, then checks that every protocol refuses the next connection in its own words
// and closes it, that implicit TLS closes it, and that closing the held session frees its
// slot. (Loopback is exempt from the per-address cap, so the total is what is tested
// end to end here; internal/connlimit tests the per-address cap.)
func TestConnectionLimitAnsweredInProtocolWords(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxConnections = 1
	logs := &syncBuffer{}
	srv := start(t, cfg, logs)

	held := dial(t, srv.Addr(POP3))
	held.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(held)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("first POP3 connection: %q, %v", line, err)
	}

	for _, tc := range []struct{ name, want string }{
		{POP3, "-ERR [SYS/TEMP] too many connections"},
		{IMAP, "* BYE Too many connections"},
		{LMTP, "421 4.7.0 Too many connections"},
	} {
		c := dial(t, srv.Addr(tc.name))
		if line := greeting(t, c); !strings.HasPrefix(line, tc.want) {
			t.Errorf("%s over the limit: %q, want %q...", tc.name, line, tc.want)
		}
	}
	// Implicit TLS: closed without a word (there is no TLS session to answer in).
	c := dial(t, srv.Addr(IMAPS))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("IMAPS over the limit sent %d octets instead of closing", n)
	}
	c.Close()
	if !strings.Contains(logs.String(), "too many connections") {
		t.Error("the refusals were not logged")
	}

	// QUIT frees the slot: the next connection is greeted.
	held.Write([]byte("QUIT\r\n"))
	r.ReadString('\n')
	held.Close()
	var line string
	for range 50 { // the server closes its side just after the client sees +OK
		line = greeting(t, dial(t, srv.Addr(IMAP)))
		if strings.HasPrefix(line, "* OK") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(line, "* OK") {
		t.Fatalf("after the held session ended: %q, want the IMAP greeting", line)
	}
}
