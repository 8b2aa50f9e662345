package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func getPprof(t *testing.T, srv *Server) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + srv.Addr(HTTP).String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestPprofIsNotMountedByDefault(t *testing.T) {
	srv := start(t, testConfig(t), io.Discard)
	if code, _ := getPprof(t, srv); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/goroutine without http.pprof: status %d, want 404", code)
	}
}

func TestPprofIsMountedWhenAsked(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.Pprof = true
	var log syncBuffer
	srv := start(t, cfg, &log)
	code, body := getPprof(t, srv)
	if code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("GET /debug/pprof/goroutine with http.pprof: status %d, body %.200q", code, body)
	}
	if !strings.Contains(log.String(), "http.pprof is on") {
		t.Errorf("no warning logged: %s", log.String())
	}
}
