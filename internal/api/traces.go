package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/letterbox-mail/letterbox/internal/sessions"
	"github.com/letterbox-mail/letterbox/internal/trace"
)

// SessionLister lists the live sessions; *sessions.Registry is one.
type SessionLister interface {
	List() []sessions.Session
}

// SessionList is the answer of GET /api/v1/sessions.
type SessionList struct {
	Sessions []sessions.Session `json:"sessions"`
}

func (h *handler) listSessions(w http.ResponseWriter, _ *http.Request) error {
	out := SessionList{Sessions: []sessions.Session{}}
	if h.opts.Sessions != nil {
		out.Sessions = append(out.Sessions, h.opts.Sessions.List()...)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// TraceList is the answer of GET /api/v1/traces: the transcripts, newest first. Enabled
// is false when the server runs without trace.dir (--trace).
type TraceList struct {
	Enabled bool         `json:"enabled"`
	Traces  []trace.Info `json:"traces"`
}

func (h *handler) listTraces(w http.ResponseWriter, _ *http.Request) error {
	out := TraceList{Enabled: h.opts.TraceDir != "", Traces: []trace.Info{}}
	if out.Enabled {
		list, err := trace.List(h.opts.TraceDir)
		if err != nil {
			return err
		}
		out.Traces = append(out.Traces, list...)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getTrace answers one transcript as text/plain. Only names of the form trace.List gives
// are served, so no path leaves the directory.
func (h *handler) getTrace(w http.ResponseWriter, r *http.Request) error {
	if h.opts.TraceDir == "" {
		return errNotFound("tracing is off: start the server with --trace DIR (trace.dir)")
	}
	f, err := trace.Open(h.opts.TraceDir, r.PathValue("name"))
	if errors.Is(err, trace.ErrNotFound) {
		return errNotFound("no such trace: " + r.PathValue("name"))
	}
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	io.Copy(w, f) // a live session's trace: what is there now; the client may be gone
	return nil
}
