package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// Implicit TLS: the POP3 and IMAP traces go on decrypted, and the registry knows both
// sessions while they are open.
func TestTracesOverImplicitTLS(t *testing.T) {
	cfg := testConfig(t)
	cfg.Trace.Dir = filepath.Join(t.TempDir(), "traces") // created by Start
	srv := start(t, cfg, io.Discard)
	if _, err := srv.st.CreateAccount(context.Background(), store.NewAccount{Address: "bob@example.net", Password: "tls-only-pw"}); err != nil {
		t.Fatal(err)
	}
	dial := func(name string) (*tls.Conn, *bufio.Reader) {
		t.Helper()
		c, err := tls.Dial("tcp", srv.Addr(name).String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		r.ReadString('\n') // greeting
		return c, r
	}
	// until reads lines up to one starting with prefix.
	until := func(r *bufio.Reader, prefix string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(line, prefix) {
				return
			}
		}
	}

	pop, pr := dial(POP3S)
	fmt.Fprint(pop, "USER bob@example.net\r\nPASS tls-only-pw\r\n")
	until(pr, "+OK maildrop")
	imap, ir := dial(IMAPS)
	fmt.Fprint(imap, "a LOGIN bob@example.net tls-only-pw\r\nb SELECT INBOX\r\n")
	until(ir, "b OK")

	live := srv.Sessions().List()
	if len(live) != 2 {
		t.Fatalf("live sessions: %+v", live)
	}
	for _, s := range live {
		if !s.TLS || s.User != "bob@example.net" || s.Trace == "" || (s.Protocol == "imap") != (s.Mailbox == "INBOX") {
			t.Errorf("live session: %+v", s)
		}
	}

	fmt.Fprint(pop, "QUIT\r\n")
	until(pr, "+OK")
	pop.Close()
	fmt.Fprint(imap, "c LOGOUT\r\n")
	until(ir, "c OK")
	imap.Close()

	traces := map[string]string{}
	for _, s := range live {
		path := filepath.Join(cfg.Trace.Dir, s.Trace)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "\n# end: ") {
				traces[s.Protocol] = string(b)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not end:\n%s", s.Trace, b)
			}
		}
	}
	for proto, text := range traces {
		if strings.Contains(text, "tls-only-pw") || !strings.Contains(text, "# tls: implicit") ||
			!strings.Contains(text, " -- user bob@example.net\n") {
			t.Errorf("%s trace:\n%s", proto, text)
		}
	}
	for _, want := range []string{"-- TLS established (TLS 1.3); the decrypted stream follows\n",
		" C: USER bob@example.net\n", " C: PASS ****\n", " C: QUIT\n"} {
		if !strings.Contains(traces["pop3"], want) {
			t.Errorf("the POP3S trace lacks %q:\n%s", want, traces["pop3"])
		}
	}
	// IMAP does its own TLS handshake too (internal/protocol/imap/starttls.go): traced decrypted.
	for _, want := range []string{"-- TLS established (TLS 1.3); the decrypted stream follows\n",
		" C: a LOGIN bob@example.net ****\n", " -- mailbox INBOX\n", " C: c LOGOUT\n"} {
		if !strings.Contains(traces["imap"], want) {
			t.Errorf("the IMAPS trace lacks %q:\n%s", want, traces["imap"])
		}
	}
	if n := len(srv.Sessions().List()); n != 0 {
		t.Errorf("%d sessions registered after both closed", n)
	}
	if fi, err := os.Stat(cfg.Trace.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("trace.dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
}

// The inspector's sessions and transcripts pages show the registry and trace.dir.
func TestInspectorShowsSessionsAndTraces(t *testing.T) {
	cfg := testConfig(t)
	cfg.Trace.Dir = t.TempDir()
	cfg.Inspector.Enabled = true
	srv := start(t, cfg, io.Discard)
	if _, err := srv.st.CreateAccount(context.Background(), store.NewAccount{Address: "bob@example.net", Password: "inspector-pw"}); err != nil {
		t.Fatal(err)
	}
	page := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + srv.Addr(HTTP).String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, b)
		}
		return string(b)
	}

	c, err := net.Dial("tcp", srv.Addr(POP3).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprint(c, "USER bob@example.net\r\nPASS inspector-pw\r\n")
	r.ReadString('\n')
	r.ReadString('\n')
	live := srv.Sessions().List()
	if len(live) != 1 {
		t.Fatalf("live sessions: %+v", live)
	}
	if p := page("/sessions"); !strings.Contains(p, "<code>"+live[0].ID+"</code></td><td>bob@example.net</td>") ||
		!strings.Contains(p, "authenticated") {
		t.Errorf("the sessions page does not show the POP3 session %+v:\n%s", live[0], p)
	}
	if p := page("/traces"); !strings.Contains(p, live[0].Trace) {
		t.Errorf("the transcripts page does not list %s:\n%s", live[0].Trace, p)
	}
	if p := page("/traces/" + live[0].Trace); !strings.Contains(p, "C: PASS ****") || strings.Contains(p, "inspector-pw") {
		t.Errorf("the transcript page:\n%s", p)
	}
}

// IMAP STARTTLS: the session goes on over TLS (internal/protocol/imap); it is one session in the registry, in the trace (decrypted after the handshake) and in
// the log (one logout line, with the bytes of the whole connection).
func TestIMAPStartTLSIsOneSession(t *testing.T) {
	cfg := testConfig(t)
	cfg.Trace.Dir = filepath.Join(t.TempDir(), "traces")
	var logs syncBuffer
	srv := start(t, cfg, &logs)
	if _, err := srv.st.CreateAccount(context.Background(), store.NewAccount{Address: "bob@example.net", Password: "starttls-pw"}); err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", srv.Addr(IMAP).String())
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(raw)
	r.ReadString('\n') // greeting
	fmt.Fprint(raw, "a STARTTLS\r\n")
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "a OK") {
		t.Fatalf("STARTTLS: %q, %v", l, err)
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	ir := bufio.NewReader(c)
	fmt.Fprint(c, "b LOGIN bob@example.net starttls-pw\r\nc SELECT INBOX\r\n")
	for {
		l, err := ir.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, "c OK") {
			break
		}
	}
	live := srv.Sessions().List()
	if len(live) != 1 || !live[0].TLS || live[0].User != "bob@example.net" || live[0].Mailbox != "INBOX" {
		t.Fatalf("live sessions after STARTTLS: %+v", live)
	}
	fmt.Fprint(c, "d LOGOUT\r\n")
	io.Copy(io.Discard, ir)
	c.Close()

	path := filepath.Join(cfg.Trace.Dir, live[0].Trace)
	var text string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if text = string(b); strings.Contains(text, "\n# end: ") || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{" C: a STARTTLS\n", "-- TLS established (", " C: b LOGIN bob@example.net ****\n",
		" S: c OK [READ-WRITE] SELECT completed\n", "\n# end: "} {
		if !strings.Contains(text, want) {
			t.Errorf("the trace lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "starttls-pw") {
		t.Errorf("the trace shows the password:\n%s", text)
	}
	for deadline := time.Now().Add(10 * time.Second); len(srv.Sessions().List()) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(srv.Sessions().List()); n != 0 {
		t.Errorf("%d sessions registered after the connection closed", n)
	}
	lines := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="imap logout"`) || strings.Contains(l, `msg="imap disconnect"`) {
			lines++
			if !strings.Contains(l, "user=bob@example.net") || strings.Contains(l, " in=0 ") {
				t.Errorf("logout line: %s", l)
			}
		}
	}
	if lines != 1 {
		t.Errorf("%d logout lines for one session across STARTTLS, want 1:\n%s", lines, logs.String())
	}
}
