package proxyproto

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// encode writes h back as a header of its version (addresses as the header named them).
func encode(h Header) []byte {
	if h.Version == 1 {
		if !h.HasAddresses() {
			return []byte("PROXY UNKNOWN\r\n")
		}
		proto := "TCP6"
		if h.Source.Addr().Is4() {
			proto = "TCP4"
		}
		return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", proto, h.Source.Addr(), h.Destination.Addr(),
			h.Source.Port(), h.Destination.Port())
	}
	if !h.HasAddresses() {
		return v2(0x20, famUnspec, nil)
	}
	fam := byte(famTCP6)
	if h.Source.Addr().Is4() {
		fam = famTCP4
	}
	return v2(0x21, fam, v2Addrs(h.Source, h.Destination))
}

// FuzzReadHeader: whatever the input, ReadHeader neither panics nor reads past a v1
// header's 107 bytes; ErrNoHeader consumes nothing; and a header it accepts, written
// back, reads as the same header.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.7 198.51.100.1 56324 993\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 2001:db8::1 56324 993\r\nA1 LOGIN"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(0x21, famTCP4, v2Addrs(client4, server4)))
	f.Add(v2(0x21, famTCP6, append(v2Addrs(client6, server6), 0x04, 0x00, 0x01, 0x00)))
	f.Add(v2(0x20, famUnspec, nil))
	f.Add([]byte("\x16\x03\x01\x02\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		h, err := ReadHeader(br)
		rest, _ := io.ReadAll(br)
		consumed := len(in) - len(rest)
		if errors.Is(err, ErrNoHeader) {
			if consumed != 0 {
				t.Fatalf("ErrNoHeader after consuming %d bytes", consumed)
			}
			return
		}
		if err != nil {
			return
		}
		if h.Version == 1 && consumed > maxV1 {
			t.Fatalf("a v1 header of %d bytes", consumed)
		}
		if h.Version != 1 && h.Version != 2 {
			t.Fatalf("version %d", h.Version)
		}
		if h.Source.IsValid() != h.Destination.IsValid() {
			t.Fatalf("one address without the other: %+v", h)
		}
		again, err := ReadHeader(bufio.NewReader(bytes.NewReader(encode(h))))
		if err != nil || again != h {
			t.Fatalf("%+v written back as %q reads as %+v, %v", h, encode(h), again, err)
		}
	})
}
