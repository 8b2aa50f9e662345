package imap

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLiteralAcknowledgedBeforeItsCRLF: once a synchronizing literal has come, the server
// asks for its ACK before it waits for the CRLF that ends the command, which a client with
// Nagle's algorithm on (imaplib) sends only once the literal is acknowledged; between
// commands it asks for none, the answer carrying the ACK. (The time this saves, 40 ms per
// APPEND, is measured by BenchmarkAppendNagleClient, not here.)
func TestLiteralAcknowledgedBeforeItsCRLF(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	ackRequested = func(afterLiteral bool) {
		mu.Lock()
		defer mu.Unlock()
		if afterLiteral {
			asked = append(asked, "after literal")
		} else {
			asked = append(asked, "other")
		}
	}
	t.Cleanup(func() { ackRequested = nil })
	count := func(what string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range asked {
			if a == what {
				n++
			}
		}
		return n
	}

	e := newEnv(t)
	c := e.rawLogin()
	msg := plainMessage("Nagle", "the literal, then its CRLF in a write of its own\r\n")
	for _, cmd := range []string{"NOOP", "SELECT INBOX", "NOOP"} {
		c.ok("%s", cmd)
	}
	if n := count("other") + count("after literal"); n != 0 {
		t.Errorf("%d ACKs asked for between whole commands, want none", n)
	}
	c.send("A1 APPEND INBOX {%d}", len(msg))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND: %q", l)
	}
	if _, err := c.conn.Write([]byte(msg)); err != nil { // the literal alone
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second) // a hang guard, not a timing check
	for count("after literal") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no ACK asked for while waiting for the CRLF after the literal")
		}
		time.Sleep(time.Millisecond)
	}
	c.send("")
	if l := c.waitFor(`^A1 .*`); !strings.HasPrefix(l[0], "A1 OK") {
		t.Fatalf("APPEND: %q", l)
	}
}

// TestQuickAckerFindsTheSocket: the TCP connection beneath a session is found through the
// wrappers the server puts around it (metrics, connection limits, TLS); were it not, no ACK
// would ever be sent early.
func TestQuickAckerFindsTheSocket(t *testing.T) {
	connKinds(t, func(t *testing.T, e *testEnv, c *rawClient) {
		c.ok("NOOP")
		s := e.onlySession()
		if s.ack.rc == nil {
			t.Errorf("no TCP connection found beneath %T", s.raw)
		}
	})
	// Not TCP: nothing to do, and nothing fails.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	q := newQuickAcker(a)
	if q.rc != nil {
		t.Error("a pipe taken for TCP")
	}
	q.now()
}
