package server

import (
	"strconv"
	"time"

	"github.com/letterbox-mail/letterbox/internal/protocol/imap"
	"github.com/letterbox-mail/letterbox/internal/protocol/lmtp"
	"github.com/letterbox-mail/letterbox/internal/protocol/pop3"
)

// LMTP limits that are not configuration keys (yet).
const (
	lmtpReadTimeout  = 10 * time.Minute
	lmtpWriteTimeout = 5 * time.Minute
)

func (s *Server) pop3Options() pop3.Options {
	expire := "NEVER"
	if d := s.cfg.POP3.ExpireAfter; d > 0 {
		expire = strconv.Itoa(max(1, int(d/(24*time.Hour)))) // RFC 2449 §6.7 speaks in days
	}
	return pop3.Options{
		Logger:      s.log,
		Auth:        s.auth,
		TLSConfig:   s.tlsConfig,
		Hostname:    s.cfg.Hostname,
		UIDLFormat:  s.cfg.POP3.UIDLFormat,
		MarkSeen:    s.cfg.POP3.MarkSeen,
		DeleteMode:  s.cfg.POP3.Delete,
		Expire:      expire,
		LoginDelay:  s.cfg.POP3.LoginDelay,
		IdleTimeout: s.cfg.POP3.IdleTimeout,
		Metrics:     s.metrics,
	}
}

// checkProtocolOptions rejects settings a protocol would refuse at Serve, so that a bad
// configuration fails at start with a clear message.
func (s *Server) checkProtocolOptions() error {
	if s.cfg.POP3.Addr != "" || s.cfg.POP3S.Addr != "" {
		if err := s.pop3Options().Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) newPOP3() Protocol {
	return pop3.NewServer(s.st, s.pop3Options())
}

func (s *Server) newLMTP() Protocol {
	return lmtp.NewServer(s.st, lmtp.Options{
		Logger:          s.log,
		Hostname:        s.cfg.Hostname,
		MaxMessageBytes: s.cfg.Limits.MessageSize,
		MaxRecipients:   lmtpRecipients(s.cfg.Limits.Recipients),
		ReadTimeout:     lmtpReadTimeout,
		WriteTimeout:    lmtpWriteTimeout,
		Metrics:         s.metrics,
		DetailDelimiter: s.cfg.LMTP.DetailDelimiter,
		DetailToFolder:  s.cfg.LMTP.DetailToFolder,
	})
}

// lmtpRecipients turns limits.recipients (0: no limit) into lmtp.Options.MaxRecipients
// (0: the default, negative: no limit).
func lmtpRecipients(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// Version is the release the servers name (IMAP ID, RFC 2971); cmd/letterbox sets it from
// its build-time version. "" lets internal/protocol/imap take the binary's module version.
var Version string

func (s *Server) newIMAP() Protocol {
	return imap.NewServer(s.st, imap.Options{
		Logger:       s.log,
		Auth:         s.auth,
		TLSConfig:    s.tlsConfig,
		Hostname:     s.cfg.Hostname,
		Version:      Version,
		IdleTimeout:  s.cfg.IMAP.IdleTimeout,
		AppendLimit:  s.cfg.Limits.MessageSize,
		MessageLimit: s.cfg.IMAP.MessageLimit,
		Metrics:      s.metrics,
		Sessions:     s.limiter,
	})
}
