package imap

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// readAheadLimit bounds what is read ahead and not yet parsed.
const readAheadLimit = 1 << 20

// readAhead goes on reading the client's input while the session writes a large response
// (RFC 3501 §5.5: a client may send the next commands without waiting). A client that
// pipelines commands and reads the answers only once it has sent them would otherwise wedge
// both sides, each waiting for the other to read: the server blocked in a write, the client
// in its own. The session's goroutine starts it when a response fills the write buffer in
// the middle of a command (deadlineWriter), and stops it before the next command is read;
// what it read waits in pending, which connReader hands out first. A session holds one
// only from the first start to the next command it reads with nothing left pending (a
// nil *readAhead is one that never ran: its methods but start work on it).
//
// Commands that read the connection themselves (APPEND's literal, AUTHENTICATE's
// responses, IDLE's DONE, STARTTLS's handshake) never start it.
type readAhead struct {
	mu       sync.Mutex
	cond     sync.Cond
	pending  []byte
	err      error // the read error that ended the goroutine, for connReader
	running  bool
	stopping bool
}

func newReadAhead() *readAhead {
	ra := &readAhead{}
	ra.cond.L = &ra.mu
	return ra
}

// start reads c on a goroutine of its own, unless one is running or a read failed.
func (ra *readAhead) start(c net.Conn) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.running || ra.err != nil {
		return
	}
	ra.running = true
	go ra.loop(c)
}

func (ra *readAhead) loop(c net.Conn) {
	buf := make([]byte, 4<<10)
	for {
		n, err := c.Read(buf)
		ra.mu.Lock()
		ra.pending = append(ra.pending, buf[:n]...)
		for err == nil && len(ra.pending) >= readAheadLimit && !ra.stopping {
			ra.cond.Wait()
		}
		if err != nil || ra.stopping {
			if err != nil && !(ra.stopping && errors.Is(err, os.ErrDeadlineExceeded)) {
				ra.err = err
			}
			ra.running = false
			ra.cond.Broadcast()
			ra.mu.Unlock()
			return
		}
		ra.cond.Broadcast()
		ra.mu.Unlock()
	}
}

// stop ends the goroutine, interrupting its read, and waits for it; what it read stays
// pending. The caller sets the read deadline afresh afterwards.
func (ra *readAhead) stop(c net.Conn) {
	if ra == nil {
		return
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if !ra.running {
		return
	}
	ra.stopping = true
	ra.cond.Broadcast()
	c.SetReadDeadline(time.Now())
	for ra.running {
		ra.cond.Wait()
	}
	ra.stopping = false
}

// unread is what was read ahead and not yet handed out, after stop.
func (ra *readAhead) unread() []byte {
	if ra == nil {
		return nil
	}
	return ra.pending
}

// buffered says whether anything read ahead waits to be parsed.
func (ra *readAhead) buffered() bool {
	if ra == nil {
		return false
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	return len(ra.pending) > 0 || ra.err != nil
}

// read hands out what was read ahead, or the error that ended the reading, waiting for the
// goroutine if it runs; handled is false when there is nothing and no goroutine: then the
// caller reads the connection itself.
func (ra *readAhead) read(p []byte) (n int, err error, handled bool) {
	if ra == nil {
		return 0, nil, false
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for {
		switch {
		case len(ra.pending) > 0:
			n = copy(p, ra.pending)
			ra.pending = ra.pending[n:]
			if len(ra.pending) == 0 {
				ra.pending = nil // the buffer goes with the data
			}
			ra.cond.Broadcast()
			return n, nil, true
		case ra.err != nil:
			err, ra.err = ra.err, nil
			return 0, err, true
		case !ra.running:
			return 0, nil, false
		}
		ra.cond.Wait()
	}
}
