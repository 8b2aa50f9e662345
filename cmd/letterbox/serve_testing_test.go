package main

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// startServe runs `letterbox serve` with args on free ports and returns the HTTP address;
// the process is stopped when the test ends.
func startServe(t *testing.T, env []string, args ...string) string {
	t.Helper()
	args = append([]string{"serve", "--data", t.TempDir(), "--imap-addr", "127.0.0.1:0",
		"--pop3-addr", "127.0.0.1:0", "--lmtp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(binary, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := listening.FindStringSubmatch(sc.Text()); m != nil && m[1] == "http" {
			go io.Copy(io.Discard, stderr)
			return "127.0.0.1:" + m[2]
		}
	}
	t.Fatal("serve logged no HTTP listener")
	return ""
}

func apiStatus(t *testing.T, method, url, token, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeTestingMountsTheAPI checks the API's switch: off in plain serve, open to
// loopback under --testing, and behind api.token when one is set.
func TestServeTestingMountsTheAPI(t *testing.T) {
	plain := startServe(t, nil)
	if code := apiStatus(t, "GET", "http://"+plain+"/api/v1/users", "", ""); code != http.StatusNotFound {
		t.Errorf("plain serve: /api/v1/users %d, want 404", code)
	}

	open := startServe(t, nil, "--testing")
	api := "http://" + open + "/api/v1"
	if code := apiStatus(t, "POST", api+"/users", "", `{"address":"bob@example.net","password":"s3cret"}`); code != http.StatusCreated {
		t.Errorf("--testing: create user %d, want 201", code)
	}
	if code := apiStatus(t, "POST", api+"/users/bob@example.net/messages", "", crlf(testMessage)); code != http.StatusCreated {
		t.Errorf("--testing: deliver %d, want 201", code)
	}

	guarded := startServe(t, []string{"LETTERBOX_API_TOKEN=t0ken"}, "--testing")
	api = "http://" + guarded + "/api/v1"
	if code := apiStatus(t, "GET", api+"/users", "", ""); code != http.StatusUnauthorized {
		t.Errorf("--testing with api.token, no token: %d, want 401", code)
	}
	if code := apiStatus(t, "GET", api+"/users", "t0ken", ""); code != http.StatusOK {
		t.Errorf("--testing with api.token, the token: %d, want 200", code)
	}
}
