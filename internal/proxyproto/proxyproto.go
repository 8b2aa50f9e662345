// Package proxyproto reads the HAProxy PROXY protocol header (versions 1 and 2) that a
// proxy in front of Letterbox sends at the start of each connection, so that Letterbox
// knows the client's real address, and wraps listeners so that every connection reports
// that address as its RemoteAddr.
//
// The specification is HAProxy's "The PROXY protocol, Versions 1 & 2"
// (https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt); section numbers below
// are that document's.
//
// Implementation notes:
//
//   - The parser is strict: anything the specification does not allow is refused, and a
//     refused header ends the connection (§2.1: "the receiver must ... close the
//     connection"; §2.2: invalid values "must be rejected"). The one tolerance the
//     specification asks for is kept: v1 UNKNOWN, v2 LOCAL, v2 UNSPEC and v2 AF_UNIX
//     mean "use the connection's own addresses" (§2.1, §2.2).
//   - Only the header is consumed: the bytes after it (a TLS ClientHello, a client's
//     first command) stay buffered in the connection and are read next, unchanged.
//   - A v1 header is at most 107 bytes including its CRLF (§2.1). A v2 header's length
//     field can announce up to 64 KiB; only the address block (at most 216 bytes) is
//     kept, and the TLVs after it are read and discarded unparsed (§2.2.1 and on: nothing
//     in them is needed here).
//   - The Listener accepts a header only from Options.Trusted; the header is read in a
//     goroutine of its own under a deadline, so a slow or silent proxy never holds up the
//     accept loop. From anybody else, a connection whose first bytes are a header is
//     closed (see Listener for what that check can and cannot promise).
package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// signatureV2 opens every v2 header (§2.2): it cannot begin any text protocol's line.
var signatureV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")

// prefixV1 opens every v1 header (§2.1).
var prefixV1 = []byte("PROXY ")

// maxV1 is the longest v1 header, CRLF included (§2.1: "107 characters").
const maxV1 = 107

// ErrNoHeader is ReadHeader's answer for a stream that does not start with a header; it has
// consumed nothing.
var ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")

// Header is a parsed PROXY protocol header.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Source is the client's address and port, Destination the address and port it
	// connected to on the proxy. Both are invalid (the zero AddrPort) when the header does
	// not name them: v1 UNKNOWN, v2 LOCAL (a proxy's own health check), v2 UNSPEC or
	// AF_UNIX. The connection's own addresses apply then.
	Source, Destination netip.AddrPort
}

// HasAddresses reports whether the header names the client's address.
func (h Header) HasAddresses() bool { return h.Source.IsValid() }

// ReadHeader reads one PROXY protocol header from r, consuming exactly its bytes. A stream
// that does not start with a header's signature gets ErrNoHeader with nothing consumed; a
// stream that starts with one but is not a valid header gets another error (the header
// is then partly consumed: the connection must be closed).
func ReadHeader(r *bufio.Reader) (Header, error) {
	first, err := r.Peek(1)
	if err != nil {
		return Header{}, fmt.Errorf("proxyproto: reading the header: %w", err)
	}
	switch first[0] {
	case prefixV1[0]:
		if p, err := r.Peek(len(prefixV1)); err != nil || !bytes.Equal(p, prefixV1) {
			if err != nil && !errors.Is(err, io.EOF) {
				return Header{}, fmt.Errorf("proxyproto: reading the header: %w", err)
			}
			return Header{}, ErrNoHeader
		}
		return readV1(r)
	case signatureV2[0]:
		if p, err := r.Peek(len(signatureV2)); err != nil || !bytes.Equal(p, signatureV2) {
			if err != nil && !errors.Is(err, io.EOF) {
				return Header{}, fmt.Errorf("proxyproto: reading the header: %w", err)
			}
			return Header{}, ErrNoHeader
		}
		return readV2(r)
	}
	return Header{}, ErrNoHeader
}

// readV1 reads a text header (§2.1):
//
//	PROXY TCP4 192.0.2.1 198.51.100.1 56324 993\r\n
//	PROXY TCP6 2001:db8::1 2001:db8::2 56324 993\r\n
//	PROXY UNKNOWN[ anything]\r\n
func readV1(r *bufio.Reader) (Header, error) {
	line := make([]byte, 0, maxV1)
	for {
		b, err := r.ReadByte()
		if err != nil {
			return Header{}, fmt.Errorf("proxyproto: v1 header: %w", unexpectedEOF(err))
		}
		line = append(line, b)
		if b == '\n' {
			break
		}
		if len(line) == maxV1 {
			return Header{}, errors.New("proxyproto: v1 header: no CRLF within 107 bytes")
		}
	}
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return Header{}, errors.New("proxyproto: v1 header: a bare LF ends the line, want CRLF")
	}
	body = body[len(prefixV1):]
	if rest, ok := bytes.CutPrefix(body, []byte("UNKNOWN")); ok && (len(rest) == 0 || rest[0] == ' ') {
		// §2.1: "the receiver must ignore anything presented before the CRLF".
		return Header{Version: 1}, nil
	}
	fields := bytes.Split(body, []byte(" ")) // exactly one space between fields (§2.1)
	if len(fields) != 5 {
		return Header{}, fmt.Errorf("proxyproto: v1 header: %d fields after PROXY, want 5", len(fields))
	}
	var want4 bool
	switch string(fields[0]) {
	case "TCP4":
		want4 = true
	case "TCP6":
	default:
		return Header{}, fmt.Errorf("proxyproto: v1 header: protocol %q, want TCP4, TCP6 or UNKNOWN", fields[0])
	}
	var addrs [2]netip.Addr
	for i := range addrs {
		a, err := netip.ParseAddr(string(fields[1+i]))
		if err != nil || a.Zone() != "" || a.Is4() != want4 {
			return Header{}, fmt.Errorf("proxyproto: v1 header: %q is not an %s address", fields[1+i], fields[0])
		}
		addrs[i] = a
	}
	var ports [2]uint16
	for i := range ports {
		p, err := parsePort(fields[3+i])
		if err != nil {
			return Header{}, err
		}
		ports[i] = p
	}
	return Header{Version: 1,
		Source:      netip.AddrPortFrom(addrs[0], ports[0]),
		Destination: netip.AddrPortFrom(addrs[1], ports[1]),
	}, nil
}

// parsePort reads a v1 port: decimal 0 to 65535 without leading zeros (§2.1).
func parsePort(s []byte) (uint16, error) {
	if len(s) == 0 || len(s) > 5 || (s[0] == '0' && len(s) > 1) {
		return 0, fmt.Errorf("proxyproto: v1 header: %q is not a port", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("proxyproto: v1 header: %q is not a port", s)
		}
	}
	n, err := strconv.ParseUint(string(s), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("proxyproto: v1 header: %q is not a port", s)
	}
	return uint16(n), nil
}

// The v2 command (low nibble of the 13th byte) and families (the 14th byte), §2.2.
const (
	cmdLocal = 0x0
	cmdProxy = 0x1

	famUnspec     = 0x00
	famTCP4       = 0x11
	famUDP4       = 0x12
	famTCP6       = 0x21
	famUDP6       = 0x22
	famUnixStream = 0x31
	famUnixDgram  = 0x32

	lenTCP4 = 12  // two IPv4 addresses and two ports
	lenTCP6 = 36  // two IPv6 addresses and two ports
	lenUnix = 216 // two 108-byte paths
)

// readV2 reads a binary header (§2.2): the signature, version and command, family,
// length, then length bytes of addresses and TLVs.
func readV2(r *bufio.Reader) (Header, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return Header{}, fmt.Errorf("proxyproto: v2 header: %w", unexpectedEOF(err))
	}
	verCmd, fam := fixed[12], fixed[13]
	length := int(binary.BigEndian.Uint16(fixed[14:16]))
	if verCmd>>4 != 2 {
		return Header{}, fmt.Errorf("proxyproto: v2 header: version %d, want 2", verCmd>>4)
	}
	cmd := verCmd & 0x0f
	if cmd != cmdLocal && cmd != cmdProxy {
		return Header{}, fmt.Errorf("proxyproto: v2 header: unknown command %#x", cmd)
	}
	var need int
	switch fam {
	case famUnspec:
	case famTCP4:
		need = lenTCP4
	case famTCP6:
		need = lenTCP6
	case famUnixStream:
		need = lenUnix
	case famUDP4, famUDP6, famUnixDgram:
		if cmd == cmdProxy {
			return Header{}, fmt.Errorf("proxyproto: v2 header: a datagram family (%#x) on a stream", fam)
		}
	default:
		return Header{}, fmt.Errorf("proxyproto: v2 header: unknown family %#x", fam)
	}
	if cmd == cmdLocal {
		// §2.2: LOCAL "must" be accepted, its family and address block ignored.
		need = 0
	}
	if length < need {
		return Header{}, fmt.Errorf("proxyproto: v2 header: length %d, the family needs %d", length, need)
	}
	block := make([]byte, need)
	if _, err := io.ReadFull(r, block); err != nil {
		return Header{}, fmt.Errorf("proxyproto: v2 header: %w", unexpectedEOF(err))
	}
	if _, err := r.Discard(length - need); err != nil { // TLVs, unparsed
		return Header{}, fmt.Errorf("proxyproto: v2 header: %w", unexpectedEOF(err))
	}
	h := Header{Version: 2}
	if cmd == cmdLocal {
		return h, nil
	}
	switch fam {
	case famTCP4:
		src, dst := netip.AddrFrom4([4]byte(block[0:4])), netip.AddrFrom4([4]byte(block[4:8]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(block[8:10]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(block[10:12]))
	case famTCP6:
		src, dst := netip.AddrFrom16([16]byte(block[0:16])), netip.AddrFrom16([16]byte(block[16:32]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(block[32:34]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(block[34:36]))
	}
	// UNSPEC and AF_UNIX name no IP client: the connection's own addresses stand.
	return h, nil
}

// unexpectedEOF turns a stream that ends inside a header into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
