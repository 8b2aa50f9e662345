package imap

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestCommandExistsIffAnnounced: every command of the table that an extension brings is
// known exactly when its capability is announced: STARTTLS with TLS configured before
// login only, the others once logged in. Every command of the table has a parser, and
// every parser a command.
func TestCommandExistsIffAnnounced(t *testing.T) {
	for name := range commands {
		if _, ok := argParsers[name]; !ok {
			t.Errorf("%s is in the table but the parser does not know it", name)
		}
	}
	for name := range argParsers {
		if _, ok := commands[name]; !ok {
			t.Errorf("the parser knows %s, which is not in the table", name)
		}
	}

	e := newEnv(t, func(o *Options, _ *mailStore) { o.TLSConfig = testTLSConfig(t) })
	c := e.raw()
	caps := " " + c.ok("CAPABILITY")[0] + " "
	if !strings.Contains(caps, " STARTTLS ") {
		t.Fatalf("STARTTLS not announced with TLS configured: %q", caps)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	caps = " " + c.ok("CAPABILITY")[0] + " "
	c.ok("SELECT INBOX")
	for name, spec := range commands {
		if spec.capability == "" || spec.capability == imap.CapStartTLS {
			continue
		}
		if !strings.Contains(caps, " "+string(spec.capability)+" ") {
			t.Errorf("%s needs %s, which is not announced after login: %q", name, spec.capability, caps)
		}
	}
	// Not announced after login, so unknown.
	if _, status := c.cmd("STARTTLS"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("STARTTLS after login: %s", status)
	}
	// Announced: known (a syntax error, not an unknown command).
	if _, status := c.cmd("UID EXPUNGE"); !strings.HasPrefix(status, "BAD") || strings.Contains(status, "Unknown command") {
		t.Errorf("UID EXPUNGE without arguments: %s", status)
	}
}

// TestCapabilitiesByState: what is announced before login, after it, and where plaintext
// is refused, in full: today's set, nothing more (docs/imap.md).
func TestCapabilitiesByState(t *testing.T) {
	e := newEnv(t)
	c := e.raw()
	if got, want := c.ok("CAPABILITY")[0], "* CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL- ID AUTH=PLAIN AUTH=LOGIN"; got != want {
		t.Errorf("before login:\n%s\nwant\n%s", got, want)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	want := "* CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL- ID ENABLE NAMESPACE IDLE UNSELECT UIDPLUS MOVE SORT CONTEXT=SEARCH THREAD=ORDEREDSUBJECT QUOTA " +
		"COMPRESS=DEFLATE UNAUTHENTICATE " +
		"LITERAL+ UTF8=ACCEPT ESEARCH SEARCHRES LIST-EXTENDED LIST-STATUS STATUS=SIZE BINARY CHILDREN " +
		"SPECIAL-USE CREATE-SPECIAL-USE CONDSTORE QRESYNC THREAD=REFERENCES SORT=DISPLAY ESORT QUOTA=RES-STORAGE QUOTA=RES-MESSAGE MULTIAPPEND WITHIN SAVEDATE PREVIEW PARTIAL OBJECTID CONTEXT=SORT UIDONLY APPENDLIMIT=52428800"
	if got := c.ok("CAPABILITY")[0]; got != want {
		t.Errorf("after login:\n%s\nwant\n%s", got, want)
	}
}

// TestPipelinedBehindDone: commands sent with IDLE's DONE, and commands pipelined behind
// another in one write, are read and answered in order, without waiting for more input.
func TestPipelinedBehindDone(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("One", "x\r\n"))
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	c.send("I1 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	c.send("DONE\r\nP1 NOOP\r\nP2 FETCH 1 (FLAGS)\r\nP3 SEARCH ALL")
	var tagged []string
	for len(tagged) < 4 {
		if l := c.line(); !strings.HasPrefix(l, "* ") {
			tagged = append(tagged, strings.Join(strings.Fields(l)[:2], " "))
		}
	}
	if got := strings.Join(tagged, ","); got != "I1 OK,P1 OK,P2 OK,P3 OK" {
		t.Errorf("answers %s", got)
	}
	// A synchronizing literal in the middle of pipelined commands.
	c.send("Q1 NOOP\r\nQ2 LOGIN {1}")
	if l := c.waitFor(`^(Q1 .*|\+.*)`); !strings.HasPrefix(l[0], "Q1 OK") {
		t.Fatalf("Q1: %q", l)
	}
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("literal: %q", l)
	}
	c.send("x y")
	if l := c.waitFor(`^Q2 .*`); !strings.HasPrefix(l[0], "Q2 BAD") { // LOGIN while logged in
		t.Errorf("Q2: %q", l)
	}
}

// smallReadBufListener gives every accepted connection a small receive buffer, so that a
// client's commands fill it soon.
type smallReadBufListener struct{ net.Listener }

func (l smallReadBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	return c, err
}

// TestPipelinedWithoutReading: a client that sends thousands of commands in one go and
// reads the answers only afterwards is served: the server reads on while it writes
// (readahead.go), instead of both sides waiting for the other to read.
func TestPipelinedWithoutReading(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("Big", strings.Repeat("a line of the body\r\n", 200)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(smallReadBufListener{ln})
	far := &testEnv{t: t, addr: ln.Addr().String()}
	c := far.raw()
	c.conn.(*net.TCPConn).SetWriteBuffer(4 << 10)
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	c.ok("SELECT INBOX")
	const n = 5000 // 21 MB of answers: more than the socket buffers on the way hold
	var cmds strings.Builder
	for i := range n {
		fmt.Fprintf(&cmds, "F%d FETCH 1 (BODY.PEEK[])\r\n", i)
	}
	c.conn.SetWriteDeadline(time.Now().Add(ioGuard)) // a hang guard: the deadlock fails here
	if _, err := io.WriteString(c.conn, cmds.String()); err != nil {
		t.Fatalf("writing %d commands without reading: %v (the server stopped reading)", n, err)
	}
	for i := range n {
		if l := c.waitFor(`^F\d+ .*`); !strings.HasPrefix(l[0], fmt.Sprintf("F%d OK", i)) {
			t.Fatalf("answer %d: %q", i, l[0])
		}
	}
	c.ok("NOOP")
}
