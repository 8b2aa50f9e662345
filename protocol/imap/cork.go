package imap

import (
	"net"
	"sync"
)

// corkSize is how much a corked connection collects before it writes.
const corkSize = 64 << 10

var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, corkSize); return &b }}

// corkConn lets a command that answers with many responses send them in few writes.
// imapserver flushes its buffer after every response, which for FETCH 1:* of a large
// mailbox is a write system call (and, on loopback, a wake-up of the client) per message.
// Between cork and uncork, writes are collected and sent corkSize at a time; uncork sends
// the rest, before imapserver writes the tagged status. Uncorked, writes pass straight
// through and the connection holds no buffer, so an idle session costs nothing more.
//
// It sits right under the guard of every connection (guard.go): on a TLS session above the
// TLS layer, so that the collected writes make full TLS records.
type corkConn struct {
	net.Conn

	mu     sync.Mutex
	buf    *[]byte // while corked
	err    error   // a write that failed fails every later one
	corked bool
}

func newCorkConn(c net.Conn) *corkConn { return &corkConn{Conn: c} }

// NetConn is the connection beneath, for metrics.Transferred.
func (c *corkConn) NetConn() net.Conn { return c.Conn }

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.write(p)
	}
	b := *c.buf
	if len(b)+len(p) > cap(b) {
		if err := c.flush(); err != nil {
			return 0, err
		}
		if len(p) >= cap(b) {
			return c.write(p)
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

func (c *corkConn) write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// flush writes what was collected.
func (c *corkConn) flush() error {
	if len(*c.buf) == 0 {
		return nil
	}
	_, err := c.write(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

func (c *corkConn) cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		c.buf = corkBuffers.Get().(*[]byte)
		c.corked = true
	}
}

// uncork sends what was collected and lets writes through again.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return nil
	}
	var err error
	if c.err == nil {
		err = c.flush()
	}
	*c.buf = (*c.buf)[:0]
	corkBuffers.Put(c.buf)
	c.buf, c.corked = nil, false
	return err
}

// corkConn is the session's corkable connection, or nil.
func (s *session) corkConn() *corkConn {
	if s.guard == nil {
		return nil
	}
	c, _ := s.guard.Conn.(*corkConn)
	return c
}
