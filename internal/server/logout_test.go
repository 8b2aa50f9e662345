package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// logRecords is a slog destination (a JSON handler writes one line per record) whose
// records a test can read back as maps.
type logRecords struct{ syncBuffer }

// withMsg returns the records whose message is msg, in order.
func (l *logRecords) withMsg(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// sessionsScript drives every protocol with Python's own clients: argv is the LMTP, POP3
// and IMAP ports, the user and the password.
const sessionsScript = `
import base64, imaplib, poplib, smtplib, sys
lmtp_port, pop3_port, imap_port, user, password = sys.argv[1:]
plain = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()

# IMAP: LOGIN, then SELECT, APPEND, FETCH, STORE and EXPUNGE of one message.
m = imaplib.IMAP4("127.0.0.1", int(imap_port))
m.login(user, password)
m.select("INBOX")
m.append("INBOX", None, None, b"Subject: appended\r\n\r\nbody\r\n")
typ, data = m.fetch("1", "(RFC822)")
assert typ == "OK" and b"appended" in data[0][1], data
m.store("1", "+FLAGS", "(\\Deleted)")
m.expunge()
m.logout()
# IMAP: AUTHENTICATE PLAIN, and a refused LOGIN.
m = imaplib.IMAP4("127.0.0.1", int(imap_port))
m.authenticate("PLAIN", lambda _: b"\0" + user.encode() + b"\0" + password.encode())
m.logout()
m = imaplib.IMAP4("127.0.0.1", int(imap_port))
try:
    m.login(user, "wrong-" + password)
    sys.exit("a wrong IMAP password was accepted")
except imaplib.IMAP4.error:
    pass
m.logout()

# LMTP: one message for the user and for an unknown address.
l = smtplib.LMTP("127.0.0.1", int(lmtp_port))
refused = l.sendmail("sender@example.org", [user, "nobody@mail.test"],
                     b"Subject: delivered\r\n\r\nHello.\r\n")
assert list(refused) == ["nobody@mail.test"], refused
l.quit()

# POP3: USER/PASS, RETR and DELE committed by QUIT; then AUTH PLAIN; then a wrong PASS.
p = poplib.POP3("127.0.0.1", int(pop3_port))
p.user(user)
p.pass_(password)
p.retr(1)
p.dele(1)
p.quit()
p = poplib.POP3("127.0.0.1", int(pop3_port))
p._shortcmd("AUTH PLAIN " + plain)
p.quit()
p = poplib.POP3("127.0.0.1", int(pop3_port))
p.user(user)
try:
    p.pass_("wrong-" + password)
    sys.exit("a wrong POP3 password was accepted")
except poplib.error_proto:
    pass
p.quit()
`

// runSessions starts a server logging JSON into the returned records, and runs
// sessionsScript against it as user with password.
func runSessions(t *testing.T, user, password string) (*Server, *logRecords) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is not installed (.ci/run must install it)")
		}
		t.Skip("python3 is not installed")
	}
	cfg := testConfig(t)
	logs := &logRecords{}
	srv := startLogging(t, cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if _, err := srv.st.CreateAccount(context.Background(), store.NewAccount{Address: user, Password: password}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-c", sessionsScript, port(srv, LMTP), port(srv, POP3), port(srv, IMAP), user, password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python clients: %v\n%s", err, out)
	}
	return srv, logs
}

// Every POP3, IMAP and LMTP session ends with one logout line that says who, from where,
// for how long and what the session did (as Dovecot's pop3_logout_format and
// imap_logout_format), and no line of any session carries a password, whichever way the
// client logged in (LOGIN, AUTHENTICATE PLAIN, USER/PASS, AUTH PLAIN, or a wrong password).
func TestLogoutLines(t *testing.T) {
	const user, password = "ann@mail.test", "Pw-7q!Zr-never-logged"
	_, logs := runSessions(t, user, password)

	// The lines are written as each server-side session ends, which may be just after the
	// client saw the end of its connection.
	deadline := time.Now().Add(10 * time.Second)
	for len(logs.withMsg(t, "pop3 disconnect")) < 1 || len(logs.withMsg(t, "pop3 logout")) < 2 ||
		len(logs.withMsg(t, "imap logout")) < 2 || len(logs.withMsg(t, "imap disconnect")) < 1 ||
		len(logs.withMsg(t, "lmtp disconnect")) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("logout lines missing:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	for _, secret := range []string{password, plain} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("%q reached the log:\n%s", secret, logs.String())
		}
	}

	// check compares a record's fields with want; positive and present stand for values
	// that vary from run to run (wire byte counts, durations, names).
	check := func(rec map[string]any, want map[string]any) {
		t.Helper()
		for k, v := range want {
			got, ok := rec[k]
			switch {
			case !ok:
				t.Errorf("%s: no %q in %v", rec["msg"], k, rec)
			case v == present:
			case v == positive:
				if n, _ := got.(float64); n <= 0 {
					t.Errorf("%s: %s = %v, want > 0", rec["msg"], k, got)
				}
			case fmt.Sprint(got) != fmt.Sprint(v):
				t.Errorf("%s: %s = %v, want %v", rec["msg"], k, got, v)
			}
		}
		if r, _ := rec["remote"].(string); !strings.HasPrefix(r, "127.0.0.1:") {
			t.Errorf("%s: remote = %v", rec["msg"], rec["remote"])
		}
	}

	// A session's line is written when the server has closed it, which under load may come
	// after the next session's: order the lines by what tells them apart.
	imapLines := byDescending(logs.withMsg(t, "imap logout"), "commands")
	check(imapLines[0], map[string]any{"user": user, "protocol": "imap", "duration": present, "in": positive, "out": positive,
		// LOGIN SELECT APPEND FETCH STORE EXPUNGE (LOGOUT and CAPABILITY are not counted)
		"commands": 6, "fetched": 1, "appended": 1, "expunged": 1})
	check(imapLines[1], map[string]any{"user": user, "protocol": "imap", "commands": 1,
		"fetched": 0, "appended": 0, "expunged": 0})
	check(logs.withMsg(t, "imap disconnect")[0], map[string]any{"protocol": "imap", "commands": 1, "in": positive, "out": positive})

	msg := "Subject: delivered\r\n\r\nHello.\r\n"
	check(logs.withMsg(t, "lmtp disconnect")[0], map[string]any{"protocol": "lmtp", "client": present,
		"duration": present, "in": positive, "out": positive, "messages": 1, "bytes": len(msg),
		"accepted": 1, "refused": 1, "delivered": 1})

	// The stored copy is the message with Return-Path and Delivered-To before it.
	stored := int64(len(msg) + len("Return-Path: <sender@example.org>\r\nDelivered-To: "+user+"\r\n"))
	size := strconv.FormatInt(stored, 10)
	popLines := byDescending(logs.withMsg(t, "pop3 logout"), "maildrop")
	check(popLines[0], map[string]any{"user": user, "protocol": "pop3", "duration": present, "in": positive, "out": positive,
		"retrieved": 1, "retrieved_bytes": size, "deleted": 1, "deleted_bytes": size,
		"maildrop": 1, "maildrop_bytes": size})
	check(popLines[1], map[string]any{"user": user, "retrieved": 0, "deleted": 0, "maildrop": 0, "maildrop_bytes": 0})
	check(logs.withMsg(t, "pop3 disconnect")[0], map[string]any{"protocol": "pop3", "reason": "quit", "in": positive, "out": positive})
}

// byDescending sorts log records by a numeric field, largest first.
func byDescending(recs []map[string]any, key string) []map[string]any {
	sort.SliceStable(recs, func(i, j int) bool {
		a, _ := recs[i][key].(float64)
		b, _ := recs[j][key].(float64)
		return a > b
	})
	return recs
}

type logValue int

const (
	positive logValue = iota + 1 // any number above zero
	present                      // any value at all
)

func port(srv *Server, name string) string {
	a := srv.Addr(name).String()
	return a[strings.LastIndexByte(a, ':')+1:]
}

// After the sessions of sessionsScript, /metrics counts each protocol's connections,
// commands, login failures, deliveries and bytes, and the store's write latency.
func TestMetricsByProtocol(t *testing.T) {
	srv, logs := runSessions(t, "bob@mail.test", "secret")
	// Connections are counted closed when the server side has closed them.
	deadline := time.Now().Add(10 * time.Second)
	for len(logs.withMsg(t, "pop3 disconnect")) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the last POP3 session never ended:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := scrape(t, srv)
	want := map[string]float64{
		`letterbox_connections_total{protocol="imap"}`: 3,
		`letterbox_connections_total{protocol="pop3"}`: 3,
		`letterbox_connections_total{protocol="lmtp"}`: 1,

		`letterbox_commands_total{command="login",protocol="imap"}`:        2,
		`letterbox_commands_total{command="authenticate",protocol="imap"}`: 1,
		`letterbox_commands_total{command="select",protocol="imap"}`:       1,
		`letterbox_commands_total{command="append",protocol="imap"}`:       1,
		`letterbox_commands_total{command="fetch",protocol="imap"}`:        1,
		`letterbox_commands_total{command="store",protocol="imap"}`:        1,
		`letterbox_commands_total{command="expunge",protocol="imap"}`:      1,
		`letterbox_commands_total{command="lhlo",protocol="lmtp"}`:         1,
		`letterbox_commands_total{command="mail",protocol="lmtp"}`:         1,
		`letterbox_commands_total{command="rcpt",protocol="lmtp"}`:         2,
		`letterbox_commands_total{command="data",protocol="lmtp"}`:         1,
		`letterbox_commands_total{command="user",protocol="pop3"}`:         2,
		`letterbox_commands_total{command="pass",protocol="pop3"}`:         2,
		`letterbox_commands_total{command="auth",protocol="pop3"}`:         1,
		`letterbox_commands_total{command="retr",protocol="pop3"}`:         1,
		`letterbox_commands_total{command="dele",protocol="pop3"}`:         1,
		`letterbox_commands_total{command="quit",protocol="pop3"}`:         3,

		`letterbox_login_failures_total{protocol="imap",reason="credentials"}`: 1,
		`letterbox_login_failures_total{protocol="pop3",reason="credentials"}`: 1,
		`letterbox_deliveries_total{outcome="delivered",via="lmtp"}`:           1,
		`letterbox_deliveries_total{outcome="delivered",via="append"}`:         1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, p := range []string{"imap", "pop3", "lmtp"} {
		if k := `letterbox_connections{protocol="` + p + `"}`; m[k] != 0 {
			t.Errorf("%s = %v after every session ended", k, m[k])
		}
		if k := `letterbox_bytes_sent_total{protocol="` + p + `"}`; m[k] <= 0 {
			t.Errorf("%s = %v", k, m[k])
		}
	}
	// APPEND, LMTP's copy and IMAP's EXPUNGE are store writes.
	for _, op := range []string{"deliver", "expunge"} {
		if k := `letterbox_store_operation_seconds_count{op="` + op + `"}`; m[k] < 1 {
			t.Errorf("%s = %v", k, m[k])
		}
	}
}
