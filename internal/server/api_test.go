package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAPIMountedOnlyWhenEnabled(t *testing.T) {
	get := func(t *testing.T, srv *Server, token string) int {
		req := httptest.NewRequest("GET", "/api/v1/users", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		srv.Mux().ServeHTTP(rec, req)
		return rec.Code
	}
	newServer := func(t *testing.T, enabled bool, token string, open bool) *Server {
		cfg := testConfig(t)
		cfg.API.Enabled, cfg.API.Token, cfg.API.OpenOnLoopback = enabled, token, open
		srv, err := New(cfg, openStore(t, cfg.Data), nil)
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	if code := get(t, newServer(t, false, "t0ken", false), "t0ken"); code != http.StatusNotFound {
		t.Errorf("api.enabled false: %d, want 404", code)
	}
	srv := newServer(t, true, "t0ken", false)
	if code := get(t, srv, "t0ken"); code != http.StatusOK {
		t.Errorf("api.enabled with the token: %d, want 200", code)
	}
	if code := get(t, srv, ""); code != http.StatusUnauthorized {
		t.Errorf("api.enabled without the token: %d, want 401", code)
	}
	// httptest.NewRequest comes from 192.0.2.1: not loopback.
	if code := get(t, newServer(t, true, "", true), ""); code != http.StatusUnauthorized {
		t.Errorf("testing mode from a non-loopback address: %d, want 401", code)
	}
}
