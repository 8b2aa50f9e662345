package main

// Wire traces end to end: `serve --trace DIR` with real clients logging in every way a
// trace must mask, then the traces read from the directory and over the JSON API.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTracesOfRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	needCommand(t, "python3")
	const user, password = "bob@example.net", `Tr4ce secret"pw`
	dir := filepath.Join(t.TempDir(), "traces")
	srv := startE2E(t, t.TempDir(), "--testing", "--tls-self-signed", "--trace", dir)
	srv.addUser(user, password)

	script, _ := filepath.Abs("../../testdata/e2e/trace_clients.py")
	py := exec.Command("python3", script, port(srv.ports["lmtp"]), port(srv.ports["pop3"]),
		port(srv.ports["imap"]), user, password)
	var stderr bytes.Buffer
	py.Stderr = &stderr
	if err := py.Run(); err != nil {
		t.Fatalf("python clients: %v\n%s\nserver log:\n%s", err, stderr.String(), srv.log.String())
	}

	// A session that stays open shows up in GET /api/v1/sessions.
	imap, err := net.Dial("tcp", srv.ports["imap"])
	if err != nil {
		t.Fatal(err)
	}
	defer imap.Close()
	r := bufio.NewReader(imap)
	r.ReadString('\n')
	fmt.Fprintf(imap, "a LOGIN %s \"Tr4ce secret\\\"pw\"\r\nb SELECT INBOX\r\n", user)
	for line := ""; !strings.HasPrefix(line, "b "); {
		if line, err = r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	var live struct {
		Sessions []struct{ Protocol, User, Mailbox, Trace string }
	}
	getJSON(t, "http://"+srv.ports["http"]+"/api/v1/sessions", &live)
	if len(live.Sessions) != 1 || live.Sessions[0].Protocol != "imap" || live.Sessions[0].User != user ||
		live.Sessions[0].Mailbox != "INBOX" || live.Sessions[0].Trace == "" {
		t.Errorf("live sessions: %+v", live.Sessions)
	}
	fmt.Fprintf(imap, "c LOGOUT\r\n")
	r.ReadString(0) // until the server closes

	traces := waitForEnds(t, dir, 8)
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	byKind := map[string][]string{}
	for name, text := range traces {
		for _, secret := range []string{"Tr4ce", "secret", plain} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains the secret %q:\n%s", name, secret, text)
			}
		}
		proto := strings.Split(name, "-")[1]
		byKind[proto] = append(byKind[proto], text)
	}
	if len(byKind["lmtp"]) != 1 || len(byKind["pop3"]) != 2 || len(byKind["imap"]) != 5 {
		t.Fatalf("traces per protocol: lmtp %d, pop3 %d, imap %d; want 1, 2, 5",
			len(byKind["lmtp"]), len(byKind["pop3"]), len(byKind["imap"]))
	}
	want := func(what string, texts []string, parts ...string) {
		t.Helper()
		for _, text := range texts {
			found := true
			for _, p := range parts {
				found = found && strings.Contains(text, p)
			}
			if found {
				return
			}
		}
		t.Errorf("no %s trace has all of %q:\n%s", what, parts, strings.Join(texts, "\n\n"))
	}
	want("LMTP", byKind["lmtp"], " C: data\n", " S: 354 ", "C: BODYMARKER first line\n", " more bytes]\n", " C: .\n")
	want("POP3", byKind["pop3"], " C: PASS ****\n", " -- user "+user+"\n", " C: RETR 1\n",
		"S: BODYMARKER first line\n", " more bytes]\n")
	want("POP3 STLS", byKind["pop3"], " C: STLS\n", "-- TLS started (STARTTLS accepted)",
		"-- TLS established (TLS 1.3); the decrypted stream follows\n", " C: USER "+user+"\n", " C: PASS ****\n", " C: STAT\n")
	want("IMAP LOGIN", byKind["imap"], " LOGIN "+user+" ****\n", "-- mailbox INBOX\n", " FETCH 1 (BODY[])\n",
		"S: BODYMARKER first line\n", " more bytes]\n")
	want("IMAP AUTHENTICATE", byKind["imap"], " AUTHENTICATE PLAIN\n", " C: ****\n", "-- user "+user+"\n")
	want("IMAP STARTTLS", byKind["imap"], " STARTTLS\n", "-- TLS started (STARTTLS accepted)", "-- user "+user+"\n")
	want("IMAP LOGIN literals", byKind["imap"], " C: L1 LOGIN {15}\n", " C: "+user+" {15}\n", " C: ****\n", "-- user "+user+"\n")

	// The API lists the same traces, with their users, and serves each one.
	var list struct {
		Enabled bool
		Traces  []struct{ Name, Protocol, User string }
	}
	getJSON(t, "http://"+srv.ports["http"]+"/api/v1/traces", &list)
	if !list.Enabled || len(list.Traces) != len(traces) {
		t.Fatalf("API lists %d traces (enabled %v), want %d", len(list.Traces), list.Enabled, len(traces))
	}
	for _, tr := range list.Traces {
		if tr.Protocol != "lmtp" && tr.User != user {
			t.Errorf("listed without its user: %+v", tr)
		}
		resp, err := http.Get("http://" + srv.ports["http"] + "/api/v1/traces/" + tr.Name)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || body.String() != traces[tr.Name] {
			t.Errorf("GET trace %s: %d, %d bytes, want the file", tr.Name, resp.StatusCode, body.Len())
		}
	}
}

// waitForEnds waits until dir holds n traces, each ended (the server closes a session
// after its client is gone), and returns them by name.
func waitForEnds(t *testing.T, dir string, n int) map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := map[string]string{}
		files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil && strings.Contains(string(b), "\n# end: ") {
				out[filepath.Base(f)] = string(b)
			}
		}
		if len(out) == n && len(files) == n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d traces, %d ended; want %d ended", len(files), len(out), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
