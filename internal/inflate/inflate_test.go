package inflate

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/letterbox-mail/letterbox/internal/benchcorpus"
)

// mailText returns about n bytes of mail-like text.
func mailText(n int) []byte {
	c := benchcorpus.Corpus{Seed: 1}
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.Write(c.Message(i))
	}
	return b.Bytes()[:n]
}

func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// compress compresses data at level, flushing after each of the given offsets.
func compress(t testing.TB, data []byte, level int, flushAt ...int) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	prev := 0
	for _, at := range flushAt {
		if at > len(data) {
			at = len(data)
		}
		w.Write(data[prev:at])
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		prev = at
	}
	w.Write(data[prev:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func inflateAll(src io.Reader) ([]byte, error) {
	return io.ReadAll(NewReader(src))
}

func TestRoundTrip(t *testing.T) {
	levels := []int{flate.HuffmanOnly, flate.NoCompression, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	inputs := map[string][]byte{
		"empty":      nil,
		"one":        []byte("x"),
		"text":       mailText(200 << 10),
		"random":     randomData(100<<10, 1),
		"runs":       bytes.Repeat([]byte("a"), 70000),
		"textrandom": append(mailText(50<<10), randomData(50<<10, 2)...),
	}
	for name, data := range inputs {
		for _, level := range levels {
			for _, flush := range [][]int{nil, {len(data) / 2}, {1, 100, 40000, 40001}} {
				t.Run(fmt.Sprintf("%s/%d/%v", name, level, flush), func(t *testing.T) {
					c := compress(t, data, level, flush...)
					// Through a bufio.Reader (the IMAP case), a bytes.Reader and a plain io.Reader.
					srcs := []io.Reader{bufio.NewReader(bytes.NewReader(c)), bytes.NewReader(c), io.MultiReader(bytes.NewReader(c))}
					for i, src := range srcs {
						got, err := inflateAll(src)
						if err != nil {
							t.Fatalf("source %d: %v", i, err)
						}
						if !bytes.Equal(got, data) {
							t.Fatalf("source %d: got %d bytes, want %d (first difference at %d)", i, len(got), len(data), firstDiff(got, data))
						}
					}
				})
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSmallReads reads one byte at a time through a one-byte-at-a-time source.
func TestSmallReads(t *testing.T) {
	data := append(mailText(40<<10), randomData(5000, 3)...)
	c := compress(t, data, 6, 1000, 20000)
	zr := NewReader(&oneByteReader{c})
	var got []byte
	p := make([]byte, 1)
	for {
		n, err := zr.Read(p)
		got = append(got, p[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("mismatch at %d", firstDiff(got, data))
	}
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

// TestEOFSticky: after the final block Read keeps returning io.EOF, and reads no byte
// past the end of the stream.
func TestEOFSticky(t *testing.T) {
	c := compress(t, []byte("hello, hello, hello"), 6)
	src := bytes.NewReader(append(c, "TRAILER"...))
	zr := NewReader(src)
	got, err := io.ReadAll(zr)
	if err != nil || string(got) != "hello, hello, hello" {
		t.Fatalf("got %q, %v", got, err)
	}
	for range 3 {
		if n, err := zr.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("after end: %d, %v", n, err)
		}
	}
	if src.Len() != len("TRAILER") {
		t.Fatalf("read %d bytes past the end of the stream", len("TRAILER")-src.Len())
	}
	zr.Close()
	if _, err := zr.Read(make([]byte, 1)); err == nil || err == io.EOF {
		t.Fatalf("read after Close: %v", err)
	}
}

// bitWriter builds DEFLATE streams bit by bit (RFC 1951 §3.1.1).
type bitWriter struct {
	out   []byte
	acc   uint64
	nbits uint
}

// bits writes the n low bits of v, least significant first (header fields, extra bits).
func (w *bitWriter) bits(v uint64, n uint) {
	w.acc |= (v & (1<<n - 1)) << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

// code writes an n-bit Huffman code, most significant bit first.
func (w *bitWriter) code(c uint64, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.bits(c>>uint(i)&1, 1)
	}
}

// fixedLit writes literal/length symbol s with the fixed code (§3.2.6).
func (w *bitWriter) fixedLit(s int) {
	switch {
	case s < 144:
		w.code(uint64(0x30+s), 8)
	case s < 256:
		w.code(uint64(0x190+s-144), 9)
	case s < 280:
		w.code(uint64(s-256), 7)
	default:
		w.code(uint64(0xc0+s-280), 8)
	}
}

// whole returns the complete bytes written so far; pad also returns the partial one.
func (w *bitWriter) whole() []byte { return bytes.Clone(w.out) }
func (w *bitWriter) pad() []byte {
	if w.nbits > 0 {
		return append(bytes.Clone(w.out), byte(w.acc))
	}
	return bytes.Clone(w.out)
}

// fixedBlock writes a fixed-Huffman block of the literals of s, with a back-reference
// of length 10, distance len(s) (symbol 264, distance symbol chosen by hand below).
func (w *bitWriter) fixedBlock(final bool, s string) {
	f := uint64(0)
	if final {
		f = 1
	}
	w.bits(f, 1)
	w.bits(1, 2)
	for i := 0; i < len(s); i++ {
		w.fixedLit(int(s[i]))
	}
	w.fixedLit(256)
}

// emptyFixed writes what zlib's Z_PARTIAL_FLUSH adds: an empty fixed block (10 bits).
func (w *bitWriter) emptyFixed() {
	w.bits(0, 1)
	w.bits(1, 2)
	w.fixedLit(256)
}

// gatedReader hands out the chunks sent on c, blocking when it has none.
type gatedReader struct {
	c   chan []byte
	cur []byte
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if len(g.cur) == 0 {
		b, ok := <-g.c
		if !ok {
			return 0, io.EOF
		}
		g.cur = b
	}
	n := copy(p, g.cur)
	g.cur = g.cur[n:]
	return n, nil
}

// readWithin reads exactly len(want) bytes from r, failing if that takes more than a
// few seconds: the decompressor would be holding back data while waiting for input.
func readWithin(t *testing.T, r io.Reader, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(r, got)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("deadlock: the reader waits for more input instead of handing out %d bytes", len(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestPartialFlush emulates Z_PARTIAL_FLUSH: each command is a fixed block followed by
// an empty fixed block, of which only the complete bytes are sent; the reader must hand
// out each command before the next one's bytes arrive.
func TestPartialFlush(t *testing.T) {
	cmds := []string{"a001 CAPABILITY\r\n", "a002 LOGIN user pass\r\n", "a003 SELECT INBOX\r\n"}
	var w bitWriter
	g := &gatedReader{c: make(chan []byte, 10)}
	zr := NewReader(bufio.NewReader(g))
	sent := 0
	for _, cmd := range cmds {
		w.fixedBlock(false, cmd)
		w.emptyFixed()
		b := w.whole()
		g.c <- b[sent:]
		sent = len(b)
		readWithin(t, zr, []byte(cmd))
	}
	w.fixedBlock(true, "")
	g.c <- w.pad()[sent:]
	close(g.c)
	if rest, err := io.ReadAll(zr); err != nil || len(rest) != 0 {
		t.Fatalf("end: %q, %v", rest, err)
	}
}

// TestPartialFlushDynamic: dynamic blocks from compress/flate, each sent without the
// sync flush marker that follows it (so without any bit after the end-of-block code but
// the stored header's zeros); the reader must hand out each block's data all the same.
func TestPartialFlushDynamic(t *testing.T) {
	text := mailText(100 << 10)
	parts := [][]byte{text[:100], text[100:5000], text[5000:70000], text[70000:]}
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, 6)
	g := &gatedReader{c: make(chan []byte, 10)}
	zr := NewReader(bufio.NewReader(g))
	sent := 0
	for _, p := range parts {
		fw.Write(p)
		fw.Flush()
		b := buf.Bytes()
		if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
			t.Fatal("no sync marker")
		}
		end := len(b) - 4
		g.c <- bytes.Clone(b[sent:end])
		sent = end
		readWithin(t, zr, p)
	}
	fw.Close()
	g.c <- bytes.Clone(buf.Bytes()[sent:])
	close(g.c)
	if rest, err := io.ReadAll(zr); err != nil || len(rest) != 0 {
		t.Fatalf("end: %d bytes, %v", len(rest), err)
	}
}

// TestSyncFlush: compress/flate's Flush output delivered as it is written, marker and all.
func TestSyncFlush(t *testing.T) {
	for _, level := range []int{flate.HuffmanOnly, 0, 1, 6, 9} {
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, level)
		g := &gatedReader{c: make(chan []byte, 10)}
		zr := NewReader(bufio.NewReader(g))
		for i := range 5 {
			cmd := []byte(fmt.Sprintf("a%03d UID FETCH 1:* (FLAGS) %s\r\n", i, bytes.Repeat([]byte("x"), i*1000)))
			n := buf.Len()
			fw.Write(cmd)
			fw.Flush()
			g.c <- bytes.Clone(buf.Bytes()[n:])
			readWithin(t, zr, cmd)
		}
		close(g.c)
	}
}

// TestStoredStreaming: a stored block's octets are handed out as they arrive.
func TestStoredStreaming(t *testing.T) {
	data := []byte("0123456789abcdefghij")
	var w bitWriter
	w.bits(1, 1)
	w.bits(0, 2)
	w.bits(0, 5) // to the byte boundary
	w.bits(uint64(len(data)), 16)
	w.bits(uint64(^uint16(len(data))), 16)
	hdr := w.whole()
	g := &gatedReader{c: make(chan []byte, 10)}
	zr := NewReader(bufio.NewReader(g))
	g.c <- append(hdr, data[:7]...)
	readWithin(t, zr, data[:7])
	g.c <- data[7:15]
	readWithin(t, zr, data[7:15])
	g.c <- data[15:]
	close(g.c)
	rest, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(rest, data[15:]) {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

// TestHandBuilt decodes hand-built streams of each block type.
func TestHandBuilt(t *testing.T) {
	// Stored, then fixed with a back-reference reaching into the stored block, then a
	// dynamic block from compress/flate's HuffmanOnly, spliced after a non-final marker.
	var w bitWriter
	w.bits(0, 1)
	w.bits(0, 2)
	w.bits(0, 5)
	w.bits(5, 16)
	w.bits(0xfffa, 16)
	for _, c := range []byte("hello") {
		w.bits(uint64(c), 8)
	}
	w.bits(1, 1) // final
	w.bits(1, 2) // fixed
	w.fixedLit(' ')
	// length 10: symbol 264 (no extra bits); distance 6: symbol 4 (base 5, 1 extra bit = 1)
	w.fixedLit(264)
	w.code(4, 5)
	w.bits(1, 1)
	// length 258: symbol 285; distance 1: symbol 0
	w.fixedLit(285)
	w.code(0, 5)
	// length 3 (257), distance 1 (0)
	w.fixedLit(257)
	w.code(0, 5)
	w.fixedLit(256)
	got, err := inflateAll(bytes.NewReader(w.pad()))
	want := "hello " + "hello hell" + string(bytes.Repeat([]byte("l"), 258+3))
	if err != nil || string(got) != want {
		t.Fatalf("got %q, %v\nwant %q", got, err, want)
	}

	// Dynamic block by hand: code-length code gives lengths 1 (sym 1), 2 (sym 2)... simple
	// scheme: literal 'a' length 1, EOB length 2, literal 'b' length 2; one distance code
	// of length 1 (incomplete, allowed).
	w = bitWriter{}
	w.bits(1, 1)
	w.bits(2, 2)
	w.bits(0, 5)  // HLIT 257
	w.bits(0, 5)  // HDIST 1
	w.bits(14, 4) // HCLEN 18: up to index 17 of clOrder (code length 1)
	// code-length code lengths in clOrder: 16,17,18,0,8,7,9,6,10,5,11,4,12,3,13,2,14,1
	// Use symbols 0 (len 2), 1 (len 2), 2 (len 2), 18 (len 2).
	cl := map[int]uint64{0: 2, 1: 2, 2: 2, 18: 2}
	for i := 0; i < 18; i++ {
		w.bits(cl[int(clOrder[i])], 3)
	}
	// canonical codes: 0->00, 1->01, 2->10, 18->11
	emit := func(sym int) {
		switch sym {
		case 0:
			w.code(0, 2)
		case 1:
			w.code(1, 2)
		case 2:
			w.code(2, 2)
		}
	}
	zeros := func(n int) { // 18: 11..138 zeros, 7 extra bits
		for n > 0 {
			k := min(n, 138)
			if k < 11 {
				for range k {
					emit(0)
				}
				return
			}
			w.code(3, 2)
			w.bits(uint64(k-11), 7)
			n -= k
		}
	}
	zeros('a')
	emit(1) // 'a': 1
	emit(2) // 'b': 2
	zeros(256 - 'b' - 1)
	emit(2) // 256: 2
	emit(1) // distance 0: 1
	// literal/length code: 'a' -> 0, 'b' -> 10, 256 -> 11
	w.code(0, 1)
	w.code(2, 2)
	w.code(0, 1)
	w.code(3, 2)
	got, err = inflateAll(bytes.NewReader(w.pad()))
	if err != nil || string(got) != "aba" {
		t.Fatalf("dynamic: got %q, %v", got, err)
	}
}

// TestLiteralsOnly: a dynamic block with no distance codes at all (every distance code
// length zero) is valid as long as it has no length symbols.
func TestLiteralsOnly(t *testing.T) {
	in := dynLens(map[int]int{'a': 1, 256: 1}, nil, func(w *bitWriter) {
		w.code(0, 1)
		w.code(0, 1)
		w.code(1, 1)
	})
	got, err := inflateAll(bytes.NewReader(in))
	if err != nil || string(got) != "aa" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestWindow: back-references across blocks up to the full 32 KiB, through flushes.
func TestWindow(t *testing.T) {
	chunk := randomData(32768, 7)
	data := append(bytes.Clone(chunk), chunk...)
	data = append(data, chunk[:1000]...)
	for _, level := range []int{1, 6, 9} {
		c := compress(t, data, level, 32768, 32769)
		if len(c) > 40000 {
			t.Logf("level %d: %d bytes (no long back-references?)", level, len(c))
		}
		got, err := inflateAll(bytes.NewReader(c))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("level %d: %v, diff at %d", level, err, firstDiff(got, data))
		}
	}
	// By hand: distance 32768 (symbol 29, 13 extra bits all ones: 24577+8191).
	var w bitWriter
	w.bits(0, 1)
	w.bits(0, 2)
	w.bits(0, 5)
	w.bits(32768&0xffff, 16)
	w.bits(uint64(^uint16(32768)), 16)
	for _, c := range chunk {
		w.bits(uint64(c), 8)
	}
	w.bits(1, 1)
	w.bits(1, 2)
	w.fixedLit(285)
	w.code(29, 5)
	w.bits(8191, 13)
	w.fixedLit(256)
	got, err := inflateAll(bytes.NewReader(w.pad()))
	if err != nil || !bytes.Equal(got, append(bytes.Clone(chunk), chunk[:258]...)) {
		t.Fatalf("distance 32768: %v, %d bytes", err, len(got))
	}
}

func TestCorrupt(t *testing.T) {
	fixed := func(final bool, f func(w *bitWriter)) []byte {
		var w bitWriter
		if final {
			w.bits(1, 1)
		} else {
			w.bits(0, 1)
		}
		w.bits(1, 2)
		f(&w)
		return w.pad()
	}
	dyn := func(hlit, hdist, hclen uint64, cl []uint64, f func(w *bitWriter)) []byte {
		var w bitWriter
		w.bits(1, 1)
		w.bits(2, 2)
		w.bits(hlit, 5)
		w.bits(hdist, 5)
		w.bits(hclen, 4)
		for _, l := range cl {
			w.bits(l, 3)
		}
		if f != nil {
			f(&w)
		}
		return w.pad()
	}
	// A code-length code with symbols 16, 17, 18, 0 (clOrder) of length 2: canonical
	// codes 0 -> 00, 16 -> 01, 17 -> 10, 18 -> 11.
	cl4 := []uint64{2, 2, 2, 2}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"reserved type", []byte{0x07}, errBlockType},
		{"reserved type not final", []byte{0x06}, errBlockType},
		{"stored nlen", []byte{0x01, 5, 0, 0, 0, 'a', 'b', 'c', 'd', 'e'}, errStoredLen},
		{"stored truncated", []byte{0x01, 5, 0, 0xfa, 0xff, 'a', 'b'}, io.ErrUnexpectedEOF},
		{"stored header truncated", []byte{0x01, 5, 0}, io.ErrUnexpectedEOF},
		{"not final", []byte{0x00, 0, 0, 0xff, 0xff}, io.ErrUnexpectedEOF},
		{"fixed truncated", fixed(true, func(w *bitWriter) { w.fixedLit('a') }), io.ErrUnexpectedEOF},
		{"distance before start", fixed(true, func(w *bitWriter) { w.fixedLit('a'); w.fixedLit(257); w.code(1, 5); w.fixedLit(256) }), errDistance},
		{"distance at start", fixed(true, func(w *bitWriter) { w.fixedLit(257); w.code(0, 5); w.fixedLit(256) }), errDistance},
		{"literal/length 286", fixed(true, func(w *bitWriter) { w.fixedLit(286) }), errBadSymbol},
		{"literal/length 287", fixed(true, func(w *bitWriter) { w.fixedLit(287) }), errBadSymbol},
		{"distance 30", fixed(true, func(w *bitWriter) { w.fixedLit('a'); w.fixedLit(257); w.code(30, 5) }), errBadSymbol},
		{"distance 31", fixed(true, func(w *bitWriter) { w.fixedLit('a'); w.fixedLit(257); w.code(31, 5) }), errBadSymbol},
		{"hlit 287", dyn(30, 0, 0, nil, nil), errTooMany},
		{"hdist 31", dyn(0, 30, 0, nil, nil), errTooMany},
		{"code-length code over-subscribed", dyn(0, 0, 15, []uint64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, nil), errOversub},
		{"code-length code incomplete", dyn(0, 0, 0, []uint64{2, 2, 0, 0}, nil), errIncomplete},
		{"code-length code empty", dyn(0, 0, 0, []uint64{0, 0, 0, 0}, nil), errIncomplete},
		{"repeat first", dyn(0, 0, 0, cl4, func(w *bitWriter) { w.code(1, 2); w.bits(0, 2) }), errRepeatFirst},
		{"repeat past end", dyn(0, 0, 0, cl4, func(w *bitWriter) {
			for range 2 { // 2 x 138 zeros: past 258
				w.code(3, 2)
				w.bits(127, 7)
			}
		}), errRepeatLong},
		{"no end-of-block", dyn(0, 0, 0, cl4, func(w *bitWriter) {
			w.code(3, 2)
			w.bits(127, 7) // 138 zeros
			w.code(3, 2)
			w.bits(109, 7) // 120 zeros: all 258 lengths zero
		}), errNoEOB},
		{"literal/length code over-subscribed", dynLens(map[int]int{0: 1, 1: 1, 256: 1}, map[int]int{0: 1}, nil), errOversub},
		{"literal/length code incomplete", dynLens(map[int]int{0: 2, 1: 2, 256: 2}, map[int]int{0: 1}, nil), errIncomplete},
		{"distance code incomplete", dynLens(map[int]int{0: 1, 256: 1}, map[int]int{0: 2, 1: 2, 2: 2}, nil), errIncomplete},
		{"distance code over-subscribed", dynLens(map[int]int{0: 1, 256: 1}, map[int]int{0: 1, 1: 1, 2: 1}, nil), errOversub},
		{"length with no distance code", dynLens(map[int]int{257: 1, 256: 1}, nil, func(w *bitWriter) { w.code(1, 1); w.bits(0, 15) }), errBadCode},
		{"unused code of incomplete distance code", dynLens(map[int]int{257: 1, 256: 1}, map[int]int{0: 1}, func(w *bitWriter) { w.code(1, 1); w.bits(0x7fff, 15) }), errBadCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, src := range []io.Reader{bytes.NewReader(tt.in), bufio.NewReader(bytes.NewReader(tt.in))} {
				_, err := inflateAll(src)
				if !errors.Is(err, tt.want) {
					t.Fatalf("source %d: got %v, want %v", i, err, tt.want)
				}
				if tt.want != io.ErrUnexpectedEOF && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("source %d: %v does not wrap ErrCorrupt", i, err)
				}
			}
		})
	}
}

// dynLens builds a final dynamic block with the given literal/length and distance code
// lengths (symbol: length; HLIT 286, HDIST 30), using a code-length code that gives
// lengths 0..15 4-bit codes, followed by what f writes.
func dynLens(lit, dist map[int]int, f func(w *bitWriter)) []byte {
	var w bitWriter
	w.bits(1, 1)
	w.bits(2, 2)
	w.bits(286-257, 5)
	w.bits(30-1, 5)
	w.bits(19-4, 4)
	for i := range 19 {
		l := uint64(0)
		if clOrder[i] < 16 {
			l = 4
		}
		w.bits(l, 3)
	}
	for s := range 286 {
		w.code(uint64(lit[s]), 4)
	}
	for s := range 30 {
		w.code(uint64(dist[s]), 4)
	}
	if f != nil {
		f(&w)
	}
	return w.pad()
}

// TestNoPanicOnGarbage: random inputs end in an error or io.EOF, never a panic or a hang.
func TestNoPanicOnGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for i := range 3000 {
		b := make([]byte, r.IntN(200))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i%3 == 0 && len(b) > 0 {
			b[0] = b[0]&^6 | 4 // dynamic
		}
		io.Copy(io.Discard, NewReader(bytes.NewReader(b)))
	}
}

// TestMutations corrupts valid streams byte by byte; decoding must end, with output no
// larger than a sane bound.
func TestMutations(t *testing.T) {
	data := mailText(5000)
	c := compress(t, data, 6, 2000)
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		m := bytes.Clone(c)
		for range 1 + r.IntN(3) {
			m[r.IntN(len(m))] ^= byte(1 << r.IntN(8))
		}
		n, _ := io.Copy(io.Discard, NewReader(bytes.NewReader(m)))
		if n > int64(len(m))*8*258 {
			t.Fatalf("%d bytes of output from %d bytes of input", n, len(m))
		}
	}
}

func TestAllocs(t *testing.T) {
	c := compress(t, mailText(100<<10), 6, 50000)
	src := bufio.NewReader(bytes.NewReader(c))
	buf := make([]byte, 4096)
	allocs := testing.AllocsPerRun(5, func() {
		src.Reset(bytes.NewReader(c))
		zr := NewReader(src)
		for {
			if _, err := zr.Read(buf); err != nil {
				break
			}
		}
	})
	// The bytes.Reader, the reader and its window.
	if allocs > 3 {
		t.Fatalf("%v allocations per stream", allocs)
	}
	// The reader's state apart from the window, documented in the package comment.
	if n := unsafe.Sizeof(reader{}); n > 3456 {
		t.Fatalf("reader state is %d bytes", n)
	} else {
		t.Logf("reader state %d bytes + window %d", n, windowSize)
	}
}

func benchData(b *testing.B) ([]byte, []byte) {
	data := mailText(1 << 20)
	return data, compress(b, data, 6)
}

func BenchmarkInflate(b *testing.B) {
	data, c := benchData(b)
	b.SetBytes(int64(len(data)))
	br := bufio.NewReader(nil)
	for b.Loop() {
		br.Reset(bytes.NewReader(c))
		if n, err := io.Copy(io.Discard, NewReader(br)); err != nil || n != int64(len(data)) {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkCompressFlate(b *testing.B) {
	data, c := benchData(b)
	b.SetBytes(int64(len(data)))
	br := bufio.NewReader(nil)
	for b.Loop() {
		br.Reset(bytes.NewReader(c))
		if n, err := io.Copy(io.Discard, flate.NewReader(br)); err != nil || n != int64(len(data)) {
			b.Fatal(n, err)
		}
	}
}

// TestZlibPartialFlush replays what zlib (deflateInit2 with -15 window bits, level 6)
// sends for four IMAP commands each followed by Z_PARTIAL_FLUSH, as a client like mbsync
// does, chunk by chunk: each command must come out before the next chunk is sent. (The
// chunks were produced by Python's zlib module, compressobj(6, DEFLATED, -15) and
// flush(Z_PARTIAL_FLUSH); the last is flush(Z_FINISH).)
func TestZlibPartialFlush(t *testing.T) {
	chunks := []struct{ cmd, sent string }{
		{"a001 CAPABILITY\r\n", "\x4a\x34\x30\x30\x54\x70\x76\x0c\x70\x74\xf2\xf4\xf1\x0c\x89\xe4\xe5\x02\x08"},
		{"a002 LOGIN user secret\r\n", "\xa0\x44\x03\x03\x23\x05\x1f\x7f\x77\x4f\x3f\x85\xd2\xe2\xd4\x22\x85\xe2\xd4\xe4\xa2\xd4\x12\x5e\x2e\x80\x00"},
		{"a003 SELECT INBOX\r\n", "\x02\x8a\x1b\x2b\x04\xbb\xfa\xb8\x3a\x87\x28\x78\xfa\x39\xf9\x47\xf0\x72\x01\x04"},
		{"a004 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])\r\n", "\x10\x50\xc8\x44\x21\xd4\xd3\x45\xc1\xcd\x35\xc4\xd9\x43\xc1\xd0\x4a\x4b\x41\xc3\xcd\xc7\xd1\x3d\x58\xc1\xc9\xdf\x25\x52\x2f\xc0\xd5\xd5\x3b\xda\xc3\xd5\xd1\xc5\x35\x48\xcf\xcd\xd3\xd5\xc7\x25\x18\x28\x1d\xe4\xef\xab\x10\x1c\xea\xe4\x05\x34\x46\x33\x56\x93\x97\x0b\x20"},
		{"", "\xc0\x00"},
	}
	g := &gatedReader{c: make(chan []byte, 10)}
	zr := NewReader(bufio.NewReader(g))
	for _, c := range chunks[:len(chunks)-1] {
		g.c <- []byte(c.sent)
		readWithin(t, zr, []byte(c.cmd))
	}
	g.c <- []byte(chunks[len(chunks)-1].sent)
	close(g.c)
	if rest, err := io.ReadAll(zr); err != nil || len(rest) != 0 {
		t.Fatalf("end: %q, %v", rest, err)
	}
}
