package imap

import (
	"bufio"
	"compress/flate"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// deflateClientConn is a client's side of COMPRESS=DEFLATE: every write is deflated and
// sync-flushed at once, reads are inflated.
type deflateClientConn struct {
	net.Conn
	fw *flate.Writer
}

func (c *deflateClientConn) Write(p []byte) (int, error) {
	n, err := c.fw.Write(p)
	if err == nil {
		err = c.fw.Flush()
	}
	return n, err
}

// compress sends COMPRESS DEFLATE and switches the raw client to raw DEFLATE both ways.
func (c *rawClient) compress() {
	c.t.Helper()
	c.ok("COMPRESS DEFLATE")
	if n := c.br.Buffered(); n > 0 {
		c.t.Fatalf("%d octets after the tagged OK of COMPRESS before the client compressed anything", n)
	}
	fw, _ := flate.NewWriter(c.conn, flate.DefaultCompression)
	c.br = bufio.NewReader(flate.NewReader(c.conn))
	c.conn = &deflateClientConn{Conn: c.conn, fw: fw}
}

// RFC 4978: after COMPRESS DEFLATE, commands and responses are raw DEFLATE; the server
// flushes its compressor at the end of every answer, before a continuation request and
// for every IDLE update, or these reads would wait for ever (ioGuard fails them).
func TestCompressDeflate(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("first", strings.Repeat("compressible body line\r\n", 200)))
	c := e.raw()
	if _, status := c.cmd("COMPRESS DEFLATE"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("COMPRESS before login: %s", status)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	if caps := c.ok("CAPABILITY")[0]; !strings.Contains(caps, " COMPRESS=DEFLATE") {
		t.Errorf("COMPRESS=DEFLATE not announced: %q", caps)
	}
	if _, status := c.cmd("COMPRESS GZIP"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("COMPRESS GZIP: %s", status)
	}
	c.compress()
	if _, status := c.cmd("COMPRESS DEFLATE"); !strings.HasPrefix(status, "NO [COMPRESSIONACTIVE]") {
		t.Errorf("second COMPRESS: %s", status)
	}
	if u := c.ok("SELECT INBOX"); len(grep(u, `^\* 1 EXISTS$`)) != 1 {
		t.Errorf("SELECT: %q", u)
	}
	u := c.ok("FETCH 1 (UID BODY.PEEK[])")
	if len(u) != 1 || !strings.Contains(u[0], strings.Repeat("compressible body line\r\n", 200)) {
		t.Errorf("FETCH over DEFLATE: %.200q", u)
	}
	// A synchronizing literal: "+" must come out of the compressor before the data.
	c.send("A1 APPEND INBOX {%d}", len(plainMessage("second", "x")))
	if l := c.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("APPEND: %q", l)
	}
	c.send("%s", plainMessage("second", "x"))
	c.waitFor(`^A1 OK`)

	// Pipelined commands in one compressed write: every answer comes.
	c.send("P1 NOOP\r\nP2 UID FETCH 1:* (FLAGS)\r\nP3 STATUS INBOX (MESSAGES)")
	c.waitFor(`^P1 OK`)
	c.waitFor(`^P2 OK`)
	if m := c.waitFor(`^\* STATUS INBOX \(MESSAGES (\d+)\)`); m[1] != "2" {
		t.Errorf("STATUS: %q", m)
	}
	c.waitFor(`^P3 OK`)

	// IDLE: "+", an update for a delivery, DONE.
	c.send("I1 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	e.deliver("INBOX", plainMessage("third", "y"))
	c.waitFor(`^\* 3 EXISTS$`)
	c.send("DONE")
	c.waitFor(`^I1 OK`)
	c.ok("LOGOUT")
	c.conn.SetReadDeadline(time.Now().Add(ioGuard))
	if _, err := io.Copy(io.Discard, c.br); err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("after LOGOUT: %v", err) // the stream just stops, without a final block
	}
	if !strings.Contains(lineWith(e.logs.String(), `msg="imap logout"`), "compressed=true") {
		t.Errorf("logout line does not say compressed:\n%s", e.logs.String())
	}
}

// TestCompressedSessionHeap measures (and logs, for docs/performance.md) what a
// compressed session holds between commands, after a burst of responses: the inflater
// (the compressor goes back to the pool at the flush).
func TestCompressedSessionHeap(t *testing.T) {
	const n = 50
	src := strings.Repeat("* 1 FETCH (FLAGS (\\Seen))\r\n", 100)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]*compressConn, n)
	var wg sync.WaitGroup
	for i := range conns {
		a, b := net.Pipe()
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(io.Discard, b) }()
		cc := newCompressConn(a, strings.NewReader(""))
		io.WriteString(cc, src)
		if err := cc.Flush(); err != nil {
			t.Fatal(err)
		}
		if cc.deflate != nil {
			t.Fatal("compressor kept after the flush")
		}
		conns[i] = cc
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d KiB per idle compressed session", (after.HeapAlloc-before.HeapAlloc)/n>>10)
	for _, cc := range conns {
		cc.Conn.Close()
	}
	wg.Wait()
}
