package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testConfig is the default configuration with every listener on a free loopback port.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, config.EnvPrefix+"_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	cfg, err := config.Load(config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	cfg.Hostname = "mail.test"
	for _, a := range []*string{&cfg.IMAP.Addr, &cfg.IMAPS.Addr, &cfg.POP3.Addr, &cfg.POP3S.Addr, &cfg.LMTP.Addr, &cfg.HTTP.Addr} {
		*a = "127.0.0.1:0"
	}
	cfg.TLS.SelfSigned = true
	cfg.Auth.FailureDelay = 0
	return cfg
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func start(t *testing.T, cfg *config.Config, log io.Writer) *Server {
	t.Helper()
	return startLogging(t, cfg, slog.New(slog.NewTextHandler(log, nil)))
}

// startLogging starts a server that logs to logger, and shuts it down at cleanup.
func startLogging(t *testing.T, cfg *config.Config, logger *slog.Logger) *Server {
	t.Helper()
	return startOn(t, cfg, openStore(t, cfg.Data), logger)
}

// startOn starts a server on st that logs to logger, and shuts it down at cleanup.
func startOn(t *testing.T, cfg *config.Config, st *store.Store, logger *slog.Logger) *Server {
	t.Helper()
	srv, err := New(cfg, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

func greeting(t *testing.T, c net.Conn) string {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the greeting from %s: %v", c.RemoteAddr(), err)
	}
	return line
}

func dial(t *testing.T, a net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial(a.Network(), a.String())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func dialTLS(t *testing.T, a net.Addr) net.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", a.String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var listeningLine = regexp.MustCompile(`msg=listening protocol=(\w+) addr=(\S+)`)

// TestStartLogsAndServesEveryListener starts every listener on port 0 and checks the one
// "listening" line per listener (with the real port) and that each one answers.
func TestStartLogsAndServesEveryListener(t *testing.T) {
	cfg := testConfig(t)
	var log syncBuffer
	srv := start(t, cfg, &log)

	logged := map[string]string{}
	for _, line := range strings.Split(log.String(), "\n") {
		if m := listeningLine.FindStringSubmatch(line); m != nil {
			if _, dup := logged[m[1]]; dup {
				t.Errorf("two listening lines for %s", m[1])
			}
			logged[m[1]] = m[2]
		}
	}
	for _, name := range []string{IMAP, IMAPS, POP3, POP3S, LMTP, HTTP} {
		a := srv.Addr(name)
		if a == nil {
			t.Fatalf("Addr(%s) = nil", name)
		}
		if strings.HasSuffix(a.String(), ":0") {
			t.Errorf("Addr(%s) = %s, want the bound port", name, a)
		}
		if logged[name] != a.String() {
			t.Errorf("listening line for %s says %q, want %q (log:\n%s)", name, logged[name], a, log.String())
		}
	}

	if g := greeting(t, dial(t, srv.Addr(LMTP))); !strings.HasPrefix(g, "220 ") {
		t.Errorf("LMTP greeting %q", g)
	}
	if g := greeting(t, dial(t, srv.Addr(POP3))); !strings.HasPrefix(g, "+OK") {
		t.Errorf("POP3 greeting %q", g)
	}
	if g := greeting(t, dialTLS(t, srv.Addr(POP3S))); !strings.HasPrefix(g, "+OK") {
		t.Errorf("POP3S greeting %q", g)
	}
	if g := greeting(t, dial(t, srv.Addr(IMAP))); !strings.HasPrefix(g, "* OK") {
		t.Errorf("IMAP greeting %q", g)
	}
	if g := greeting(t, dialTLS(t, srv.Addr(IMAPS))); !strings.HasPrefix(g, "* OK") {
		t.Errorf("IMAPS greeting %q", g)
	}

	resp, err := http.Get("http://" + srv.Addr(HTTP).String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz: %d %q, want 200 ok", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c, err := net.Dial("tcp", srv.Addr(LMTP).String()); err == nil {
		c.Close()
		t.Error("the LMTP port still accepts after Shutdown")
	}
}

func TestDisabledListenersAndUnixLMTP(t *testing.T) {
	cfg := testConfig(t)
	cfg.IMAP.Addr, cfg.IMAPS.Addr, cfg.POP3.Addr, cfg.POP3S.Addr, cfg.HTTP.Addr = "", "", "", "", ""
	cfg.TLS.SelfSigned = false
	sock := filepath.Join(cfg.Data, "lmtp.sock")
	cfg.LMTP.Addr = "unix:" + sock

	// A stale socket file, left by a process that is gone.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	var log syncBuffer
	srv := start(t, cfg, &log)
	for _, name := range []string{IMAP, IMAPS, POP3, POP3S, HTTP} {
		if srv.Addr(name) != nil {
			t.Errorf("%s is listening though disabled", name)
		}
	}
	if !strings.Contains(log.String(), "msg=listening protocol=lmtp addr=unix:"+sock) {
		t.Errorf("no listening line for the socket:\n%s", log.String())
	}
	if g := greeting(t, dial(t, srv.Addr(LMTP))); !strings.HasPrefix(g, "220 ") {
		t.Errorf("LMTP greeting over the socket %q", g)
	}

	// A second server on the same live socket must refuse rather than steal it.
	other, err := New(cfg, openStore(t, t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(context.Background()); err == nil {
		other.Shutdown(context.Background())
		t.Error("a second server took over a live socket")
	}
}

func TestStartFailsCleanlyOnBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t)
	cfg.HTTP.Addr = busy.Addr().String()
	srv, err := New(cfg, openStore(t, cfg.Data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err == nil {
		srv.Shutdown(context.Background())
		t.Fatal("Start succeeded on a busy port")
	}
	if srv.Addr(LMTP) != nil {
		t.Error("a listener stayed open after Start failed")
	}
}

func TestImplicitTLSNeedsACertificate(t *testing.T) {
	cfg := testConfig(t)
	cfg.TLS.SelfSigned = false
	if _, err := New(cfg, openStore(t, cfg.Data), nil); err == nil {
		t.Error("New accepted imaps/pop3s without TLS")
	}
}

func TestSelfSignedCertificateIsReused(t *testing.T) {
	cfg := testConfig(t)
	first, err := TLSConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := TLSConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(servedCert(t, first).Certificate[0], servedCert(t, second).Certificate[0]) {
		t.Error("a second start generated a new certificate instead of reusing the first")
	}
	if first.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", first.MinVersion)
	}
	fi, err := os.Stat(filepath.Join(cfg.Data, "tls", "self-signed.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	leaf := servedCert(t, first).Leaf
	for _, host := range []string{"mail.test", "localhost", "127.0.0.1"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("certificate does not cover %s: %v", host, err)
		}
	}
}

func TestHealthzReportsAStoreThatDoesNotAnswer(t *testing.T) {
	cfg := testConfig(t)
	st, err := store.Open(cfg.Data, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func() int {
		rec := httptest.NewRecorder()
		srv.Mux().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		return rec.Code
	}
	if code := get(); code != http.StatusOK {
		t.Errorf("/healthz with the store open: %d, want 200", code)
	}
	st.Close()
	if code := get(); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz with the store closed: %d, want 503", code)
	}
}
