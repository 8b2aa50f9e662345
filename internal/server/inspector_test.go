package server

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestInspectorMountedOnlyWhenEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		cfg := testConfig(t)
		cfg.Inspector.Enabled = enabled
		srv := start(t, cfg, io.Discard)
		resp, err := http.Get("http://" + srv.Addr(HTTP).String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.StatusCode == http.StatusOK && strings.Contains(string(body), "Letterbox inspector"); got != enabled {
			t.Errorf("inspector.enabled %v: GET / %d", enabled, resp.StatusCode)
		}
	}
}

// TestShutdownEndsInspectorStreams: an open browser tab (an event stream that never goes
// idle) must not hold up a graceful stop.
func TestShutdownEndsInspectorStreams(t *testing.T) {
	cfg := testConfig(t)
	cfg.Inspector.Enabled = true
	srv := start(t, cfg, io.Discard)
	resp, err := http.Get("http://" + srv.Addr(HTTP).String() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("event stream: %q, %v", line, err)
	}
	// The deadline is far beyond any real stop: missing it means Shutdown waited for the
	// stream and had to cut it off.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with an open event stream: %v", err)
	}
}
