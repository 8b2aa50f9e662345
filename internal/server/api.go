package server

import (
	"github.com/letterbox-mail/letterbox/internal/api"
)

// mountAPI mounts the JSON test API (internal/api) on the HTTP mux when api.enabled is set.
func (s *Server) mountAPI() error {
	if !s.cfg.API.Enabled {
		return nil
	}
	if s.cfg.API.Token == "" && !s.cfg.API.OpenOnLoopback {
		s.log.Warn("api.enabled without api.token: the API refuses every request")
	}
	return api.Register(s.mux, api.Options{
		Store:          s.st,
		Token:          s.cfg.API.Token,
		OpenOnLoopback: s.cfg.API.OpenOnLoopback,
		UIDLFormat:     s.cfg.POP3.UIDLFormat,
		DeleteMode:     s.cfg.POP3.Delete,
		Folders:        s.cfg.Folders.Store(),
		Sessions:       s.sessions,
		TraceDir:       s.cfg.Trace.Dir,
		Logger:         s.log.With("protocol", "api"),
	})
}
