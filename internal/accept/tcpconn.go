package accept

import "net"

// TCPConn is the TCP connection beneath c, found through the wrappers that expose what
// they wrap with a NetConn method (*tls.Conn, the metrics' and connection limits'
// wrappers, traces), or nil when there is none (a pipe, a listener of
// another kind). Its socket options are the session's: TCP_QUICKACK, for one.
func TCPConn(c net.Conn) *net.TCPConn {
	for range 16 { // wrappers nest a few deep at most; never loop on a bad one
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
