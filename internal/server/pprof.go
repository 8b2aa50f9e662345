package server

import (
	"net/http/pprof"
)

// mountPprof mounts Go's runtime profiler under /debug/pprof/ on the HTTP listener when
// http.pprof is set (serve --pprof). The handlers are registered on this server's own mux
// by hand: importing net/http/pprof also registers them on http.DefaultServeMux, which
// nothing here serves, so they are reachable only when asked for.
func (s *Server) mountPprof() {
	if !s.cfg.HTTP.Pprof {
		return
	}
	s.log.Warn("http.pprof is on: /debug/pprof/ shows the server's internals to anyone who can reach the HTTP listener",
		"addr", s.cfg.HTTP.Addr)
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
