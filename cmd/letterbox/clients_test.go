package main

// End-to-end tests: the real binary, driven by clients nobody here wrote (Python's smtplib
// and poplib, curl), and killed with SIGKILL to prove that what was acknowledged stays.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// e2eServer is one `letterbox serve` process on free loopback ports.
type e2eServer struct {
	t     *testing.T
	bin   string
	data  string
	cmd   *exec.Cmd
	log   *bytes.Buffer
	ports map[string]string // protocol -> host:port from the "listening" log lines
}

var listeningAddr = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)

func startE2E(t *testing.T, data string, args ...string) *e2eServer {
	t.Helper()
	s := &e2eServer{t: t, bin: binary, data: data, log: new(bytes.Buffer), ports: map[string]string{}}
	s.cmd = exec.Command(binary, append([]string{"serve", "--data", data, "--imap-addr", "127.0.0.1:0",
		"--pop3-addr", "127.0.0.1:0", "--lmtp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, args...)...)
	s.cmd.Env = cleanEnv()
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = io.Discard
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.kill() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.log.WriteString(line + "\n")
			low := strings.ToLower(line)
			if !strings.Contains(low, "listening") {
				continue
			}
			m := listeningAddr.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			for _, proto := range []string{"imap", "pop3", "lmtp", "http"} {
				if strings.Contains(low, proto) && !strings.Contains(low, proto+"s") {
					s.ports[proto] = "127.0.0.1:" + m[1]
				}
			}
			if !signalled && len(s.ports) == 4 {
				signalled = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not log four listening lines; log:\n%s", s.log.String())
	}
	return s
}

func (s *e2eServer) kill() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// cli runs a letterbox subcommand on the server's data directory.
func (s *e2eServer) cli(stdin string, args ...string) (string, int) {
	cmd := exec.Command(s.bin, append(args, "--data", s.data)...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return string(out), exit.ExitCode()
	} else if err != nil {
		s.t.Fatalf("letterbox %v: %v", args, err)
	}
	return string(out), 0
}

func (s *e2eServer) addUser(address, password string) {
	s.t.Helper()
	if out, code := s.cli(password+"\n", "user", "add", address, "--password-stdin"); code != 0 {
		s.t.Fatalf("user add %s: exit %d: %s", address, code, out)
	}
}

func needCommand(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (.ci/run must install it)", name)
		}
		t.Skipf("%s is not installed", name)
	}
}

// TestPOP3WithRealClients delivers with smtplib.LMTP and downloads with poplib and curl.
func TestPOP3WithRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	needCommand(t, "python3")
	needCommand(t, "curl")
	srv := startE2E(t, t.TempDir())
	srv.addUser("bob@example.net", "bob-secret")

	script, _ := filepath.Abs("../../testdata/e2e/pop3_clients.py")
	py := exec.Command("python3", script, port(srv.ports["lmtp"]), port(srv.ports["pop3"]),
		"bob@example.net", "bob-secret")
	var stderr bytes.Buffer
	py.Stderr = &stderr
	out, err := py.Output()
	if err != nil {
		t.Fatalf("python clients: %v\n%s\nserver log:\n%s", err, stderr.String(), srv.log.String())
	}
	uidls := strings.Fields(string(out))
	if len(uidls) != 2 {
		t.Fatalf("python clients printed %q, want two UIDLs", out)
	}

	// curl speaks POP3 too: "pop3://host/" lists, "pop3://host/N" retrieves, and the UIDL
	// command gives the same identities poplib saw.
	base := "pop3://" + srv.ports["pop3"] + "/"
	curl := func(args ...string) string {
		t.Helper()
		c := exec.Command("curl", append([]string{"-sS", "--max-time", "20", "-u", "bob@example.net:bob-secret"}, args...)...)
		b, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	listing := curl(base)
	if got := len(strings.Fields(strings.TrimSpace(listing))); got != 4 {
		t.Fatalf("curl LIST = %q, want two messages", listing)
	}
	msg := curl(base + "1")
	if !strings.Contains(msg, "Message-ID: <2.e2e@letterbox.test>") || !strings.Contains(msg, "\r\n..leading dots\r\n") {
		t.Fatalf("curl RETR 1 is not the second message, dot-unstuffed:\n%s", msg)
	}
	uidl := curl("-X", "UIDL", base)
	for i, u := range uidls {
		if !strings.Contains(uidl, fmt.Sprintf("%d %s", i+1, u)) {
			t.Fatalf("curl UIDL = %q, want %d %s", uidl, i+1, u)
		}
	}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// TestKill9KeepsAcknowledged: messages that got LMTP 250 and deletions that got POP3 QUIT
// +OK survive SIGKILL of the server; a POP3 session killed before QUIT deletes nothing.
func TestKill9KeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	data := t.TempDir()
	srv := startE2E(t, data)
	srv.addUser("carol@example.net", "pw")

	// Deliver from several connections until the server is killed mid-stream.
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("<%d.%d.kill@letterbox.test>", w, i)
				if lmtpDeliver(srv.ports["lmtp"], "carol@example.net", id) != nil {
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}(w)
	}
	time.Sleep(1500 * time.Millisecond)
	srv.kill()
	cancel()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no delivery was acknowledged before the kill; log:\n%s", srv.log.String())
	}

	srv = startE2E(t, data)
	pop := dialPOP3(t, srv.ports["pop3"], "carol@example.net", "pw")
	ids := pop3MessageIDs(t, pop)
	have := map[string]bool{}
	for _, id := range ids {
		have[id] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("message %s got 250 before the kill but is gone (%d acknowledged, %d stored)", id, len(acked), len(ids))
		}
	}

	// Mark everything deleted, then die without QUIT: nothing may go.
	for n := 1; n <= len(ids); n++ {
		pop3Cmd(t, pop, "DELE %d", n)
	}
	srv.kill()
	srv = startE2E(t, data)
	pop = dialPOP3(t, srv.ports["pop3"], "carol@example.net", "pw")
	if got := len(pop3MessageIDs(t, pop)); got != len(ids) {
		t.Fatalf("after DELE without QUIT and a kill: %d messages, want %d", got, len(ids))
	}
	// DELE 1 and QUIT: once +OK came back, the deletion is final even if we kill at once.
	pop3Cmd(t, pop, "DELE 1")
	pop3Cmd(t, pop, "QUIT")
	srv.kill()
	srv = startE2E(t, data)
	pop = dialPOP3(t, srv.ports["pop3"], "carol@example.net", "pw")
	if got := len(pop3MessageIDs(t, pop)); got != len(ids)-1 {
		t.Fatalf("after DELE 1, QUIT +OK and a kill: %d messages, want %d", got, len(ids)-1)
	}
	if out, code := srv.cli("", "user", "list"); code != 0 || !strings.Contains(out, "carol@example.net") {
		t.Fatalf("user list after the kills: exit %d: %s", code, out)
	}
}

func lmtpDeliver(addr, rcpt, msgID string) error {
	return lmtpDeliverBody(addr, rcpt, []byte(fmt.Sprintf(
		"From: alice@example.org\r\nTo: %s\r\nSubject: kill test\r\nMessage-ID: %s\r\n\r\nbody\r\n", rcpt, msgID)))
}

func dialPOP3(t *testing.T, addr, user, pass string) *textproto.Conn {
	t.Helper()
	var conn net.Conn
	var err error
	for i := 0; i < 50; i++ { // the previous session's maildrop lock may still be held briefly
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		tp := textproto.NewConn(conn)
		if _, err = tp.ReadLine(); err != nil {
			t.Fatal(err)
		}
		pop3Cmd(t, tp, "USER %s", user)
		_ = tp.PrintfLine("PASS %s", pass)
		line, err := tp.ReadLine()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "+OK") {
			t.Cleanup(func() { conn.Close() })
			return tp
		}
		conn.Close()
		if !strings.Contains(line, "[IN-USE]") {
			t.Fatalf("PASS: %s", line)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("maildrop stayed in use")
	return nil
}

func pop3Cmd(t *testing.T, tp *textproto.Conn, format string, args ...any) string {
	t.Helper()
	if err := tp.PrintfLine(format, args...); err != nil {
		t.Fatal(err)
	}
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "+OK") {
		t.Fatalf("%s: %s", fmt.Sprintf(format, args...), line)
	}
	return line
}

// pop3MessageIDs returns the Message-ID of every message in the maildrop, via TOP n 0.
func pop3MessageIDs(t *testing.T, tp *textproto.Conn) []string {
	t.Helper()
	stat := pop3Cmd(t, tp, "STAT")
	var n int
	fmt.Sscanf(stat, "+OK %d", &n)
	var ids []string
	for i := 1; i <= n; i++ {
		pop3Cmd(t, tp, "TOP %d 0", i)
		lines, err := tp.ReadDotLines()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "Message-ID: "); ok {
				ids = append(ids, v)
			}
		}
	}
	return ids
}
