package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromiumPath is the browser the inspector's browser test drives (Debian's chromium;
// CHROMIUM overrides it).
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// TestInspectorInBrowser is the web inspector's end-to-end test: `serve --testing`, a user
// created over the JSON API, and testdata/e2e/inspector.spec.mjs driving headless Chromium
// through playwright-core while Python's smtplib delivers over LMTP and poplib deletes
// over POP3. The page must follow both without a reload.
func TestInspectorInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	needCommand(t, "node")
	needCommand(t, "npm")
	needCommand(t, "python3")
	needCommand(t, chromiumPath())

	dir, err := filepath.Abs(filepath.Join("testdata", "e2e"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// playwright-core from package-lock.json; its own browser download is not used.
	npm := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
	npm.Dir = dir
	npm.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	if out, err := npm.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}

	srv := startE2E(t, t.TempDir(), "--testing")
	const user, password = "bob@example.net", "s3cret"
	api := "http://" + srv.ports["http"] + "/api/v1"
	if code := apiStatus(t, "POST", api+"/users", "", `{"address":"`+user+`","password":"`+password+`"}`); code != http.StatusCreated {
		t.Fatalf("create user over the API: %d", code)
	}
	port := func(addr string) string {
		_, p, _ := net.SplitHostPort(addr)
		return p
	}
	node := exec.CommandContext(ctx, "node", "inspector.spec.mjs")
	node.Dir = dir
	node.Env = append(os.Environ(),
		"INSPECTOR_URL=http://"+srv.ports["http"],
		"LMTP_PORT="+port(srv.ports["lmtp"]),
		"POP3_PORT="+port(srv.ports["pop3"]),
		"MAIL_USER="+user, "MAIL_PASSWORD="+password,
		"CHROMIUM="+chromiumPath())
	out, err := node.CombinedOutput()
	t.Logf("inspector.spec.mjs:\n%s", strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("the browser test failed: %v\nserver log:\n%s", err, srv.log.String())
	}
}
