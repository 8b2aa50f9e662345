package pop3

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/letterbox-mail/letterbox/internal/maildrop"
)

// message is one message of the maildrop snapshot; its number is its index + 1.
type message struct {
	uid       uint32
	size      int64
	deleted   bool // marked by DELE, committed by QUIT
	retrieved bool // sent whole by RETR: \Seen at QUIT when MarkSeen
}

// loadMaildrop takes the snapshot of INBOX the session works on (RFC 1939 §4: the
// maildrop as it stood at login). Messages that a committed POP3 DELE only hid (the
// "hide" and "keep-flagged" delete modes) are left out.
func (s *session) loadMaildrop() error {
	mbox, err := s.srv.st.MailboxByName(s.ctx, s.acct.ID, "INBOX")
	if err != nil {
		return fmt.Errorf("find INBOX: %w", err)
	}
	msgs, err := s.srv.st.Messages(s.ctx, mbox.ID)
	if err != nil {
		return fmt.Errorf("list INBOX: %w", err)
	}
	drop := make([]message, 0, len(msgs))
	for _, m := range msgs {
		if !maildrop.InMaildrop(m, s.srv.opts.DeleteMode) {
			continue
		}
		drop = append(drop, message{uid: m.UID, size: m.Size})
	}
	s.mbox, s.drop = mbox, drop
	return nil
}

// dropStat counts the messages not marked deleted and their octets (RFC 1939 §5 STAT).
func (s *session) dropStat() (n int, size int64) {
	for _, m := range s.drop {
		if !m.deleted {
			n++
			size += m.size
		}
	}
	return n, size
}

// parseNumber parses a non-negative decimal argument: ASCII digits only, no sign.
// Values beyond the range of int64 saturate, which is what TOP's line count wants and
// what fails any message-number range check.
func parseNumber(v string) (int64, bool) {
	if v == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63-1-9)/10 {
			n = 1<<63 - 1
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// args splits arg into exactly want space-separated words, or answers -ERR.
func (s *session) args(name, arg string, want int) ([]string, bool) {
	f := strings.Fields(arg)
	if len(f) != want {
		s.badReply(fmt.Sprintf("-ERR %s needs %d argument(s)", name, want))
		return nil, false
	}
	return f, true
}

// lookup looks up a message-number argument (RFC 1939 §5: "may NOT refer to a message
// marked as deleted"); otherwise it answers -ERR and returns nil.
func (s *session) lookup(v string) (int, *message) {
	n, ok := parseNumber(v)
	if !ok {
		s.badReply("-ERR invalid message number")
		return 0, nil
	}
	if n < 1 || n > int64(len(s.drop)) {
		s.badReply("-ERR no such message")
		return 0, nil
	}
	m := &s.drop[n-1]
	if m.deleted {
		s.badReply(fmt.Sprintf("-ERR message %d already deleted", n))
		return 0, nil
	}
	return int(n), m
}

// cmdStat handles STAT (RFC 1939 §5).
func (s *session) cmdStat(arg string) error {
	if !s.noArgs("STAT", arg) {
		return nil
	}
	n, size := s.dropStat()
	s.okReply(strconv.Itoa(n) + " " + strconv.FormatInt(size, 10))
	return nil
}

// cmdList handles LIST [msg] (RFC 1939 §5). Sizes are the exact octets RETR sends
// before dot-stuffing.
func (s *session) cmdList(arg string) error {
	f := strings.Fields(arg)
	switch len(f) {
	case 0:
		n, size := s.dropStat()
		s.okReply(fmt.Sprintf("%d messages (%d octets)", n, size))
		for i, m := range s.drop {
			if !m.deleted {
				s.reply(strconv.Itoa(i+1) + " " + strconv.FormatInt(m.size, 10))
			}
		}
		s.reply(".")
	case 1:
		n, m := s.lookup(f[0])
		if m == nil {
			return nil
		}
		s.okReply(strconv.Itoa(n) + " " + strconv.FormatInt(m.size, 10))
	default:
		s.badReply("-ERR LIST takes at most one argument")
	}
	return nil
}

// cmdNoop handles NOOP (RFC 1939 §5).
func (s *session) cmdNoop(arg string) error {
	if s.noArgs("NOOP", arg) {
		s.okReply("")
	}
	return nil
}
