package server

import (
	"fmt"
	"math"
	"net"
	"os"

	"github.com/letterbox-mail/letterbox/pkg/sessions"
	"github.com/letterbox-mail/letterbox/pkg/trace"
)

// Sessions is the registry of live IMAP, POP3 and LMTP sessions (for the JSON API and the
// web inspector).
func (s *Server) Sessions() *sessions.Registry { return s.sessions }

// TraceDir is the directory of the wire traces (trace.dir), "" when tracing is off.
func (s *Server) TraceDir() string { return s.cfg.Trace.Dir }

// prepareTraceDir creates trace.dir if it is set and missing.
func (s *Server) prepareTraceDir() error {
	if s.cfg.Trace.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(s.cfg.Trace.Dir, 0o700); err != nil { // traces hold mail
		return fmt.Errorf("server: trace.dir: %w", err)
	}
	s.log.Info("tracing sessions", "dir", s.cfg.Trace.Dir)
	return nil
}

// traceListener wraps the raw listener of a protocol (beneath any TLS) so that every
// session it accepts is registered in s.sessions and, with trace.dir, traced.
func (s *Server) traceListener(l net.Listener, name string, implicitTLS bool) net.Listener {
	limit := int(min(s.cfg.Trace.BodyLimit, math.MaxInt32))
	if limit == 0 {
		limit = -1 // trace.body_limit 0: no body at all (trace.Options: 0 is the default)
	}
	return trace.NewListener(l, metricsProtocol[name], implicitTLS, trace.Options{
		Dir:        s.cfg.Trace.Dir,
		MaxLiteral: limit,
		Sessions:   s.sessions,
		Logger:     s.log,
	})
}
