package pop3

import (
	"fmt"
	"strconv"

	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// cmdDele handles DELE msg (RFC 1939 §5): the message is only marked; QUIT commits.
func (s *session) cmdDele(arg string) error {
	f, ok := s.args("DELE", arg, 1)
	if !ok {
		return nil
	}
	n, m := s.lookup(f[0])
	if m == nil {
		return nil
	}
	m.deleted = true
	s.okReply("message " + strconv.Itoa(n) + " deleted")
	return nil
}

// cmdRset handles RSET (RFC 1939 §5): every deletion mark is removed. What RETR
// retrieved stays retrieved (RFC 1939 speaks only of deletions).
func (s *session) cmdRset(arg string) error {
	if !s.noArgs("RSET", arg) {
		return nil
	}
	for i := range s.drop {
		s.drop[i].deleted = false
	}
	n, size := s.dropStat()
	s.okReply(fmt.Sprintf("maildrop has %d messages (%d octets)", n, size))
	return nil
}

// cmdQuit handles QUIT. In the AUTHORIZATION state it just ends the session (RFC 1939
// §4). In the TRANSACTION state it enters the UPDATE state (RFC 1939 §6) and commits the
// session's changes in one transaction; +OK comes only after that commit succeeded, and
// if it failed nothing was changed and the client is told so.
func (s *session) cmdQuit(string) error {
	if s.state == stateAuthorization {
		s.okReply("Letterbox POP3 server signing off")
		return errQuit
	}
	s.state = stateUpdate
	deleted, err := s.commit()
	if err != nil {
		s.log.Error("pop3 QUIT could not commit; nothing deleted", "err", err)
		s.errReply("-ERR [SYS/TEMP] could not update the maildrop, nothing was deleted")
		return errQuit
	}
	s.deleted = deleted
	// Release the maildrop before answering, so that a client logging in again right
	// after +OK does not find it still locked.
	s.releaseMaildrop()
	left := len(s.drop) - deleted
	s.okReply(fmt.Sprintf("Letterbox POP3 server signing off (%d messages left)", left))
	return errQuit
}

// commit writes what the session did in one store transaction: \Seen for retrieved
// messages (Options.MarkSeen) and the deletions as Options.DeleteMode says. It returns
// the number of messages deleted.
func (s *session) commit() (int, error) {
	mode := s.srv.opts.DeleteMode
	var seen, deleted []uint32
	for _, m := range s.drop {
		if m.deleted {
			deleted = append(deleted, m.uid)
		}
		// An expunged message needs no flag; a kept one shows IMAP it was read.
		if m.retrieved && s.srv.opts.MarkSeen && !(m.deleted && mode == maildrop.DeleteExpunge) {
			seen = append(seen, m.uid)
		}
	}
	if len(seen) == 0 && len(deleted) == 0 {
		return 0, nil
	}
	c := store.MaildropCommit{Seen: seen, Deleted: deleted}
	switch mode {
	case maildrop.DeleteKeepFlagged:
		c.DeletedFlag = store.FlagDeleted
	case maildrop.DeleteHide:
		c.DeletedFlag = maildrop.HiddenKeyword
	}
	err := s.srv.st.CommitMaildrop(s.ctx, s.mbox.ID, c)
	if err != nil {
		return 0, fmt.Errorf("commit POP3 session: %w", err)
	}
	return len(deleted), nil
}
