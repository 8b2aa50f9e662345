package server

import (
	"fmt"
	"io"
	"math"
	"net"
	"os"

	"github.com/letterbox-mail/letterbox/internal/inspector"
	"github.com/letterbox-mail/letterbox/internal/sessions"
	"github.com/letterbox-mail/letterbox/internal/trace"
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

// inspectorSessions shows the session registry on the inspector's sessions page.
type inspectorSessions struct{ r *sessions.Registry }

func (a inspectorSessions) Sessions() []inspector.Session {
	live := a.r.List()
	out := make([]inspector.Session, 0, len(live))
	for _, s := range live {
		is := inspector.Session{Protocol: s.Protocol, ID: s.ID, User: s.User, Remote: s.Remote,
			Started: s.Start, Mailbox: s.Mailbox, State: "connected"}
		switch {
		case s.Mailbox != "":
			is.State = "selected"
		case s.User != "":
			is.State = "authenticated"
			if s.Protocol == "pop3" {
				is.Mailbox = "INBOX" // the maildrop
			}
		}
		if s.TLS {
			is.State += ", TLS"
		}
		out = append(out, is)
	}
	return out
}

// inspectorTraces shows trace.dir on the inspector's transcripts pages.
type inspectorTraces struct{ dir string }

func (a inspectorTraces) Traces() ([]inspector.Trace, error) {
	list, err := trace.List(a.dir)
	if err != nil {
		return nil, err
	}
	out := make([]inspector.Trace, len(list))
	for i, t := range list {
		out[i] = inspector.Trace{Name: t.Name, Protocol: t.Protocol, User: t.User, Started: t.Start, Size: t.Size}
	}
	return out, nil
}

func (a inspectorTraces) OpenTrace(name string) (io.ReadCloser, error) {
	return trace.Open(a.dir, name)
}
