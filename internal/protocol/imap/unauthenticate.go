package imap

import (
	"time"

	"github.com/emersion/go-imap/v2"
)

// handleUnauthenticate does UNAUTHENTICATE (RFC 8437 §3): the session goes back to the
// not-authenticated state as if it had never logged in, on the same connection, TLS and
// COMPRESS staying as they are. Everything of the login goes: the selected mailbox, the
// ENABLEd extensions (ENABLE belongs to the authenticated state, RFC 5161 §3.1), the
// account's session slot, the user in the registry (and so in the trace) and in the log.
// The login ends with a line of its own ("imap unauthenticate", as the logout line, with
// the counters of that login, which start again at zero); the connection's logout line
// comes at its end as always, with the bytes of the whole connection.
func handleUnauthenticate(s *session, cmd *command) error {
	if err := s.lock(); err != nil {
		return err
	}
	user := s.acct.Address
	hadSelection := s.sel != nil
	s.sel = nil
	if s.release != nil {
		s.release()
		s.release = nil
	}
	st := s.stats
	s.stats = sessionStats{start: st.start}
	s.acct = nil
	s.enabled = imap.CapSet{}
	s.unknown = 0
	s.mu.Unlock()

	s.in.utf8Names, s.out.utf8 = false, false
	s.uncountClient()
	if hadSelection {
		s.live.SetMailbox("")
	}
	s.live.SetUser("")
	s.log.Info("imap unauthenticate", "duration", time.Since(st.start).Round(time.Millisecond),
		"commands", st.commands, "fetched", st.fetched, "appended", st.appended, "expunged", st.expunged)
	s.rebuildLog()
	s.log.Debug("back to the not-authenticated state", "was", user)
	return nil
}
