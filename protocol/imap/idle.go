package imap

import (
	"errors"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Idle runs IDLE (RFC 2177) until DONE closes stop. It registers with store.Watch first,
// then synchronises once (so that changes made just before IDLE are not held back), then
// again on every wake-up: in-process commits and commits of other processes on the same
// data directory arrive the same way. An IDLE that lasts longer than IdleTimeout ends the
// session with BYE (RFC 3501 §5.4).
func (s *session) Idle(w *updateWriter, stop <-chan struct{}) error {
	if err := s.lock(); err != nil {
		s.byeIfShuttingDown()
		return nil
	}
	s.idling = true
	defer func() {
		s.mu.Lock()
		s.idling = false
		s.mu.Unlock()
	}()
	var wake <-chan struct{}
	var acctID int64
	if s.acct != nil {
		acctID = s.acct.ID
		ch, cancel := s.st.Watch(acctID)
		defer cancel()
		wake = ch
	}
	err := s.idleSync(w, 0)
	s.mu.Unlock()
	if err != nil {
		return err
	}

	timeout := time.NewTimer(s.srv.opts.IdleTimeout)
	defer timeout.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-s.shutdownCh:
			s.bye(s.byeText)
			return nil
		case <-timeout.C:
			s.log.Info("IDLE timed out")
			s.bye("IDLE timed out")
			return nil
		case <-wake:
			// Read after the wake-up, the count covers the change that woke us: the
			// sessions woken with us share its reads.
			asOf := s.st.Notified(acctID)
			if err := s.lock(); err != nil {
				s.byeIfShuttingDown()
				return nil
			}
			err := s.idleSync(w, asOf)
			s.mu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}

// byeIfShuttingDown says BYE if the server is shutting down.
func (s *session) byeIfShuttingDown() {
	select {
	case <-s.shutdownCh:
		s.bye(s.byeText)
	default:
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
// says DONE. DONE is read by another goroutine from the session's reader, so what the
// client sends after it stays there for the next command.
func handleIdle(s *session, cmd *command) error {
	if err := s.out.continuation("idling"); err != nil {
		return err
	}
	type lineResult struct {
		line string
		err  error
	}
	stop := make(chan struct{})
	done := make(chan lineResult, 1)
	s.mu.Lock()
	if !s.closing {
		s.conn.SetReadDeadline(time.Time{}) // IdleTimeout ends an IDLE (Idle)
	}
	s.mu.Unlock()
	s.readingDone = true
	go func() {
		line, err := s.readLine()
		done <- lineResult{line, err}
		close(stop)
	}()
	err := s.Idle(&updateWriter{w: s.out, flush: true}, stop)
	r := <-done // after a BYE the connection is closed, and the read ends
	s.readingDone = false
	switch {
	case s.ended:
		return nil
	case r.err != nil:
		var ie *imap.Error
		if errors.As(r.err, &ie) {
			return ie
		}
		return r.err
	case err != nil:
		return err
	case !strings.EqualFold(r.line, "DONE"):
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Expected DONE to end IDLE"}
	}
	s.ok("", "IDLE terminated")
	return nil
}
