package server

import (
	"github.com/letterbox-mail/letterbox/internal/inspector"
)

// mountInspector mounts the web inspector (internal/inspector) at / on the HTTP mux when
// inspector.enabled is set. It shares the API's token: without one it answers loopback
// clients only.
func (s *Server) mountInspector() error {
	if !s.cfg.Inspector.Enabled {
		return nil
	}
	opts := inspector.Options{
		Store:      s.st,
		Token:      s.cfg.API.Token,
		UIDLFormat: s.cfg.POP3.UIDLFormat,
		DeleteMode: s.cfg.POP3.Delete,
		Sessions:   inspectorSessions{s.sessions},
		Logger:     s.log.With("protocol", "inspector"),
	}
	if s.cfg.Trace.Dir != "" {
		opts.Traces = inspectorTraces{s.cfg.Trace.Dir}
	}
	in, err := inspector.New(opts)
	if err != nil {
		return err
	}
	in.Register(s.mux)
	s.inspector = in
	return nil
}
