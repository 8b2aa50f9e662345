package inflate

import (
	"bytes"
	"compress/flate"
	"io"
	"testing"
)

// FuzzInflate: arbitrary input never panics or hangs and gives bounded output; and,
// taking the input as data, compress/flate's compression of it (level and flush point
// from its first bytes) inflates back to it.
func FuzzInflate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("a001 CAPABILITY\r\n"))
	f.Add([]byte{0x01, 5, 0, 0xfa, 0xff, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0x07})
	f.Add(compress(f, []byte("hello, hello, hello, world"), 6))
	f.Add(compress(f, mailText(2000), 9, 700))
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, in []byte) {
	// Arbitrary input: each input bit yields at most 258 octets.
	n, _ := io.Copy(io.Discard, NewReader(bytes.NewReader(in)))
	if n > int64(len(in))*8*maxMatch {
		t.Fatalf("%d octets from %d bytes", n, len(in))
	}

	// Round trip.
	level, at := -2, 0
	if len(in) > 0 {
		level = int(in[0])%12 - 2 // -2 (HuffmanOnly) .. 9
	}
	if len(in) > 1 {
		at = int(in[1]) * len(in) / 256
	}
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(in[:at])
	w.Flush()
	w.Write(in[at:])
	w.Close()
	got, err := io.ReadAll(NewReader(&buf))
	if err != nil {
		t.Fatalf("level %d: %v", level, err)
	}
	if !bytes.Equal(got, in) {
		t.Fatalf("level %d: round trip differs at %d", level, firstDiff(got, in))
	}
}
