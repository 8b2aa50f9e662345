package accept

import "net"

// TCPConn is the TCP connection beneath c, found through the wrappers that expose what
// they wrap with a NetConn method (*tls.Conn, the metrics' and connection limits'
// wrappers, traces), or nil when there is none (a pipe, a listener of
// another kind). Its socket options are the session's: TCP_QUICKACK, for one.
func TCPConn(c net.Conn) *net.TCPConn { return beneath[*net.TCPConn](c) }

// beneath is the connection of type T that c is or wraps (through NetConn methods), or T's
// zero value.
func beneath[T net.Conn](c net.Conn) T {
	var none T
	for range 16 { // wrappers nest a few deep at most; never loop on a bad one
		if v, ok := c.(T); ok {
			return v
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return none
		}
		c = w.NetConn()
	}
	return none
}
