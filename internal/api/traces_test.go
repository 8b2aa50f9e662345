package api

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/sessions"
)

func TestSessions(t *testing.T) {
	reg := sessions.NewRegistry()
	start := time.Date(2026, 11, 22, 6, 40, 1, 0, time.UTC)
	pop := reg.Add(sessions.Session{Protocol: "pop3", Remote: "127.0.0.1:50312", Start: start})
	imap := reg.Add(sessions.Session{Protocol: "imap", Remote: "127.0.0.1:50313", Start: start.Add(time.Second)})
	imap.SetUser("alice@example.org")
	imap.SetMailbox("INBOX")
	e := newEnv(t, Options{Token: "t0ken", Sessions: reg})

	var got SessionList
	if code := e.do("GET", "/api/v1/sessions", "", "", &got); code != http.StatusOK {
		t.Fatalf("GET /api/v1/sessions: %d", code)
	}
	if len(got.Sessions) != 2 || got.Sessions[0].ID != pop.ID() || got.Sessions[1].User != "alice@example.org" ||
		got.Sessions[1].Mailbox != "INBOX" || got.Sessions[1].Protocol != "imap" || !got.Sessions[0].Start.Equal(start) {
		t.Errorf("sessions: %+v", got.Sessions)
	}
	pop.Remove()
	imap.Remove()
	if code := e.do("GET", "/api/v1/sessions", "", "", &got); code != http.StatusOK || got.Sessions == nil || len(got.Sessions) != 0 {
		t.Errorf("no sessions: %d %+v (want an empty list, not null)", code, got)
	}

	e.token = ""
	if code := e.do("GET", "/api/v1/sessions", "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", code)
	}
}

// writeTrace puts a transcript into dir as internal/trace would have written it.
func writeTrace(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

const popTrace = `# Letterbox wire trace
# protocol: pop3
# session: 3
# remote: 127.0.0.1:50312
# local: 127.0.0.1:1110
# start: 2026-11-22T06:40:01.123Z
2026-11-22T06:40:01.124Z S: +OK Letterbox POP3 server ready on localhost
2026-11-22T06:40:01.130Z C: USER bob@example.net
2026-11-22T06:40:01.131Z S: +OK
2026-11-22T06:40:01.140Z C: PASS ****
2026-11-22T06:40:01.150Z -- user bob@example.net
2026-11-22T06:40:01.151Z S: +OK maildrop has 0 messages (0 octets)
# end: 2026-11-22T06:40:02.000Z
`

func TestTraces(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "traces")
	os.Mkdir(dir, 0o700)
	writeTrace(t, dir, "20261122T064001.123Z-pop3-3.log", popTrace)
	writeTrace(t, dir, "20261122T064005.000Z-imap-4.log", "# Letterbox wire trace\n# protocol: imap\n# session: 4\n# start: 2026-11-22T06:40:05.000Z\n")
	writeTrace(t, root, "secret.log", "outside the trace directory")
	e := newEnv(t, Options{Token: "t0ken", TraceDir: dir})

	var list TraceList
	if code := e.do("GET", "/api/v1/traces", "", "", &list); code != http.StatusOK {
		t.Fatalf("GET /api/v1/traces: %d", code)
	}
	if !list.Enabled || len(list.Traces) != 2 {
		t.Fatalf("list: %+v", list)
	}
	if tr := list.Traces[1]; tr.Name != "20261122T064001.123Z-pop3-3.log" || tr.Protocol != "pop3" ||
		tr.User != "bob@example.net" || tr.Session != "3" || tr.Size != int64(len(popTrace)) ||
		!tr.Start.Equal(time.Date(2026, 11, 22, 6, 40, 1, 123e6, time.UTC)) || tr.End.IsZero() {
		t.Errorf("the POP3 trace, listed: %+v", tr)
	}
	if tr := list.Traces[0]; tr.Protocol != "imap" || tr.User != "" || !tr.End.IsZero() {
		t.Errorf("the open IMAP trace, listed first: %+v", tr)
	}

	code, ctype, body := e.get("/api/v1/traces/20261122T064001.123Z-pop3-3.log")
	if code != http.StatusOK || ctype != "text/plain; charset=utf-8" || body != popTrace {
		t.Errorf("GET the trace: %d %q %q", code, ctype, body)
	}

	for _, path := range []string{
		"/api/v1/traces/..%2Fsecret.log",
		"/api/v1/traces/%2E%2E%2Fsecret.log",
		"/api/v1/traces/..%5Csecret.log",
		"/api/v1/traces/..",
		"/api/v1/traces/../secret.log", // cleaned by the client or redirected by the mux
		"/api/v1/traces/20261122T064009.000Z-imap-9.log",
	} {
		code, _, body := e.get(path)
		if code != http.StatusNotFound || strings.Contains(body, "outside") {
			t.Errorf("GET %s: %d %q, want 404", path, code, body)
		}
	}

	e.token = ""
	if code, _, body := e.get("/api/v1/traces/20261122T064001.123Z-pop3-3.log"); code != http.StatusUnauthorized ||
		strings.Contains(body, "USER") {
		t.Errorf("GET the trace without the token: %d %q, want 401", code, body)
	}
	if code := e.do("GET", "/api/v1/traces", "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/traces without the token: %d, want 401", code)
	}
}

func TestTracesWhenTracingIsOff(t *testing.T) {
	e := newEnv(t, Options{Token: "t0ken"})
	var list TraceList
	if code := e.do("GET", "/api/v1/traces", "", "", &list); code != http.StatusOK || list.Enabled ||
		list.Traces == nil || len(list.Traces) != 0 {
		t.Errorf("list: %d %+v", code, list)
	}
	if code, _, _ := e.get("/api/v1/traces/20261122T064001.123Z-pop3-3.log"); code != http.StatusNotFound {
		t.Errorf("GET a trace: %d, want 404", code)
	}
}

// get fetches path and returns the status, the content type and the body.
func (e *env) get(path string) (int, string, string) {
	e.t.Helper()
	resp, body := e.request("GET", path, "", "")
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

var _ SessionLister = (*sessions.Registry)(nil)
