package imap

import (
	"bufio"
	"compress/flate"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
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
	conns := make([]*compression, n)
	pipes := make([]net.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		a, b := net.Pipe()
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(io.Discard, b) }()
		cc := newCompression(strings.NewReader(""), a)
		pipes[i] = a
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
	for _, p := range pipes {
		p.Close()
	}
	runtime.KeepAlive(conns)
	wg.Wait()
}

// partialFlusher is a client's compressor that ends every write as zlib's
// Z_PARTIAL_FLUSH does (mbsync's way): the data in a fixed-Huffman block, then an empty
// fixed block, and only whole octets sent, the last bits staying behind for the next
// write. RFC 1951 §3.2.6: literals 0-143 are the 8-bit codes 00110000 + value, sent
// most significant bit first; end of block is the 7-bit code 0.
type partialFlusher struct {
	w       io.Writer
	bits    uint64
	nbits   uint
	pending []byte
}

func (p *partialFlusher) put(v uint64, n uint) { // n bits, least significant first
	p.bits |= v << p.nbits
	p.nbits += n
	for p.nbits >= 8 {
		p.pending = append(p.pending, byte(p.bits))
		p.bits >>= 8
		p.nbits -= 8
	}
}

func (p *partialFlusher) putCode(code uint64, n uint) { // a Huffman code, MSB first
	var rev uint64
	for i := uint(0); i < n; i++ {
		rev = rev<<1 | (code>>i)&1
	}
	p.put(rev, n)
}

func (p *partialFlusher) Write(b []byte) (int, error) {
	p.put(0b010, 3) // BFINAL 0, BTYPE 01 (fixed Huffman)
	for _, c := range b {
		if c >= 144 {
			panic("partialFlusher writes ASCII only")
		}
		p.putCode(0x30+uint64(c), 8)
	}
	p.putCode(0, 7) // end of block
	p.put(0b010, 3) // the empty fixed block of a partial flush
	p.putCode(0, 7)
	out := p.pending
	p.pending = nil
	_, err := p.w.Write(out)
	return len(b), err
}

// A client that ends its commands with partial flushes (mbsync) gets its answers: the
// server inflates every complete block at once, not only at a sync flush.
func TestCompressClientPartialFlush(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	c.ok("COMPRESS DEFLATE")
	conn := c.conn
	c.br = bufio.NewReader(flate.NewReader(conn))
	c.conn = &partialFlushConn{Conn: conn, w: &partialFlusher{w: conn}}
	c.ok("NAMESPACE")
	c.ok("SELECT INBOX")
	c.ok("NOOP")
}

type partialFlushConn struct {
	net.Conn
	w *partialFlusher
}

func (c *partialFlushConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Under COMPRESS too, a client that pipelines commands and reads only once it has sent
// them all does not wedge the server: the read-ahead reads the compressed octets beneath
// the inflater (TestPipelinedWithoutReading without compression). The bodies are random,
// so the answers stay large once compressed; the commands are written Huffman-only, so
// they stay large enough to fill the socket buffers too.
func TestCompressPipelinedWithoutReading(t *testing.T) {
	e := newEnv(t)
	// Distinct messages, each farther back than the 32 KiB window once it comes round
	// again: no answer compresses against an earlier one.
	const messages = 64
	rng := rand.NewChaCha8([32]byte{1})
	for range messages {
		random := make([]byte, 6<<10)
		rng.Read(random)
		e.deliver("INBOX", plainMessage("Random", base64.StdEncoding.EncodeToString(random)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(smallReadBufListener{ln})
	far := &testEnv{t: t, addr: ln.Addr().String()}
	c := far.raw()
	c.conn.(*net.TCPConn).SetWriteBuffer(4 << 10)
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	c.ok("COMPRESS DEFLATE")
	fw, _ := flate.NewWriter(c.conn, flate.HuffmanOnly)
	c.br = bufio.NewReader(flate.NewReader(c.conn))
	c.conn = &deflateClientConn{Conn: c.conn, fw: fw}
	c.ok("SELECT INBOX")
	const n = 3000 // some 20 MB of answers, 15 compressed
	var cmds strings.Builder
	for i := range n {
		fmt.Fprintf(&cmds, "F%d FETCH %d (BODY.PEEK[])\r\n", i, i%messages+1)
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
