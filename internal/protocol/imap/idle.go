package imap

import (
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
)

// idler is the part of a session in IDLE (RFC 2177) that is not its goroutine. The
// session's own goroutine waits for DONE in a read of the connection; nothing else waits.
// The store calls wake after every commit that touches the account (store.WatchFunc), and
// wake starts a goroutine that synchronises the selected mailbox and writes the updates,
// then ends: an idle session costs one goroutine, blocked in its read, and no channel or
// timer (the read deadline is IDLE's timeout). In-process commits and commits of other
// processes on the same data directory arrive the same way.
type idler struct {
	s      *session
	w      *updateWriter
	acctID int64
	cancel func() // unregisters wake

	// pending: a goroutine is started and has not yet begun its synchronisation; a
	// notify meanwhile needs none of its own (the one started reads after it).
	pending atomic.Bool
	wg      sync.WaitGroup // the goroutines wake started
	err     error          // the first synchronisation that failed; then no more are tried
	// err is written under s.mu by the goroutines and read after wg.Wait.
}

// startIdle registers with the store first, then synchronises once (so that changes made
// just before IDLE are not held back). It returns nil, with BYE said, if the session is
// shutting down.
func (s *session) startIdle(w *updateWriter) (*idler, error) {
	if err := s.lock(); err != nil {
		s.byeIfShuttingDown()
		return nil, nil
	}
	id := &idler{s: s, w: w}
	if s.acct != nil {
		id.acctID = s.acct.ID
		id.cancel = s.st.WatchFunc(id.acctID, id.wake)
	}
	err := s.idleSync(w, 0)
	s.mu.Unlock()
	if err != nil {
		id.stop()
		return nil, err
	}
	return id, nil
}

// wake is called by the store's hub, with its lock held: it only starts a goroutine.
func (id *idler) wake() {
	if !id.pending.CompareAndSwap(false, true) {
		return
	}
	id.wg.Add(1)
	go id.sync()
}

// sync reads and writes the updates of one or more notifies.
func (id *idler) sync() {
	defer id.wg.Done()
	s := id.s
	id.pending.Store(false) // a notify from here on starts another, which waits for mu
	// Read after the wake-up, the count covers the change that woke us: the sessions
	// woken with us share its reads.
	asOf := s.st.Notified(id.acctID)
	if err := s.lock(); err != nil {
		return // closing: the read of DONE ends too (shutdown, Close)
	}
	defer s.mu.Unlock()
	if id.err != nil {
		return
	}
	id.err = s.idleSync(id.w, asOf)
}

// stop unregisters the idler and waits for the synchronisations under way; it returns the
// first that failed.
func (id *idler) stop() error {
	if id.cancel != nil {
		id.cancel() // no wake after it returns, so no wg.Add after it
	}
	id.wg.Wait()
	return id.err
}

// byeIfShuttingDown says BYE if the server is shutting down.
func (s *session) byeIfShuttingDown() {
	s.mu.Lock()
	text := s.byeText // "" unless shutdown said what to say
	s.mu.Unlock()
	if text != "" {
		s.bye(text)
	}
}

// idleSync synchronises the selected mailbox, if any, as of asOf (see sync); s.mu is held.
func (s *session) idleSync(w *updateWriter, asOf uint64) error {
	if s.sel == nil {
		return nil
	}
	return s.sync(s.ctx, w, true, asOf)
}

// --- the commands of this file (command.go has the table)

// IDLE (RFC 2177): "+", then updates as they happen, each sent at once, until the client
// says DONE. DONE is read from the session's reader, so what the client sends after it
// stays there for the next command; the updates are written by the idler's goroutines,
// under s.mu. The session waits for DONE parked (conn.go, park): the handler returns with
// s.idle set, the loop hands the wait to a fresh goroutine, and idleDone ends the command
// on it once the client has sent something. An IDLE that lasts longer than IdleTimeout
// ends the session with BYE (RFC 3501 §5.4): the read's deadline. A shutdown interrupts
// the read (session.shutdown) and the BYE is said in endIdle.
func handleIdle(s *session, cmd *command) error {
	if err := s.out.continuation("idling"); err != nil {
		return err
	}
	id, err := s.startIdle(&updateWriter{w: s.out, flush: true})
	if id == nil {
		return err
	}
	s.mu.Lock()
	if !s.closing {
		s.conn.SetReadDeadline(time.Now().Add(s.srv.opts.IdleTimeout)) // under mu: see shutdown
	}
	s.mu.Unlock()
	// From here until DONE is read, connReader must not flush the writer: the idler's
	// goroutines use it.
	s.readingDone = true
	if !s.hasInput() {
		s.idle, s.idleCmd = id, cmd // the loop parks; idleDone goes on
		return nil
	}
	return s.endIdle(id, nil) // DONE came with IDLE
}

// idleDone ends IDLE once the parked session has seen input (or the wait failed: waitErr):
// it reads DONE and finishes the command. It returns false when the session ends.
func (s *session) idleDone(waitErr error) bool {
	id, cmd := s.idle, s.idleCmd
	s.idle, s.idleCmd = nil, nil
	err := s.endIdle(id, waitErr)
	spec := commands["IDLE"]
	return s.finish(cmd, &spec, err) && s.answered()
}

// endIdle reads DONE (unless waitErr, the wait for it, failed), stops the idler and answers
// DONE, or says BYE.
func (s *session) endIdle(id *idler, waitErr error) error {
	line, rerr := "", waitErr
	if rerr == nil {
		line, rerr = s.readLine()
	}
	s.readingDone = false
	err := id.stop() // after it, no goroutine of the idler writes
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	switch {
	case s.ended:
		return nil
	case rerr != nil && closing:
		s.bye(s.byeText)
		return nil
	case rerr != nil && errors.Is(rerr, os.ErrDeadlineExceeded):
		s.log.Info("IDLE timed out")
		s.bye("IDLE timed out")
		return nil
	case rerr != nil:
		var ie *imap.Error
		if errors.As(rerr, &ie) {
			return ie
		}
		return rerr
	case err != nil:
		return err
	case !strings.EqualFold(line, "DONE"):
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Expected DONE to end IDLE"}
	}
	s.ok("", "IDLE terminated")
	return nil
}
