package imap

import (
	"bufio"
	"bytes"
	"compress/flate"
	"io"
	"sync"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/inflate"
)

// capCompressDeflate is COMPRESS=DEFLATE (RFC 4978).
const capCompressDeflate imap.Cap = "COMPRESS=DEFLATE"

// compressLevel is the deflate level of what the server sends: the fastest, and the one
// whose compressor resets cheaply (no hash table to clear), which matters because
// compressors are shared (deflaters).
const compressLevel = flate.BestSpeed

// deflaters hold the compressors of sessions that are writing. Go's flate.Writer is some
// 650 KiB at any level (its hash tables are part of it), too much to keep per idle
// session, so a session takes one at the first write of a burst and gives it back at the
// flush that ends the burst. That is still one DEFLATE stream: a sync flush ends on a
// byte boundary after a complete block, and the next compressor's blocks follow it, each
// block self-describing (RFC 1951 §3.2.3) and referring back only to what the same
// compressor wrote, which the client's inflater still has in its 32 KiB window. What is
// lost is only matches against earlier bursts. An idle compressed session keeps the
// inflater alone, as it must: the client's compressor may refer to anything it sent in
// the last 32 KiB (docs/performance.md has the measure).
var deflaters = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(io.Discard, compressLevel) // err only for a bad level
	return fw
}}

type compressArgs struct{ mechanism string }

// COMPRESS SP algorithm (RFC 4978 §4: command-auth =/ compress; algorithm = "DEFLATE").
func parseCompress(r *commandReader) (any, error) {
	if err := r.sp(); err != nil {
		return nil, err
	}
	mech, err := r.keyword()
	if err != nil {
		return nil, err
	}
	return &compressArgs{mechanism: mech}, nil
}

// handleCompress does COMPRESS DEFLATE (RFC 4978 §3) in the authenticated and selected
// states: the tagged OK goes out uncompressed, and from the next octet on both directions
// are raw DEFLATE (RFC 1951, no zlib header) over the connection, TLS or not. RFC 4978 §3:
// the client sends nothing after COMPRESS until it has seen the OK, and compresses from
// its first command after it; anything it sent early is taken as compressed. A second
// COMPRESS gets NO [COMPRESSIONACTIVE] (RFC 5530 §3), an unknown mechanism BAD.
//
// The layer sits between the session's reader and writer and the connection: s.conn
// stays the socket (or TLS), which the read-ahead (readahead.go) reads compressed octets
// from, so that its interrupted reads never touch the inflater's state.
func handleCompress(s *session, cmd *command) error {
	a := cmd.args.(*compressArgs)
	if a.mechanism != "DEFLATE" {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown compression mechanism " + truncate(a.mechanism, 32)}
	}
	if s.compressed != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "COMPRESSIONACTIVE", Text: "DEFLATE is active already"}
	}
	s.out.status(cmd.tag, imap.StatusResponseTypeOK, "", "DEFLATE active")
	if err := s.out.flush(); err != nil {
		return err
	}
	s.cmdDone = true
	// What the client may have sent after the command, compressed, is kept for the
	// inflater: the reader is replaced, what it had read is not dropped. (The table marks
	// COMPRESS as reading the connection itself, so no read-ahead started; stop is a
	// guard, and its deadline is set afresh by the loop.)
	s.ahead.stop(s.conn)
	early, _ := s.br.Peek(s.br.Buffered())
	early = append(bytes.Clone(early), s.ahead.unread()...)
	s.mu.Lock()
	s.setConn(s.conn)
	s.compressed = newCompression(io.MultiReader(bytes.NewReader(early), rawReader{s}), deadlineWriter{s})
	s.out.dst = s.compressed
	s.mu.Unlock()
	s.log.Debug("COMPRESS=DEFLATE active")
	return nil
}

// rawReader reads the connection's octets as they come, compressed: what the read-ahead
// read first, then the connection.
type rawReader struct{ s *session }

func (r rawReader) Read(p []byte) (int, error) {
	if n, err, ok := r.s.ahead.read(p); ok {
		return n, err
	}
	return r.s.conn.Read(p)
}

// compression is the session's DEFLATE layer under COMPRESS: Read inflates what the
// client sends (connReader reads through it), Write deflates what the server sends. Writes
// stay in the compressor until Flush; the response writer (write.go) calls Flush after
// every flush of its own buffer, which is everywhere the server would flush the socket
// (the end of a command or of a burst of pipelined ones, a continuation request, every
// IDLE update, BYE), so no answer a client waits for stays inside the compressor. Flush is
// a sync flush of everything written, never a partial one.
type compression struct {
	inflate io.ReadCloser
	deflate *flate.Writer // from deflaters while a burst is being written; nil between
	dst     io.Writer     // the connection, with its write deadline
}

func newCompression(src io.Reader, dst io.Writer) *compression {
	// Not compress/flate's decompressor, which holds what it inflated until its window
	// fills or a stored block comes: a client that ends a command with a partial flush
	// (mbsync) would wait for ever for its answer. internal/inflate hands it out at the
	// end of every block. It reads through a bufio.Reader of its own unless given an
	// io.ByteReader; a small one suffices, as for commands (readBufferSize).
	return &compression{inflate: inflate.NewReader(bufio.NewReaderSize(src, readBufferSize)), dst: dst}
}

func (c *compression) Read(p []byte) (int, error) {
	n, err := c.inflate.Read(p)
	if err == io.EOF {
		// RFC 4978 §3: the stream lasts as long as the connection; a final block is the
		// client ending it.
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Write compresses p; it reaches the connection at Flush (or when the compressor's
// block fills).
func (c *compression) Write(p []byte) (int, error) {
	if c.deflate == nil {
		c.deflate = deflaters.Get().(*flate.Writer)
		c.deflate.Reset(c.dst)
	}
	return c.deflate.Write(p)
}

// Flush ends the compressed data written so far with a sync flush (RFC 1951 §3.2.4: an
// empty stored block after a complete one, which aligns the stream), so that the client
// can inflate all of it now, writes it out, and gives the compressor back.
func (c *compression) Flush() error {
	if c.deflate == nil {
		return nil
	}
	err := c.deflate.Flush()
	c.deflate.Reset(io.Discard)
	deflaters.Put(c.deflate)
	c.deflate = nil
	return err
}
