package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// testBuildTags is the -tags this test binary was built with ("" for none).
func testBuildTags() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-tags" {
				return s.Value
			}
		}
	}
	return ""
}

// binary is the letterbox command built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "letterbox-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "letterbox")
	// The binary is built with this test's own build tags (make test: sqlite_fts5, as make
	// build), so the tests run the build that ships, FTS5 included.
	build := exec.Command("go", "build", "-tags", testBuildTags(), "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building letterbox:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testMessage = "From: Alice <alice@example.org>\nTo: Bob <bob@example.com>\nSubject: Hello\n" +
	"Date: Mon, 15 Jan 2024 09:30:00 +0000\nMessage-ID: <1.cmd-test@example.org>\n\nHello Bob.\n"

// result is a finished command.
type result struct {
	code           int
	stdout, stderr string
}

// lb runs the letterbox binary in a scratch working directory, with no LETTERBOX_*
// variables but those in env.
func lb(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running letterbox %q: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LETTERBOX_") {
			env = append(env, kv)
		}
	}
	return env
}

func expectCode(t *testing.T, r result, want int, what string) {
	t.Helper()
	if r.code != want {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, r.code, want, r.stdout, r.stderr)
	}
}

// mailbox opens the store in data and returns the messages of a mailbox with their bodies.
func mailbox(t *testing.T, data, address, name string) ([]store.Message, [][]byte) {
	t.Helper()
	_, msgs, bodies := readMailbox(t, data, address, name)
	return msgs, bodies
}

// readMailbox opens the store in data (the server must not be running) and returns a
// mailbox, its messages and their bodies.
func readMailbox(t *testing.T, data, address, name string) (store.Mailbox, []store.Message, [][]byte) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acct, err := st.LookupAccount(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.MailboxByName(ctx, acct.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := st.Messages(ctx, mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	for _, m := range msgs {
		b, err := st.OpenMessage(ctx, mb.ID, m.UID)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(b)
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, raw)
	}
	return mb, msgs, bodies
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func TestUserCommands(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	expectCode(t, lb(t, nil, "secret\r\n", "user", "add", "alice@example.com", "--password-stdin", "--quota", "10M", d), 0, "user add")
	expectCode(t, lb(t, nil, "", "user", "add", "bob", "--password", "pw", d), 0, "user add bob")
	if r := lb(t, nil, "x\n", "user", "add", "alice@example.com", "--password-stdin", d); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("adding an existing user: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := lb(t, nil, "\n", "user", "add", "carol", "--password-stdin", d); r.code == 0 {
		t.Error("an empty password was accepted")
	}
	if r := lb(t, nil, "", "user", "add", "carol", d); r.code == 0 {
		t.Error("user add without a password succeeded")
	}

	list := lb(t, nil, "", "user", "list", d)
	expectCode(t, list, 0, "user list")
	lines := strings.Split(strings.TrimSpace(list.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "alice@example.com ") || !strings.HasPrefix(lines[1], "bob ") ||
		!strings.Contains(lines[0], "10M") {
		t.Errorf("user list:\n%s", list.stdout)
	}

	expectCode(t, lb(t, nil, "changed\n", "user", "passwd", "alice@example.com", "--password-stdin", d), 0, "user passwd")
	expectCode(t, lb(t, nil, "x\n", "user", "passwd", "nobody@example.com", "--password-stdin", d), exitNoUser, "user passwd of an unknown user")
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(context.Background(), "alice@example.com", "changed"); err != nil {
		t.Errorf("the new password does not authenticate: %v", err)
	}
	if _, err := st.Authenticate(context.Background(), "alice@example.com", "secret"); err == nil {
		t.Error("the old password still authenticates")
	}
	st.Close()

	expectCode(t, lb(t, nil, "", "user", "del", "bob", d), 0, "user del")
	expectCode(t, lb(t, nil, "", "user", "del", "bob", d), exitNoUser, "user del of a deleted user")
	if list := lb(t, nil, "", "user", "list", d); strings.Contains(list.stdout, "bob") {
		t.Errorf("a deleted user is listed:\n%s", list.stdout)
	}
}

func TestDeliverExitCodes(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	expectCode(t, lb(t, nil, "", "user", "add", "bob@example.com", "--password", "pw", "--quota", "1K", d), 0, "user add")
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "bob@example.com", d), 0, "deliver")
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "nobody@example.com", d), exitNoUser, "deliver to an unknown user")
	expectCode(t, lb(t, nil, "", "deliver", "--to", "bob@example.com", d), exitDataErr, "deliver of empty input")
	expectCode(t, lb(t, nil, testMessage, "deliver", d), exitUsage, "deliver without --to")
	expectCode(t, lb(t, nil, "no header here, just text\n", "deliver", "--to", "bob@example.com", d), exitDataErr, "deliver of text without a header")
	big := testMessage + strings.Repeat("more text to exceed the quota\n", 100)
	expectCode(t, lb(t, nil, big, "deliver", "--to", "bob@example.com", d), exitTempFail, "deliver over quota")

	msgs, bodies := mailbox(t, data, "bob@example.com", "INBOX")
	if len(msgs) != 1 || string(bodies[0]) != crlf(testMessage) {
		t.Fatalf("INBOX holds %d messages: %q", len(msgs), bodies)
	}
}

func TestDeliverMailbox(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	expectCode(t, lb(t, nil, "", "user", "add", "bob", "--password", "pw", d), 0, "user add")
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "bob@anywhere.example", "--mailbox", "Trash", "--from", "alice@example.org", d), 0, "deliver --mailbox Trash")
	msgs, bodies := mailbox(t, data, "bob", "Trash")
	if len(msgs) != 1 || string(bodies[0]) != "Return-Path: <alice@example.org>\r\n"+crlf(testMessage) {
		t.Fatalf("Trash: %q", bodies)
	}
	r := lb(t, nil, testMessage, "deliver", "--to", "bob", "--mailbox", "No such folder", d)
	expectCode(t, r, 0, "deliver --mailbox to a missing folder")
	if !strings.Contains(r.stderr, "INBOX") {
		t.Errorf("no warning about the INBOX fallback: %q", r.stderr)
	}
	if msgs, _ := mailbox(t, data, "bob", "INBOX"); len(msgs) != 1 {
		t.Errorf("INBOX holds %d messages, want the fallback delivery", len(msgs))
	}
}

func TestImport(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	expectCode(t, lb(t, nil, "", "user", "add", "bob@example.com", "--password", "pw", d), 0, "user add")
	src := t.TempDir()

	msg := func(n int) string {
		return fmt.Sprintf("From: alice@example.org\nSubject: message %d\nMessage-ID: <%d@example.org>\n\nBody text, then quoted lines:\n", n, n)
	}
	mbox := filepath.Join(src, "inbox.mbox")
	body := "From alice@example.org Mon Jan 15 09:30:00 2024\n" + msg(1) + ">From here\n\n" +
		"From alice@example.org Tue Jan 16 10:00:00 2024\n" + msg(2) + ">>From twice\n\n"
	if err := os.WriteFile(mbox, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r := lb(t, nil, "", "import", "--user", "bob@example.com", mbox, d)
	expectCode(t, r, 0, "import mbox")
	if !strings.Contains(r.stdout, "imported 2 messages") {
		t.Errorf("import summary: %q", r.stdout)
	}
	msgs, bodies := mailbox(t, data, "bob@example.com", "INBOX")
	if len(msgs) != 2 {
		t.Fatalf("INBOX holds %d messages, want 2", len(msgs))
	}
	if string(bodies[0]) != crlf(msg(1)+"From here\n") || string(bodies[1]) != crlf(msg(2)+">From twice\n") {
		t.Errorf("imported mbox messages: %q", bodies)
	}
	if want := time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC); !msgs[0].InternalDate.Equal(want) {
		t.Errorf("INTERNALDATE %v, want the From line's %v", msgs[0].InternalDate, want)
	}

	md := filepath.Join(src, "Maildir")
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"cur/1705311001.M2P1.host:2,SF": msg(4),
		"new/1705311000.M1P1.host":      msg(3),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(md, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r = lb(t, nil, "", "import", "--user", "bob@example.com", "--mailbox", "Archive/2024", md, d)
	expectCode(t, r, 0, "import Maildir")
	msgs, bodies = mailbox(t, data, "bob@example.com", "Archive/2024")
	if len(msgs) != 2 || string(bodies[0]) != crlf(msg(3)) || string(bodies[1]) != crlf(msg(4)) {
		t.Fatalf("imported Maildir (in delivery order): %q", bodies)
	}
	if len(msgs[0].Flags) != 0 || !msgs[1].HasFlag(store.FlagSeen) || !msgs[1].HasFlag(store.FlagFlagged) {
		t.Errorf("flags: %v and %v, want none and \\Seen \\Flagged", msgs[0].Flags, msgs[1].Flags)
	}

	expectCode(t, lb(t, nil, "", "import", "--user", "nobody@example.com", mbox, d), exitNoUser, "import for an unknown user")
	expectCode(t, lb(t, nil, "", "import", "--user", "bob@example.com", filepath.Join(src, "missing"), d), exitNoInput, "import of a missing path")
}

// TestConfigPrecedence: flag over environment over file, for the data directory.
func TestConfigPrecedence(t *testing.T) {
	fileData, envData, flagData := t.TempDir(), t.TempDir(), t.TempDir()
	conf := filepath.Join(t.TempDir(), "letterbox.yaml")
	if err := os.WriteFile(conf, []byte("data: "+fileData+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user string
		env  []string
		args []string
		want string
	}{
		{"from-file", nil, []string{"--config", conf}, fileData},
		{"from-env", []string{"LETTERBOX_DATA=" + envData}, []string{"--config", conf}, envData},
		{"from-flag", []string{"LETTERBOX_DATA=" + envData}, []string{"--config", conf, "--data", flagData}, flagData},
	}
	for _, c := range cases {
		args := append([]string{"user", "add", c.user, "--password", "pw"}, c.args...)
		expectCode(t, lb(t, c.env, "", args...), 0, "user add "+c.user)
	}
	for _, c := range cases {
		list := lb(t, nil, "", "user", "list", "--data", c.want)
		lines := strings.Split(strings.TrimSpace(list.stdout), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], c.user+" ") {
			t.Errorf("%s: data directory %s lists:\n%s", c.user, c.want, list.stdout)
		}
	}
	if r := lb(t, nil, "", "user", "list", "--config", filepath.Join(t.TempDir(), "missing.yaml")); r.code != exitConfig {
		t.Errorf("a missing --config file: exit %d, want %d", r.code, exitConfig)
	}
}

var listening = regexp.MustCompile(`msg=listening protocol=(\w+) addr=127\.0\.0\.1:(\d+)`)

// TestServe runs `serve` with every port 0, reads the listening lines, talks to each
// listener, and checks that SIGTERM ends it with status 0.
func TestServe(t *testing.T) {
	data := t.TempDir()
	cmd := exec.Command(binary, "serve", "--data", data, "--demo", "--tls-self-signed",
		"--imap-addr", "127.0.0.1:0", "--imaps-addr", "127.0.0.1:0", "--pop3-addr", "127.0.0.1:0",
		"--pop3s-addr", "127.0.0.1:0", "--lmtp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()

	ports := map[string]string{}
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	for len(ports) < 6 && sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			ports[m[1]] = "127.0.0.1:" + m[2]
		}
	}
	go func() {
		io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()
	for _, p := range []string{"imap", "imaps", "pop3", "pop3s", "lmtp", "http"} {
		if ports[p] == "" {
			t.Fatalf("no listening line for %s in:\n%s", p, log.String())
		}
	}
	// The binary is the build that ships: the Makefile's sqlite_fts5 tag gives SEARCH its
	// full-text index, and the store says at open when it has none.
	if strings.Contains(testBuildTags(), "sqlite_fts5") && strings.Contains(log.String(), "without FTS5") {
		t.Errorf("the binary under test was built without FTS5, unlike make build:\n%s", log.String())
	}

	for proto, want := range map[string]string{"imap": "* OK", "pop3": "+OK", "lmtp": "220 "} {
		c, err := net.Dial("tcp", ports[proto])
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.HasPrefix(line, want) {
			t.Errorf("%s greeting: %q, %v", proto, line, err)
		}
	}
	resp, err := http.Get("http://" + ports["http"] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz: %s", resp.Status)
	}

	// An idle LMTP session must not hold up the shutdown.
	idle, err := net.Dial("tcp", ports["lmtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second): // a hang guard, not a timing check
		t.Fatal("serve did not exit after SIGTERM")
	}

	msgs, _ := mailbox(t, data, "demo@localhost", "INBOX")
	if len(msgs) != 4 {
		t.Errorf("--demo: INBOX holds %d messages, want 4", len(msgs))
	}
}
