// Package inflate is a DEFLATE decompressor (RFC 1951) that hands out what it has
// inflated at the end of every block.
//
// It exists for IMAP COMPRESS=DEFLATE (RFC 4978). Go's compress/flate reader returns
// data only when its window fills, at a stored block or at the end of the stream. A
// client that ends each command with zlib's Z_PARTIAL_FLUSH (mbsync does) sends the
// data block and then an empty fixed-Huffman block, whose last bits may stay in the
// client until it sends more; compress/flate would hold the command inside the
// decompressor while the client waits for the server's answer, and the session would
// deadlock. This reader returns the octets of a block as soon as the block's
// end-of-block code has been read, and never reads a byte from its source that it does
// not need.
//
// # Implementation notes
//
// Written from RFC 1951 alone:
//
//   - §3.2.3 block format: each block starts with BFINAL (1 bit) and BTYPE (2 bits):
//     00 stored, 01 fixed Huffman codes, 10 dynamic Huffman codes, 11 reserved (an error).
//     A stored block skips to the next byte boundary, then LEN and NLEN (16 bits each,
//     NLEN the one's complement of LEN, else an error), then LEN literal octets (§3.2.4).
//   - §3.2.5 lengths and distances: literal/length symbols 257..285 carry a length
//     3..258 with 0..5 extra bits; distance symbols 0..29 a distance 1..32768 with 0..13
//     extra bits (tables lenBase, lenExtra, distBase, distExtra). Symbols 286, 287 and
//     distance symbols 30, 31 never occur in valid data. A back-reference may reach into
//     earlier blocks, up to 32 KiB back, but never before the start of the stream.
//   - §3.2.6 fixed codes: literal/length lengths 8 (0..143), 9 (144..255), 7 (256..279),
//     8 (280..287); distance codes all 5 bits. Built once, shared by every reader.
//   - §3.2.7 dynamic codes: HLIT, HDIST, HCLEN, the code-length code's lengths in the
//     order 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15, then the
//     literal/length and distance code lengths as one sequence using the repeat codes 16
//     (previous length 3..6 times), 17 (zero 3..10 times) and 18 (zero 11..138 times).
//     Codes are canonical (§3.2.2). An over-subscribed code is an error; an incomplete
//     one is an error too, except a code with a single length-1 code (which encoders
//     emit for a lone distance) and a distance code with no codes at all (a block of
//     literals only). The end-of-block symbol 256 must have a code.
//
// Huffman decoding (§3.1.1: codes are packed starting with their most significant bit)
// is table-driven: a 2^9-entry table indexed by the next 9 input bits gives the symbol
// and length of every code of up to 9 bits; longer codes, rare by construction, are
// decoded bit by bit from the canonical counts (first code of each length). Decoding
// works on a copy of the bit buffer and commits only a complete literal or a complete
// length/distance pair, so it can stop before any byte fetch and resume later: when it
// has output and the source has nothing buffered it returns that output rather than
// block. It fetches a byte only when the bits it has cannot settle the next item, so it
// never reads past the end of the stream nor waits for input it does not need. That
// laziness (one byte at a time, and a decoding attempt that may be redone once the byte
// is in) costs some speed: on 1 MB of mail text (BenchmarkInflate against
// BenchmarkCompressFlate) it runs at about 0.6 to 0.7 times compress/flate's speed.
//
// # Memory
//
// A reader holds the 32 KiB window (which is also its output buffer: Read copies out of
// it, and decoding pauses when the octets not yet handed out would be overwritten) and
// 3408 bytes of state (on 64-bit platforms): two Huffman tables of 1632 bytes each (the
// code-length code reuses the distance table's storage) and a few words. The window is
// a separate allocation so that the allocator's size classes hold the total to about
// 35.4 KiB (36,224 bytes: 32768 + 3456) instead of rounding one 36 KiB object up to
// 40 KiB. Add a 4 KiB bufio.Reader only if the source is not an io.ByteReader. No
// goroutines; nothing is allocated after NewReader.
package inflate

import (
	"bufio"
	"errors"
	"io"
	"math/bits"
)

const (
	windowSize = 1 << 15 // §3.2: distances reach back at most 32768 octets
	windowMask = windowSize - 1
	maxMatch   = 258 // §3.2.5: the longest length
	tableBits  = 9   // bits resolved by one table lookup
	maxCodeLen = 15  // §3.2.7: code lengths 0..15
)

// ErrCorrupt is wrapped by every error that reports malformed input.
var ErrCorrupt = errors.New("inflate: corrupt input")

type corruptError string

func (e corruptError) Error() string        { return "inflate: corrupt input: " + string(e) }
func (e corruptError) Is(target error) bool { return target == ErrCorrupt }

var (
	errBlockType   = corruptError("reserved block type 3")
	errStoredLen   = corruptError("stored block LEN and NLEN do not match")
	errTooMany     = corruptError("too many literal/length or distance codes")
	errOversub     = corruptError("over-subscribed Huffman code")
	errIncomplete  = corruptError("incomplete Huffman code")
	errRepeatFirst = corruptError("code length repeat with no previous length")
	errRepeatLong  = corruptError("code length repeat past the last code")
	errNoEOB       = corruptError("no code for end-of-block")
	errBadCode     = corruptError("invalid Huffman code")
	errBadSymbol   = corruptError("invalid literal/length or distance symbol")
	errDistance    = corruptError("distance beyond the start of the output")
	errClosed      = errors.New("inflate: read after Close")

	// errYield is internal: decoding stopped before a fetch that might block while
	// there is output to hand out.
	errYield = errors.New("inflate: yield")
)

// §3.2.5 tables, for literal/length symbols 257..285 and distance symbols 0..29.
var (
	lenBase   = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra  = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// §3.2.7: the order of the code length code lengths.
	clOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// huff is a canonical Huffman code (§3.2.2) ready for decoding.
type huff struct {
	// table[i] for the next tableBits input bits i (first bit lowest) is sym<<4 | len
	// for the code of len <= tableBits bits that i starts with, or 0 if there is none.
	table [1 << tableBits]uint16
	count [maxCodeLen + 1]uint16 // count[l]: number of codes of length l
	sym   [288]uint16            // symbols ordered by (code length, symbol value)
}

// build makes h the canonical code for the code lengths lens (at most 288). allowEmpty
// permits a code with no codes at all.
func (h *huff) build(lens []uint8, allowEmpty bool) error {
	var count [maxCodeLen + 1]uint16
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	left, total := 1, 0
	for l := 1; l <= maxCodeLen; l++ {
		left = left<<1 - int(count[l])
		if left < 0 {
			return errOversub
		}
		total += int(count[l])
	}
	if left > 0 && !(total == 1 && count[1] == 1) && !(total == 0 && allowEmpty) {
		return errIncomplete
	}
	h.count = count
	var offs, next [maxCodeLen + 2]int
	code := 0
	for l := 1; l <= maxCodeLen; l++ {
		offs[l+1] = offs[l] + int(count[l])
		code = (code + int(count[l-1])) << 1
		next[l] = code
	}
	clear(h.table[:])
	for s, l := range lens {
		if l == 0 {
			continue
		}
		h.sym[offs[l]] = uint16(s)
		offs[l]++
		c := next[l]
		next[l]++
		if l > tableBits {
			continue
		}
		r := int(bits.Reverse16(uint16(c)) >> (16 - l))
		e := uint16(s)<<4 | uint16(l)
		for i := r; i < len(h.table); i += 1 << l {
			h.table[i] = e
		}
	}
	return nil
}

// decode decodes one symbol from the n bits b (first bit lowest). It returns the
// symbol and the length of its code, a length of 0 if n bits are too few to tell, or
// -1 if the bits start no code.
func (h *huff) decode(b uint64, n uint) (int, int) {
	if e := h.table[b&(1<<tableBits-1)]; e != 0 && uint(e&15) <= n {
		return int(e >> 4), int(e & 15)
	}
	// Canonical decoding, one bit at a time: at each length l, codes first..first+count-1
	// are the codes of length l, in symbol order.
	code, first, index := 0, 0, 0
	for l := 1; l <= maxCodeLen; l++ {
		if uint(l) > n {
			return 0, 0
		}
		code |= int(b & 1)
		b >>= 1
		count := int(h.count[l])
		if code-first < count {
			return int(h.sym[index+code-first]), l
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, -1
}

var fixedLit, fixedDist huff

func init() {
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	if err := fixedLit.build(lens[:], false); err != nil {
		panic(err)
	}
	for i := 0; i < 32; i++ {
		lens[i] = 5
	}
	if err := fixedDist.build(lens[:32], false); err != nil {
		panic(err)
	}
}

// Decoder states.
const (
	stHeader    = iota // before a block header
	stStoredLen        // before a stored block's LEN and NLEN
	stStored           // inside a stored block
	stData             // inside a Huffman block
	stEOF              // after the final block
)

type reader struct {
	src io.ByteReader
	rd  io.Reader                   // the same source as an io.Reader
	buf interface{ Buffered() int } // src's Buffered, or nil
	mem bool                        // src never blocks (it has a Len method: bytes.Reader and the like)

	bits  uint64 // input bits not yet used, first bit lowest
	nbits uint

	state      uint8
	final      bool // the current block is the final one
	storedLeft int
	err        error

	lit, dist *huff

	wpos, rpos uint32 // octets decoded and handed out, modulo 2^32
	have       int    // octets of history in win, at most windowSize

	litStore, distStore huff
	// win is allocated apart: the Go allocator rounds a 36 KiB object up to 40 KiB, but
	// 32 KiB and 3.4 KiB objects to their own sizes.
	win *[windowSize]byte
}

// NewReader returns a reader of the raw DEFLATE stream (RFC 1951, no zlib or gzip header) read from r.
// Read returns the octets of every block as soon as the block's end-of-block code has been read (and
// of a stored block as it is read), never waiting for more input to hand out what it already has.
//
// If r is not an io.ByteReader it is wrapped in a bufio.Reader, which may read ahead of the
// stream's end; pass a *bufio.Reader to keep control of that. Reads from r only block
// when the reader has nothing to hand out, provided r is a *bufio.Reader (or anything with
// a Buffered method) or never blocks (has a Len method, as bytes.Reader); for any other
// io.ByteReader it returns its output before every byte it fetches. Malformed input gives
// an error wrapping ErrCorrupt; input that ends early, io.ErrUnexpectedEOF; errors from r
// are returned as they are. Errors are final. Close does not close r.
func NewReader(r io.Reader) io.ReadCloser {
	z := &reader{win: new([windowSize]byte)}
	br, ok := r.(io.ByteReader)
	if !ok {
		b := bufio.NewReader(r)
		br, r = b, b
	}
	z.src = br
	z.rd = r
	if b, ok := br.(interface{ Buffered() int }); ok {
		z.buf = b
	} else if _, ok := br.(interface{ Len() int }); ok {
		z.mem = true
	}
	return z
}

func (z *reader) pending() int { return int(z.wpos - z.rpos) }

func (z *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for z.pending() == 0 {
		if z.err != nil {
			return 0, z.err
		}
		z.err = z.decode()
	}
	n := 0
	for n < len(p) && z.rpos != z.wpos {
		i := int(z.rpos & windowMask)
		j := min(windowSize, i+z.pending())
		m := copy(p[n:], z.win[i:j])
		n += m
		z.rpos += uint32(m)
	}
	return n, nil
}

func (z *reader) Close() error {
	if z.err == nil || z.err == io.EOF {
		z.err = errClosed
	}
	return nil
}

// fetch adds one input byte to the bit buffer.
func (z *reader) fetch() error {
	c, err := z.src.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	z.bits |= uint64(c) << z.nbits
	z.nbits += 8
	return nil
}

// mayFetch reports whether fetching a byte cannot hold back output: there is none, or
// the source has a byte ready.
func (z *reader) mayFetch() bool {
	if z.wpos == z.rpos || z.mem {
		return true
	}
	return z.buf != nil && z.buf.Buffered() > 0
}

// more fetches a byte, or returns errYield if that might block while there is output.
func (z *reader) more() error {
	if !z.mayFetch() {
		return errYield
	}
	return z.fetch()
}

// need fetches until the bit buffer holds n bits. It is used only where there is no
// output pending (block headers), so it may block.
func (z *reader) need(n uint) error {
	for z.nbits < n {
		if err := z.fetch(); err != nil {
			return err
		}
	}
	return nil
}

func (z *reader) take(n uint) uint32 {
	v := uint32(z.bits & (1<<n - 1))
	z.bits >>= n
	z.nbits -= n
	return v
}

// decode decodes until there is output to hand out or an error. It is called only when
// all output has been handed out.
func (z *reader) decode() error {
	for {
		switch z.state {
		case stHeader:
			if err := z.need(3); err != nil {
				return err
			}
			z.final = z.take(1) == 1
			switch z.take(2) {
			case 0:
				z.take(z.nbits & 7) // §3.2.4: skip to a byte boundary
				z.state = stStoredLen
			case 1:
				z.lit, z.dist = &fixedLit, &fixedDist
				z.state = stData
			case 2:
				if err := z.dynamic(); err != nil {
					return err
				}
				z.state = stData
			default:
				return errBlockType
			}
		case stStoredLen:
			if err := z.need(32); err != nil {
				return err
			}
			n := z.take(16)
			if z.take(16) != ^n&0xffff {
				return errStoredLen
			}
			z.storedLeft = int(n)
			z.state = stStored
		case stStored:
			done, err := z.stored()
			if err != nil {
				return err
			}
			if !done {
				return nil
			}
			z.endBlock()
		case stData:
			done, err := z.huffData()
			if err != nil {
				return err
			}
			if !done {
				return nil
			}
			z.endBlock()
		default:
			return io.EOF
		}
		if z.wpos != z.rpos {
			return nil
		}
	}
}

func (z *reader) endBlock() {
	if z.final {
		z.state = stEOF
	} else {
		z.state = stHeader
	}
}

// dynamic reads a dynamic block's code definitions (§3.2.7).
func (z *reader) dynamic() error {
	if err := z.need(14); err != nil {
		return err
	}
	nlit := int(z.take(5)) + 257
	ndist := int(z.take(5)) + 1
	nclen := int(z.take(4)) + 4
	if nlit > 286 || ndist > 30 {
		return errTooMany
	}
	var cl [19]uint8
	for i := 0; i < nclen; i++ {
		if err := z.need(3); err != nil {
			return err
		}
		cl[clOrder[i]] = uint8(z.take(3))
	}
	h := &z.distStore // free until the distance code is built
	if err := h.build(cl[:], false); err != nil {
		return err
	}
	var lens [286 + 30]uint8
	n := nlit + ndist
	for i := 0; i < n; {
		sym, l := h.decode(z.bits, z.nbits)
		if l < 0 {
			return errBadCode
		}
		if l == 0 {
			if err := z.fetch(); err != nil {
				return err
			}
			continue
		}
		z.take(uint(l))
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return errRepeatFirst
			}
			if err := z.need(2); err != nil {
				return err
			}
			rep, val = 3+int(z.take(2)), lens[i-1]
		case 17:
			if err := z.need(3); err != nil {
				return err
			}
			rep = 3 + int(z.take(3))
		default:
			if err := z.need(7); err != nil {
				return err
			}
			rep = 11 + int(z.take(7))
		}
		if i+rep > n {
			return errRepeatLong
		}
		for ; rep > 0; rep-- {
			lens[i] = val
			i++
		}
	}
	if lens[256] == 0 {
		return errNoEOB
	}
	if err := z.litStore.build(lens[:nlit], false); err != nil {
		return err
	}
	if err := z.distStore.build(lens[nlit:n], true); err != nil {
		return err
	}
	z.lit, z.dist = &z.litStore, &z.distStore
	return nil
}

// stored copies a stored block's octets into the window. It reports whether the block
// is done; false with a nil error means it stopped to hand out output.
func (z *reader) stored() (bool, error) {
	for z.storedLeft > 0 {
		space := windowSize - z.pending()
		if space == 0 {
			return false, nil
		}
		w := int(z.wpos & windowMask)
		if z.nbits >= 8 {
			z.win[w] = byte(z.take(8))
			z.wpos++
			z.storedLeft--
			z.have = min(z.have+1, windowSize)
			continue
		}
		if !z.mayFetch() {
			return false, nil
		}
		n := min(z.storedLeft, space, windowSize-w)
		if z.buf != nil && z.wpos != z.rpos {
			n = min(n, z.buf.Buffered())
		}
		m, err := z.rd.Read(z.win[w : w+n])
		z.wpos += uint32(m)
		z.storedLeft -= m
		z.have = min(z.have+m, windowSize)
		if err != nil && (z.storedLeft > 0 || err != io.EOF) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return false, err
		}
	}
	return true, nil
}

// huffData decodes a Huffman block's data (§3.2.5). It reports whether the block is
// done (its end-of-block code read); false with a nil error means it stopped to hand
// out output.
func (z *reader) huffData() (bool, error) {
	lit, dist := z.lit, z.dist
	for {
		if z.pending() > windowSize-maxMatch {
			return false, nil
		}
		b, n := z.bits, z.nbits
		sym, l := lit.decode(b, n)
		if l <= 0 {
			if l < 0 {
				return false, errBadCode
			}
			if err := z.more(); err != nil {
				return false, yielded(err)
			}
			continue
		}
		if sym < 256 {
			z.win[z.wpos&windowMask] = byte(sym)
			z.wpos++
			if z.have < windowSize {
				z.have++
			}
			z.bits >>= uint(l)
			z.nbits -= uint(l)
			continue
		}
		if sym == 256 {
			z.bits >>= uint(l)
			z.nbits -= uint(l)
			return true, nil
		}
		sym -= 257
		if sym >= len(lenBase) {
			return false, errBadSymbol
		}
		need := uint(l) + uint(lenExtra[sym])
		if n < need {
			if err := z.more(); err != nil {
				return false, yielded(err)
			}
			continue
		}
		length := int(lenBase[sym]) + int(b>>uint(l)&(1<<lenExtra[sym]-1))
		dsym, dl := dist.decode(b>>need, n-need)
		if dl <= 0 {
			if dl < 0 {
				return false, errBadCode
			}
			if err := z.more(); err != nil {
				return false, yielded(err)
			}
			continue
		}
		if dsym >= len(distBase) {
			return false, errBadSymbol
		}
		dneed := need + uint(dl)
		need = dneed + uint(distExtra[dsym])
		if n < need {
			if err := z.more(); err != nil {
				return false, yielded(err)
			}
			continue
		}
		d := int(distBase[dsym]) + int(b>>dneed&(1<<distExtra[dsym]-1))
		if d > z.have {
			return false, errDistance
		}
		z.bits >>= need
		z.nbits -= need
		z.copyBack(d, length)
	}
}

func yielded(err error) error {
	if err == errYield {
		return nil
	}
	return err
}

// copyBack appends length octets copied from d octets back; the caller has checked
// that d <= z.have and that the window has room.
func (z *reader) copyBack(d, length int) {
	w := int(z.wpos & windowMask)
	s := (w - d) & windowMask
	if d >= length && w+length <= windowSize && s+length <= windowSize {
		copy(z.win[w:w+length], z.win[s:s+length])
	} else {
		for i := 0; i < length; i++ {
			z.win[(w+i)&windowMask] = z.win[(s+i)&windowMask]
		}
	}
	z.wpos += uint32(length)
	z.have = min(z.have+length, windowSize)
}
