package imap

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/testcert"
)

func TestUnknownCommandsBeforeLogin(t *testing.T) {
	e := newEnv(t)
	c := e.raw()
	if _, status := c.cmd("FROBNICATE"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("unknown command: %s", status)
	}
	if _, status := c.cmd("UID FROB 1"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("unknown UID command: %s", status)
	}
	// Pipelined: the answers keep the order of the commands.
	c.send("P1 NOOP\r\nP2 XYZZY\r\nP3 CAPABILITY")
	var tagged []string
	for len(tagged) < 3 {
		if l := c.line(); !strings.HasPrefix(l, "* ") {
			tagged = append(tagged, strings.Join(strings.Fields(l)[:2], " "))
		}
	}
	if got := strings.Join(tagged, ","); got != "P1 OK,P2 BAD,P3 OK" {
		t.Errorf("pipelined answers %s", got)
	}
	// A literal is not mistaken for a command, and LOGIN still works.
	c.send(`L1 LOGIN {%d}`, len(testUser))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("literal: %q", l)
	}
	c.send(`%s {%d}`, testUser, len(testPassword))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("literal: %q", l)
	}
	c.send("%s", testPassword)
	if l := c.line(); !strings.HasPrefix(l, "L1 OK") {
		t.Fatalf("LOGIN with literals: %q", l)
	}
	c.ok("SELECT INBOX")

	// The fourth unknown command before login ends the connection.
	c = e.raw()
	for i := range 3 {
		if _, status := c.cmd("BOGUS%d", i); !strings.HasPrefix(status, "BAD") {
			t.Fatalf("unknown command %d: %s", i, status)
		}
	}
	c.send("X BOGUS")
	c.waitFor(`^\* BYE`)
}

func testTLSConfig(t *testing.T) *tls.Config { return testcert.Config(t, "localhost") }

func TestStartTLS(t *testing.T) {
	cfg := testTLSConfig(t)
	e := newEnv(t, func(o *Options, _ *mailStore) {
		o.TLSConfig = cfg
		o.Auth.Plaintext = auth.PlaintextPolicy{Never: true}
	})
	c := e.raw()
	caps := c.ok("CAPABILITY")[0]
	if !strings.Contains(caps, "STARTTLS") || !strings.Contains(caps, "LOGINDISABLED") {
		t.Fatalf("CAPABILITY before STARTTLS: %q", caps)
	}
	c.conn.Close()

	cl, err := imapclient.DialStartTLS(e.addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer cl.Close()
	caps2, err := cl.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if caps2.Has("STARTTLS") || caps2.Has("LOGINDISABLED") || !caps2.Has("AUTH=PLAIN") {
		t.Errorf("CAPABILITY after STARTTLS: %v", caps2)
	}
	if err := cl.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("LOGIN after STARTTLS: %v", err)
	}
	if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestImplicitTLS(t *testing.T) {
	cfg := testTLSConfig(t)
	e := newEnv(t, func(o *Options, _ *mailStore) {
		o.TLSConfig = cfg
		o.Auth.Plaintext = auth.PlaintextPolicy{Never: true}
	})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(ln)
	cl, err := imapclient.DialTLS(ln.Addr().String(), &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	caps, err := cl.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if caps.Has("STARTTLS") || caps.Has("LOGINDISABLED") {
		t.Errorf("CAPABILITY on implicit TLS: %v", caps)
	}
	if err := cl.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("LOGIN on implicit TLS: %v", err)
	}
}

// --- the limits of the parser (parse.go), on every kind of connection ---

// connKinds runs f over each kind of connection, logged in: plaintext, implicit TLS and
// plaintext after STARTTLS.
func connKinds(t *testing.T, f func(t *testing.T, e *testEnv, c *rawClient)) {
	cfg := testTLSConfig(t)
	withTLS := func(o *Options, _ *mailStore) { o.TLSConfig = cfg }
	t.Run("plain", func(t *testing.T) {
		e := newEnv(t, withTLS)
		f(t, e, e.rawLogin())
	})
	t.Run("implicit TLS", func(t *testing.T) {
		e := newEnv(t, withTLS)
		c := e.rawImplicitTLS(cfg)
		c.ok(`LOGIN %q %q`, testUser, testPassword)
		f(t, e, c)
	})
	t.Run("STARTTLS", func(t *testing.T) {
		e := newEnv(t, withTLS)
		c := e.raw()
		c.startTLS("")
		c.ok(`LOGIN %q %q`, testUser, testPassword)
		f(t, e, c)
	})
}

// rawImplicitTLS serves an implicit-TLS listener and returns a raw client on it.
func (e *testEnv) rawImplicitTLS(cfg *tls.Config) *rawClient {
	e.t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	go e.srv.Serve(ln)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		e.t.Fatal(err)
	}
	c := &rawClient{t: e.t, conn: conn, br: bufio.NewReader(conn)}
	e.t.Cleanup(func() { conn.Close() })
	if g := c.line(); !strings.HasPrefix(g, "* OK") {
		e.t.Fatalf("greeting %q", g)
	}
	return c
}

// startTLS sends STARTTLS, followed in the same write by inject, and makes the client TLS.
// The server must answer nothing more in plaintext.
func (c *rawClient) startTLS(inject string) {
	c.t.Helper()
	c.send("S1 STARTTLS\r\n%s", inject)
	if l := c.line(); !strings.HasPrefix(l, "S1 OK") {
		c.t.Fatalf("STARTTLS: %q", l)
	}
	if n := c.br.Buffered(); n > 0 {
		c.t.Fatalf("%d octets of plaintext after the STARTTLS answer", n)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	tc.SetDeadline(time.Now().Add(ioGuard))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	c.conn, c.br = tc, bufio.NewReader(tc)
}

// onlySession returns the only session of the server.
func (e *testEnv) onlySession() *session {
	e.t.Helper()
	live := e.srv.sessions.Live()
	if len(live) != 1 {
		e.t.Fatalf("%d sessions, want 1", len(live))
	}
	return live[0]
}

// TestOverlongCommandLine: a command longer than the limit (literals aside) is answered
// BAD [LIMIT], the rest of its line is skipped, and the session goes on with the next
// command, pipelined or not, on every kind of connection.
func TestOverlongCommandLine(t *testing.T) {
	connKinds(t, func(t *testing.T, e *testEnv, c *rawClient) {
		long := "1" + strings.Repeat(",1", commandLineLimit/2)
		_, status := c.cmd("UID SEARCH UID %s", long)
		if !strings.HasPrefix(status, "BAD [LIMIT]") {
			t.Fatalf("overlong SEARCH: %s", status)
		}
		c.ok("NOOP")
		// Pipelined behind it, in one write: the next command is answered.
		c.send("P1 SELECT %s\r\nP2 SELECT INBOX\r\nP3 CAPABILITY", strings.Repeat("x", 2*commandLineLimit))
		var tagged []string
		for len(tagged) < 3 {
			if l := c.line(); !strings.HasPrefix(l, "* ") {
				tagged = append(tagged, strings.Join(strings.Fields(l)[:3], " "))
			}
		}
		if got := strings.Join(tagged, ","); got != "P1 BAD [LIMIT],P2 OK [READ-WRITE],P3 OK CAPABILITY" {
			t.Errorf("pipelined answers %s", got)
		}
		// A command just within the limit is parsed and answered.
		pad := commandLineLimit - len(fmt.Sprintf("T%d SELECT \r\n", c.tags+1))
		if _, status := c.cmd("SELECT %s", strings.Repeat("x", pad)); !strings.HasPrefix(status, "NO") {
			t.Errorf("SELECT of a long name within the limit: %s", status)
		}
		c.ok("SELECT INBOX")
	})
}

// TestOverlongLineDiscardedAsItStreams: a 64 MiB line is answered and skipped as it
// arrives, and the next command is answered. (That the skipping buffers nothing is
// TestParseOverlongLineSkippedWithoutBuffering's.)
func TestOverlongLineDiscardedAsItStreams(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	const flood = 64 << 20
	go func() {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		c.conn.Write([]byte("X1 LOGIN "))
		for total := 0; total < flood; total += len(chunk) {
			if _, err := c.conn.Write(chunk); err != nil {
				return
			}
		}
		c.conn.Write([]byte("\r\nX2 NOOP\r\n"))
	}()
	if l := c.line(); !strings.HasPrefix(l, "X1 BAD [LIMIT]") {
		t.Fatalf("64 MiB LOGIN: %q", l)
	}
	if l := c.line(); !strings.HasPrefix(l, "X2 OK") {
		t.Fatalf("after the 64 MiB line: %q", l)
	}
	c.ok("SELECT INBOX")
}

// TestOverlongTagSaysBye: a command whose tag or name alone is too long cannot be answered
// by its tag; the server says BYE and closes, as Dovecot does. (The client sends exactly
// the limit, all of which the server reads: a close with unread data would be a reset,
// which may overtake the BYE.)
func TestOverlongTagSaysBye(t *testing.T) {
	e := newEnv(t)
	for name, head := range map[string]string{
		"tag":         "",
		"name":        "A1 ",
		"UID subname": "A1 UID ",
	} {
		c := e.raw()
		c.conn.SetWriteDeadline(time.Now().Add(ioGuard))
		if _, err := io.WriteString(c.conn, head+strings.Repeat("N", commandLineLimit-len(head))); err != nil {
			t.Fatal(err)
		}
		if l := c.line(); !strings.HasPrefix(l, "* BYE [LIMIT]") {
			t.Errorf("%s too long: %q", name, l)
		}
		c.conn.SetReadDeadline(time.Now().Add(ioGuard))
		if rest, err := io.ReadAll(c.br); err != nil || len(rest) > 0 {
			t.Errorf("%s too long: after BYE %q, %v; want the end", name, rest, err)
		}
	}
	e.rawLogin().ok("NOOP")
}

// TestLiteralsDoNotCount: literals do not count towards the limit: APPEND of messages
// larger than it, with synchronizing, non-synchronizing (LITERAL+) and binary literals.
func TestLiteralsDoNotCount(t *testing.T) {
	connKinds(t, func(t *testing.T, e *testEnv, c *rawClient) {
		// One line of the body alone is longer than the limit, and one looks like a literal.
		msg := plainMessage("big", strings.Repeat("y", 2*commandLineLimit)+"\r\nA9 SELECT {1}\r\n"+
			strings.Repeat("a line of the body\r\n", commandLineLimit/20))
		c.send("A1 APPEND INBOX {%d}", len(msg))
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("APPEND: %q", l)
		}
		c.send("%s", msg)
		if l := c.waitFor(`^A1 .*`); !strings.HasPrefix(l[0], "A1 OK") {
			t.Fatalf("APPEND {n}: %q", l)
		}
		c.send("A2 APPEND INBOX (\\Seen) {%d+}\r\n%s", len(msg), msg)
		if l := c.waitFor(`^A2 .*`); !strings.HasPrefix(l[0], "A2 OK") {
			t.Fatalf("APPEND {n+}: %q", l)
		}
		c.send("A3 APPEND INBOX ~{%d}", len(msg))
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("APPEND ~{n}: %q", l)
		}
		c.send("%s", msg)
		if l := c.waitFor(`^A3 .*`); !strings.HasPrefix(l[0], "A3 OK") {
			t.Fatalf("APPEND ~{n}: %q", l)
		}
		if got := grep(c.ok("SELECT INBOX"), `EXISTS`); len(got) != 1 || got[0] != "* 3 EXISTS" {
			t.Errorf("after three APPENDs: %q", got)
		}
		_, status := c.cmd("FETCH 1:3 (BODY.PEEK[])")
		if !strings.HasPrefix(status, "OK") {
			t.Errorf("FETCH of the big messages: %s", status)
		}
		// A literal in the middle of a command: what follows it still counts.
		_, status = c.cmd("SEARCH SUBJECT {3+}\r\nbig %s", strings.Repeat("ALL ", commandLineLimit/4))
		if !strings.HasPrefix(status, "BAD [LIMIT]") {
			t.Errorf("overlong SEARCH after a literal: %s", status)
		}
		c.ok("NOOP")
	})
}

// TestRefusedLiteralKeepsInStep: a synchronizing literal the server refuses
// (a tagged answer instead of "+") is never sent, so what follows is a command, counted as
// one; a refused non-synchronizing literal is skipped.
func TestRefusedLiteralKeepsInStep(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	overlong := "SELECT " + strings.Repeat("x", commandLineLimit+1000)
	for _, refused := range []string{
		"APPEND INBOX {2000000000}", // over APPENDLIMIT: NO [TOOBIG]
		"SEARCH SUBJECT {100000}",   // literals of commands other than APPEND are buffered, at most 4096 octets
	} {
		_, status := c.cmd("%s", refused)
		if !strings.HasPrefix(status, "NO [TOOBIG]") {
			t.Fatalf("%s: %s", refused, status)
		}
		// Were the reader waiting for 100000 octets of literal, it would take all of this.
		if _, status := c.cmd("%s", overlong); !strings.HasPrefix(status, "BAD [LIMIT]") {
			t.Errorf("overlong line after a refused %s: %s", refused, status)
		}
		c.ok("NOOP")
	}
	// Non-synchronizing: the literal follows at once and is skipped with its line.
	c.send("N1 SEARCH SUBJECT {6000+}\r\n%s CHARSET\r\nN2 NOOP", strings.Repeat("N3 NOOP\r\n", 6000/9)+"xxxxxx")
	if l := c.waitFor(`^N\d .*`); !strings.HasPrefix(l[0], "N1 NO [TOOBIG]") {
		t.Errorf("refused {6000+}: %q", l)
	}
	if l := c.waitFor(`^N\d .*`); !strings.HasPrefix(l[0], "N2 OK") {
		t.Errorf("after a refused {6000+}: %q, want N2 OK (the literal skipped)", l)
	}
	// Before login too.
	c = e.raw()
	if _, status := c.cmd("LOGIN {5000}"); !strings.HasPrefix(status, "NO [TOOBIG]") {
		t.Fatalf("LOGIN {5000}: %s", status)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
}

// TestUnknownCommandWithLongArguments: before login the server answers an unknown command
// itself; its arguments, however long, and a literal it announces are skipped.
func TestUnknownCommandWithLongArguments(t *testing.T) {
	e := newEnv(t)
	c := e.raw()
	if _, status := c.cmd("XYZZY %s", strings.Repeat("x", 3*commandLineLimit)); !strings.HasPrefix(status, "BAD") {
		t.Errorf("long unknown command: %s", status)
	}
	c.send("U1 XYZZY {20+}\r\nU2 LOGOUT\r\nU3 NOOPZ\r\nU4 NOOP")
	if l := c.waitFor(`^U\d .*`); !strings.HasPrefix(l[0], "U1 BAD") {
		t.Errorf("unknown command with a literal: %q", l)
	}
	if l := c.waitFor(`^U\d .*`); !strings.HasPrefix(l[0], "U4 OK") {
		t.Errorf("after the literal of an unknown command: %q, want U4 OK", l)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
}

// TestStartTLSDropsInjectedPlaintext: commands pipelined after STARTTLS in plaintext are
// not carried into the TLS session (CVE-2011-0411); the TLS session starts without a
// greeting (RFC 9051 §6.2.1), not logged in, and is one session in the log.
func TestStartTLSDropsInjectedPlaintext(t *testing.T) {
	cfg := testTLSConfig(t)
	e := newEnv(t, func(o *Options, _ *mailStore) {
		o.TLSConfig = cfg
		o.Auth.Plaintext = auth.PlaintextPolicy{Never: true}
	})
	c := e.raw()
	before := c.ok("CAPABILITY")[0]
	if !strings.Contains(before, " STARTTLS") || !strings.Contains(before, " LOGINDISABLED") || strings.Contains(before, "AUTH=") {
		t.Errorf("CAPABILITY before STARTTLS: %q", before)
	}
	c.startTLS(fmt.Sprintf("I1 LOGIN %q %q\r\nI2 SELECT INBOX\r\n", testUser, testPassword))
	// The first thing said in TLS is the answer to the first command sent in TLS.
	c.send("T9 NOOP")
	if l := c.line(); !strings.HasPrefix(l, "T9 OK") {
		t.Fatalf("first line in TLS: %q, want T9 OK (no greeting, no injected answers)", l)
	}
	after := c.ok("CAPABILITY")[0]
	if strings.Contains(after, "STARTTLS") || strings.Contains(after, "LOGINDISABLED") || !strings.Contains(after, "AUTH=PLAIN") {
		t.Errorf("CAPABILITY after STARTTLS: %q", after)
	}
	if _, status := c.cmd("SELECT INBOX"); strings.HasPrefix(status, "OK") {
		t.Fatal("the injected LOGIN was carried into the TLS session")
	}
	if _, status := c.cmd("STARTTLS"); !strings.HasPrefix(status, "NO") && !strings.HasPrefix(status, "BAD") {
		t.Errorf("STARTTLS again: %s", status)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	c.ok("SELECT INBOX")
	c.ok("LOGOUT")
	// The server closes the connection after the session has written its logout line.
	c.conn.SetReadDeadline(time.Now().Add(ioGuard))
	io.ReadAll(c.br)
	if n := strings.Count(e.logs.String(), `msg="imap logout"`) + strings.Count(e.logs.String(), `msg="imap disconnect"`); n != 1 {
		t.Errorf("%d logout lines for one session across STARTTLS, want 1:\n%s", n, e.logs.String())
	}
}

// TestStartTLSRefused: STARTTLS after login, with arguments, or without TLS configured is
// answered, not done.
func TestStartTLSRefused(t *testing.T) {
	cfg := testTLSConfig(t)
	e := newEnv(t, func(o *Options, _ *mailStore) { o.TLSConfig = cfg })
	c := e.raw()
	if _, status := c.cmd("STARTTLS now"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("STARTTLS with an argument: %s", status)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	if _, status := c.cmd("STARTTLS"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("STARTTLS after login: %s", status)
	}
	c.ok("NOOP")

	e = newEnv(t)
	c = e.raw()
	if caps := c.ok("CAPABILITY")[0]; strings.Contains(caps, "STARTTLS") {
		t.Errorf("STARTTLS announced without TLS: %q", caps)
	}
	if _, status := c.cmd("STARTTLS"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("STARTTLS without TLS (not announced, so no such command): %s", status)
	}
	c.ok("NOOP")
}

// TestIdleDoneLine: IDLE's DONE is a line of the IDLE command, not a new command,
// and an overlong line in its place is answered and skipped.
func TestIdleDoneLine(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	c.send("I1 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	c.send("DONE")
	c.waitFor(`^I1 OK`)
	c.send("I2 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	c.send("DONE%s\r\nI3 NOOP", strings.Repeat("x", 2*commandLineLimit))
	if l := c.waitFor(`^I\d .*`); !strings.HasPrefix(l[0], "I2 BAD") {
		t.Errorf("IDLE ended by a long line: %q", l)
	}
	if l := c.waitFor(`^I\d .*`); !strings.HasPrefix(l[0], "I3 OK") {
		t.Errorf("after IDLE ended by a long line: %q", l)
	}
}
