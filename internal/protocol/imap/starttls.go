package imap

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/trace"
)

// tlsHandshakeTimeout bounds a TLS handshake, implicit or after STARTTLS.
const tlsHandshakeTimeout = 30 * time.Second

// handleStartTLS does STARTTLS (RFC 3501 §6.2.1, RFC 9051 §6.2.1) inside the session: the
// tagged OK, the handshake over the same socket, and the session goes on over TLS in the
// not-authenticated state, one session in the registry, the log and the trace (traced
// decrypted from here, trace.Cleartext). Whatever the client pipelined after the command in
// plaintext is dropped (CVE-2011-0411, command injection): the reader is new. The client
// asks for CAPABILITY again; STARTTLS and LOGINDISABLED are gone, AUTH= appears. The
// command exists only while it is announced (command.go): TLS configured, not yet TLS.
func handleStartTLS(s *session, cmd *command) error {
	s.out.status(cmd.tag, imap.StatusResponseTypeOK, "", "Begin TLS negotiation now")
	if err := s.out.flush(); err != nil {
		return err
	}
	s.cmdDone = true
	if n := s.br.Buffered() + len(s.ahead.unread()); n > 0 {
		s.log.Info("dropped what the client pipelined after STARTTLS", "octets", n)
	}
	tc := tls.Server(s.raw, s.srv.opts.TLSConfig) // the configuration reloaded on SIGHUP
	ctx, cancel := context.WithTimeout(s.srv.ctx, tlsHandshakeTimeout)
	defer cancel()
	s.raw.SetReadDeadline(time.Time{})
	if err := tc.HandshakeContext(ctx); err != nil {
		s.log.Info("imap STARTTLS handshake failed", "err", err)
		s.raw.Close()
		s.ended = true
		return nil
	}
	st := tc.ConnectionState()
	s.mu.Lock()
	s.tlsState = &st
	s.setConn(trace.Cleartext(tc))
	s.mu.Unlock()
	s.live.SetTLS()
	s.log.Debug("STARTTLS done", "tls_version", tls.VersionName(st.Version))
	return nil
}
