package accept

import (
	"crypto/tls"
	"io"
	"net"
	"time"
)

// Linger is how long CloseAfterGoodbye waits for the client to close its side.
const Linger = 2 * time.Second

// lingerDiscard bounds what CloseAfterGoodbye reads and throws away meanwhile.
const lingerDiscard = 64 << 10

// CloseAfterGoodbye closes a connection after the server's last answer to a client that
// asked to end it: IMAP's LOGOUT (RFC 3501 §6.1.3: BYE, the tagged OK, then the server
// closes) and POP3's QUIT (RFC 1939 §6). Closing a socket while input is still unread, or
// arrives after it, makes the kernel answer with a reset instead of a FIN, and a reset
// throws away whatever the client has not read yet: the tagged OK of LOGOUT, the +OK of a
// QUIT that committed deletions. Input may well come: a command pipelined after the last
// one, a COMPRESS=DEFLATE client's final flush marker. So, as servers have long done
// ("lingering close"): TLS says close_notify, TCP's write side is shut (the client reads
// every answer, then EOF), and what the client still sends is read and discarded until it
// closes, until Linger passes or lingerDiscard octets arrived; then the connection closes.
// Everything the session wrote must have been flushed before.
func CloseAfterGoodbye(c net.Conn) error {
	tc := TCPConn(c)
	if tc == nil {
		return c.Close()
	}
	if tlsConn := beneath[*tls.Conn](c); tlsConn != nil {
		tlsConn.CloseWrite() // close_notify; fails only before the handshake ended
	}
	if err := tc.CloseWrite(); err == nil {
		tc.SetReadDeadline(time.Now().Add(Linger))
		io.CopyN(io.Discard, tc, lingerDiscard)
	}
	return c.Close()
}
