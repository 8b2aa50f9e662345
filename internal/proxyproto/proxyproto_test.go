package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// v2 builds a binary header: the signature, verCmd, fam, and body with its length.
func v2(verCmd, fam byte, body []byte) []byte {
	b := append([]byte{}, signatureV2...)
	b = append(b, verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// v2Addrs is the address block of a TCP header from src to dst.
func v2Addrs(src, dst netip.AddrPort) []byte {
	var b []byte
	b = append(b, src.Addr().AsSlice()...)
	b = append(b, dst.Addr().AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

var (
	client4 = netip.MustParseAddrPort("203.0.113.7:56324")
	server4 = netip.MustParseAddrPort("198.51.100.1:993")
	client6 = netip.MustParseAddrPort("[2001:db8::7]:56324")
	server6 = netip.MustParseAddrPort("[2001:db8::1]:993")
)

func TestReadHeaderValid(t *testing.T) {
	tlvs := []byte{0x04, 0x00, 0x03, 'a', 'b', 'c'} // PP2_TYPE_NOOP with 3 bytes
	for _, tc := range []struct {
		name     string
		in       []byte
		version  int
		src, dst netip.AddrPort
	}{
		{"v1 TCP4", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 56324 993\r\n"), 1, client4, server4},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 56324 993\r\n"), 1, client6, server6},
		{"v1 TCP6 v4-mapped", []byte("PROXY TCP6 ::ffff:203.0.113.7 ::1 1 2\r\n"), 1,
			netip.MustParseAddrPort("[::ffff:203.0.113.7]:1"), netip.MustParseAddrPort("[::1]:2")},
		{"v1 ports 0 and 65535", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 0 65535\r\n"), 1,
			netip.MustParseAddrPort("203.0.113.7:0"), netip.MustParseAddrPort("198.51.100.1:65535")},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), 1, netip.AddrPort{}, netip.AddrPort{}},
		{"v1 UNKNOWN with addresses", []byte("PROXY UNKNOWN ffff:f...f:ffff 56324 993\r\n"), 1, netip.AddrPort{}, netip.AddrPort{}},
		{"v1 longest", []byte("PROXY UNKNOWN " + strings.Repeat("x", maxV1-len("PROXY UNKNOWN ")-2) + "\r\n"), 1, netip.AddrPort{}, netip.AddrPort{}},
		{"v2 TCP4", v2(0x21, famTCP4, v2Addrs(client4, server4)), 2, client4, server4},
		{"v2 TCP6", v2(0x21, famTCP6, v2Addrs(client6, server6)), 2, client6, server6},
		{"v2 TCP4 with TLVs", v2(0x21, famTCP4, append(v2Addrs(client4, server4), tlvs...)), 2, client4, server4},
		{"v2 LOCAL", v2(0x20, famUnspec, nil), 2, netip.AddrPort{}, netip.AddrPort{}},
		{"v2 LOCAL ignores its family and addresses", v2(0x20, famTCP4, v2Addrs(client4, server4)), 2, netip.AddrPort{}, netip.AddrPort{}},
		{"v2 PROXY UNSPEC", v2(0x21, famUnspec, tlvs), 2, netip.AddrPort{}, netip.AddrPort{}},
		{"v2 PROXY AF_UNIX", v2(0x21, famUnixStream, make([]byte, lenUnix)), 2, netip.AddrPort{}, netip.AddrPort{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const after = "\x16\x03\x01 the client's first bytes"
			br := bufio.NewReader(bytes.NewReader(append(append([]byte{}, tc.in...), after...)))
			h, err := ReadHeader(br)
			if err != nil {
				t.Fatalf("ReadHeader(%q): %v", tc.in, err)
			}
			if h.Version != tc.version || h.Source != tc.src || h.Destination != tc.dst {
				t.Errorf("ReadHeader(%q) = %+v, want version %d, %v -> %v", tc.in, h, tc.version, tc.src, tc.dst)
			}
			if h.HasAddresses() != tc.src.IsValid() {
				t.Errorf("HasAddresses = %v", h.HasAddresses())
			}
			// Exactly the header was consumed.
			rest, _ := io.ReadAll(br)
			if string(rest) != after {
				t.Errorf("after the header: %q, want %q", rest, after)
			}
		})
	}
}

func TestReadHeaderInvalid(t *testing.T) {
	addrs := v2Addrs(client4, server4)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"v1 no CRLF within 107 bytes", []byte("PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n")},
		{"v1 bare LF", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 56324 993\n")},
		{"v1 cut short", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 56324")},
		{"v1 unknown protocol", []byte("PROXY UDP4 203.0.113.7 198.51.100.1 56324 993\r\n")},
		{"v1 lower case", []byte("PROXY tcp4 203.0.113.7 198.51.100.1 56324 993\r\n")},
		{"v1 UNKNOWN glued", []byte("PROXY UNKNOWNX\r\n")},
		{"v1 two spaces", []byte("PROXY TCP4  203.0.113.7 198.51.100.1 56324 993\r\n")},
		{"v1 trailing space", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 56324 993 \r\n")},
		{"v1 missing port", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 56324\r\n")},
		{"v1 IPv6 as TCP4", []byte("PROXY TCP4 2001:db8::7 2001:db8::1 56324 993\r\n")},
		{"v1 IPv4 as TCP6", []byte("PROXY TCP6 203.0.113.7 198.51.100.1 56324 993\r\n")},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 2001:db8::1 56324 993\r\n")},
		{"v1 leading-zero address", []byte("PROXY TCP4 203.0.113.07 198.51.100.1 56324 993\r\n")},
		{"v1 port too large", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 65536 993\r\n")},
		{"v1 port leading zero", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 056324 993\r\n")},
		{"v1 port sign", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 +5632 993\r\n")},
		{"v1 empty", []byte("PROXY \r\n")},
		{"v2 version 1", v2(0x11, famTCP4, addrs)},
		{"v2 version 3", v2(0x31, famTCP4, addrs)},
		{"v2 unknown command", v2(0x22, famTCP4, addrs)},
		{"v2 unknown family", v2(0x21, 0x41, addrs)},
		{"v2 unknown transport", v2(0x21, 0x13, addrs)},
		{"v2 UDP", v2(0x21, famUDP4, addrs)},
		{"v2 TCP4 too short", v2(0x21, famTCP4, addrs[:11])},
		{"v2 TCP6 with an IPv4 block", v2(0x21, famTCP6, addrs)},
		{"v2 AF_UNIX too short", v2(0x21, famUnixStream, make([]byte, 100))},
		{"v2 length beyond the stream", v2(0x21, famTCP4, addrs)[:16+8]},
		{"v2 TLVs beyond the stream", append(v2(0x21, famTCP4, append(addrs, 1, 2, 3, 4)), 0)[:16+14]},
		{"v2 cut in the fixed part", signatureV2[:12:12]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(bufio.NewReader(bytes.NewReader(tc.in)))
			if err == nil || errors.Is(err, ErrNoHeader) {
				t.Errorf("ReadHeader(%q) = %+v, %v; want a refusal", tc.in, h, err)
			}
		})
	}
}

// TestReadHeaderNone: a stream that does not begin with a signature is not a header, and
// nothing of it is consumed.
func TestReadHeaderNone(t *testing.T) {
	for _, in := range []string{
		"\x16\x03\x01\x02\x00", // a TLS ClientHello
		"a1 LOGIN user pass\r\n",
		"PASS secret\r\n",
		"PROXYX TCP4\r\n",
		"\r\n",
		"\r\n\r\n\x00\r\nQUIT",     // the v2 signature cut short
		"\r\n\r\n\x00\r\nQUIt\n12", // not quite it
	} {
		br := bufio.NewReader(strings.NewReader(in))
		if _, err := ReadHeader(br); !errors.Is(err, ErrNoHeader) {
			t.Errorf("ReadHeader(%q): %v, want ErrNoHeader", in, err)
		}
		if rest, _ := io.ReadAll(br); string(rest) != in {
			t.Errorf("ReadHeader(%q) consumed bytes: %q left", in, rest)
		}
	}
	if _, err := ReadHeader(bufio.NewReader(strings.NewReader(""))); err == nil || errors.Is(err, ErrNoHeader) {
		t.Errorf("ReadHeader of an empty stream: %v, want a read error", err)
	}
}
