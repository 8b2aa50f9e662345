package imap

import (
	"net"
	"syscall"

	"github.com/letterbox-mail/letterbox/internal/accept"
)

// quickAcker acknowledges at once what has arrived on a TCP connection (TCP_QUICKACK, see
// quickack_linux.go), instead of leaving the kernel to delay the ACK in the hope of sending
// it with a reply.
//
// The server asks for it before it waits for the rest of a command it has begun to read,
// for then no reply is coming to carry that ACK. A client whose socket has Nagle's
// algorithm on, as sockets come (Python's imaplib), writes a synchronizing literal and the
// CRLF that ends its command in two writes, and holds the CRLF back until the literal is
// acknowledged: with a delayed ACK that is 40 ms on every APPEND (RFC 3501 §7.5, the
// client's side of "+"; RFC 1122 §4.2.3.2 allows the delay).
type quickAcker struct {
	rc syscall.RawConn // nil: not TCP (or not reachable), and nothing to do
}

// newQuickAcker finds the TCP connection beneath c (accept.TCPConn).
func newQuickAcker(c net.Conn) quickAcker {
	if tc := accept.TCPConn(c); tc != nil {
		if rc, err := tc.SyscallConn(); err == nil {
			return quickAcker{rc: rc}
		}
	}
	return quickAcker{}
}

// now sends the ACK of what has been received, if one is pending. TCP_QUICKACK is not
// sticky, so it is set each time. A failure changes nothing but the timing, and is ignored.
func (q quickAcker) now() {
	if q.rc != nil {
		q.rc.Control(setQuickAck)
	}
}
