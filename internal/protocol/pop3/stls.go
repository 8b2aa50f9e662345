package pop3

import (
	"crypto/tls"
	"fmt"

	"github.com/letterbox-mail/letterbox/internal/trace"
)

// stlsAvailable reports whether STLS can be offered: TLS is configured and this
// connection is not protected yet (RFC 2595 §4).
func (s *session) stlsAvailable() bool {
	return s.srv.opts.TLSConfig != nil && !s.tlsActive
}

// cmdStls handles STLS (RFC 2595 §4). After the handshake the session starts afresh in
// the AUTHORIZATION state: a pending USER and UTF8 are forgotten, and whatever the client
// sent after STLS in plaintext is discarded, never read as commands (the command
// injection of CVE-2011-0411).
func (s *session) cmdStls(arg string) error {
	if !s.noArgs("STLS", arg) {
		return nil
	}
	switch {
	case s.tlsActive:
		s.badReply("-ERR TLS is already active")
		return nil
	case s.srv.opts.TLSConfig == nil:
		s.badReply("-ERR STLS is not available")
		return nil
	}
	s.okReply("Begin TLS negotiation")
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("STLS: %w", err)
	}
	tc := tls.Server(s.conn, s.srv.opts.TLSConfig)
	if err := s.waitClient(tc.Handshake); err != nil {
		s.log.Info("pop3 STLS handshake failed", "err", err)
		return fmt.Errorf("STLS handshake: %w", err)
	}
	s.setConn(trace.Cleartext(tc)) // a new reader: buffered plaintext is dropped
	s.tlsActive = true
	s.user, s.haveUser, s.utf8, s.bad = "", false, false, 0
	s.log.Info("pop3 STLS established", "tls_version", tls.VersionName(tc.ConnectionState().Version))
	return nil
}
