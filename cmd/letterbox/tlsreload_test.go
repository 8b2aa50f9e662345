package main

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/testcert"
)

// TestSIGHUPReloadsCertificate runs `serve` with tls.cert and tls.key, replaces the files,
// sends SIGHUP, and checks that new IMAPS connections get the new certificate while the
// session opened before goes on, and that the process is still serving.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testcert.WriteFiles(t, "before.test", certPath, keyPath)
	cmd := exec.Command(binary, "serve", "--data", t.TempDir(),
		"--imap-addr", "", "--imaps-addr", "127.0.0.1:0", "--pop3-addr", "", "--pop3s-addr", "127.0.0.1:0",
		"--lmtp-addr", "", "--http-addr", "")
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), "LETTERBOX_TLS_CERT="+certPath, "LETTERBOX_TLS_KEY="+keyPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// waitFor returns the first log line containing s (a hang guard, not a timing check).
	var log strings.Builder
	waitFor := func(s string) string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("serve ended before logging %q:\n%s", s, log.String())
				}
				log.WriteString(l + "\n")
				if strings.Contains(l, s) {
					return l
				}
			case <-deadline:
				t.Fatalf("no %q in the log:\n%s", s, log.String())
			}
		}
	}
	ports := map[string]string{}
	for len(ports) < 2 {
		if m := listening.FindStringSubmatch(waitFor("msg=listening")); m != nil {
			ports[m[1]] = "127.0.0.1:" + m[2]
		}
	}
	waitFor("letterbox started") // the SIGHUP handler is installed before this line
	dial := func(addr string) *tls.Conn {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
			&tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("dialing %s: %v", addr, err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		return c
	}
	cn := func(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].Subject.CommonName }

	old := dial(ports["imaps"])
	defer old.Close()
	oldR := bufio.NewReader(old)
	if l, err := oldR.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK") {
		t.Fatalf("IMAPS greeting %q, %v", l, err)
	}
	if got := cn(old); got != "before.test" {
		t.Fatalf("served %q, want before.test", got)
	}

	testcert.WriteFiles(t, "after.test", certPath, keyPath)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("tls certificate reloaded")
	for _, p := range []string{"imaps", "pop3s"} {
		c := dial(ports[p])
		if got := cn(c); got != "after.test" {
			t.Errorf("%s served %q after SIGHUP, want after.test", p, got)
		}
		c.Close()
	}
	if _, err := old.Write([]byte("a1 NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	if l, err := oldR.ReadString('\n'); err != nil || !strings.HasPrefix(l, "a1 OK") {
		t.Errorf("the session opened before SIGHUP: NOOP answered %q, %v", l, err)
	}

	// A broken certificate: SIGHUP logs the failure, the server keeps the last good one.
	if err := os.WriteFile(certPath, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("tls reload failed")
	c := dial(ports["imaps"])
	if got := cn(c); got != "after.test" {
		t.Errorf("after a failed reload served %q, want after.test", got)
	}
	c.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGHUPs and SIGTERM: %v\n%s", err, log.String())
	}
}
