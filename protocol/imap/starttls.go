package imap

import (
	"context"
	"crypto/tls"
	"io"
	"time"

	"github.com/letterbox-mail/letterbox/pkg/sessions"
	"github.com/letterbox-mail/letterbox/pkg/trace"
)

// tlsHandshakeTimeout bounds a TLS handshake, implicit or after STARTTLS.
const tlsHandshakeTimeout = 30 * time.Second

// TLS sessions are served by their own imapserver instance (Server.tlsSrv: no TLSConfig,
// so it offers no STARTTLS; InsecureAuth, since the session is protected), over a guard
// like every other connection. imapserver would take a connection for TLS only if it were
// a *tls.Conn itself, which a guard in front of it cannot be; and a STARTTLS done by
// imapserver would leave the guard beneath the TLS layer, seeing ciphertext. So the
// handshake is done here, for implicit TLS before the greeting, and for STARTTLS by the
// guard of the plaintext connection.

// handshakeTLS finishes the handshake of an implicit-TLS connection (RFC 8314 §3.2: TLS
// first, then the greeting) and hands it to the TLS server.
func (s *Server) handshakeTLS(tc *tls.Conn) {
	ctx, cancel := context.WithTimeout(s.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.log.Info("imap TLS handshake failed", "remote", tc.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	s.serveTLS(tc, nil)
}

// serveTLS hands a TLS connection, handshake done, to the TLS server. origin is set for a
// session that began in plaintext and goes on after STARTTLS: imapserver's greeting is not
// sent then, and the session keeps its start.
func (s *Server) serveTLS(tc *tls.Conn, origin *sessionOrigin) {
	// trace.Cleartext: a traced session is traced decrypted from here. The cork goes above
	// TLS, so that its collected writes make full TLS records.
	g := newGuardConn(s, newCorkConn(trace.Cleartext(tc)), nil, true)
	g.origin = origin
	g.skipGreeting = origin != nil
	if !s.tlsLn.push(g) {
		g.Close()
	}
}

// startTLS does STARTTLS (RFC 9051 §6.2.1, RFC 3501 §6.2.1) for the guard of a plaintext
// connection, before login: imapserver is waiting for the command after it, so everything
// before it has been answered. What the client sent after the command was dropped by the
// guard (the command injection of CVE-2011-0411). After the handshake the connection is
// served by a new imapserver connection of the TLS server, in the not-authenticated state,
// and this one ends (io.EOF) without closing the socket. The client asks for CAPABILITY
// again (RFC 9051 §6.2.1): STARTTLS and LOGINDISABLED are gone, AUTH= appears.
func (g *guardConn) startTLS(tag string) error {
	s := g.srv
	if _, err := io.WriteString(g.Conn, tag+" OK Begin TLS negotiation now\r\n"); err != nil {
		return err
	}
	tc := tls.Server(g.raw, s.opts.TLSConfig) // the configuration reloaded on SIGHUP
	ctx, cancel := context.WithTimeout(s.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.log.Info("imap STARTTLS handshake failed", "remote", g.raw.RemoteAddr().String(), "err", err)
		g.Conn.Close()
		return io.EOF
	}
	origin := &sessionOrigin{start: time.Now()}
	if sess := g.sess; sess != nil {
		sess.mu.Lock()
		origin.start, origin.commands = sess.stats.start, sess.stats.commands
		sess.mu.Unlock()
	}
	sessions.Of(g.raw).SetTLS()
	s.log.Debug("STARTTLS done", "remote", g.raw.RemoteAddr().String(),
		"tls_version", tls.VersionName(tc.ConnectionState().Version))
	g.handedOff.Store(true)
	s.serveTLS(tc, origin)
	return io.EOF
}
