package pop3

import (
	"strconv"
	"strings"
)

// cmdUidl handles UIDL [msg] (RFC 1939 §7). The unique-id comes from the INBOX
// UIDVALIDITY and the message's UID, so it is stable for the life of the message and
// the same as Dovecot gives with the same pop3_uidl_format (internal/maildrop spells it).
func (s *session) cmdUidl(arg string) error {
	f := strings.Fields(arg)
	switch len(f) {
	case 0:
		s.okReply("unique-id listing follows")
		for i, m := range s.drop {
			if !m.deleted {
				s.reply(strconv.Itoa(i+1) + " " + s.srv.uidl.UIDL(m.uid, s.mbox.UIDValidity))
			}
		}
		s.reply(".")
	case 1:
		n, m := s.lookup(f[0])
		if m == nil {
			return nil
		}
		s.okReply(strconv.Itoa(n) + " " + s.srv.uidl.UIDL(m.uid, s.mbox.UIDValidity))
	default:
		s.badReply("-ERR UIDL takes at most one argument")
	}
	return nil
}
