package inspector

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/store"
)

var ctx = context.Background()

const plainMessage = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Hello\r\n" +
	"Message-ID: <hello@example.org>\r\n\r\nHi Bob!\r\n"

// mixedMessage has a text part, an attached message/rfc822 (itself multipart) and an
// RFC 2047 encoded subject.
const mixedMessage = "From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\r\nTo: bob@example.net\r\n" +
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=outer\r\n\r\n" +
	"--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n" +
	"--outer\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=fwd.eml\r\n\r\n" +
	"Subject: inner\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n" +
	"--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\n" +
	"--outer--\r\n"

// env is an inspector over a fresh store, served by httptest on loopback.
type env struct {
	t   *testing.T
	st  *store.Store
	in  *Inspector
	srv *httptest.Server
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts.Store = st
	in, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	in.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(in.Shutdown) // before srv.Close: no event stream keeps it waiting
	return &env{t: t, st: st, in: in, srv: srv}
}

// get fetches a path and returns the status and body.
func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// page fetches a path that must answer 200 and returns its body.
func (e *env) page(path string) string {
	e.t.Helper()
	code, body := e.get(path)
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: %d, want 200\n%s", path, code, body)
	}
	return body
}

func (e *env) account(address string, quota int64) store.Account {
	e.t.Helper()
	a, err := e.st.CreateAccount(ctx, store.NewAccount{Address: address, Password: "pw", QuotaBytes: quota})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) deliver(a store.Account, mailbox, msg string, flags ...string) store.Delivered {
	e.t.Helper()
	d, err := e.st.Deliver(ctx, a.ID, strings.NewReader(msg), store.DeliverOptions{Mailbox: mailbox, Flags: flags})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

func TestPagesRender(t *testing.T) {
	e := newEnv(t, Options{})
	alice := e.account("alice@example.org", 1<<20)
	if _, err := e.st.CreateMailbox(ctx, alice.ID, "Work/2024", ""); err != nil {
		t.Fatal(err)
	}
	in := e.deliver(alice, "INBOX", plainMessage, store.FlagSeen, "$Important")
	e.deliver(alice, "INBOX", mixedMessage)
	e.deliver(alice, "Work/2024", plainMessage, store.FlagFlagged)

	accounts := e.page("/")
	mustContain(t, "accounts page", accounts, `href="/accounts/alice@example.org"`,
		`<td class="num">3</td>`, "1M", `<meter`, `data-events="/events"`,
		`<noscript><meta http-equiv="refresh"`)

	acct := e.page("/accounts/alice@example.org")
	mustContain(t, "account page", acct, `href="/accounts/alice@example.org/folders/INBOX"`,
		`href="/accounts/alice@example.org/folders/Work%2F2024"`,
		`data-events="/events?account=alice%40example.org"`)
	if strings.Index(acct, `data-folder="INBOX"`) > strings.Index(acct, `data-folder="Archives"`) {
		t.Error("account page: INBOX is not listed first")
	}

	inbox := e.page("/accounts/alice@example.org/folders/INBOX")
	uidl, _ := maildrop.FormatUIDL("", 1, in.UIDValidity)
	mustContain(t, "INBOX page", inbox, "<code>"+uidl+"</code>", `<td class="num">2</td>`,
		`<span class="flag">\Seen</span>`, `<span class="keyword">$Important</span>`,
		"Grüße", "Jürgen &lt;j@example.de&gt;")

	work := e.page("/accounts/alice@example.org/folders/Work%2F2024")
	mustContain(t, "Work/2024 page", work, `title="POP3 sees only INBOX`, `<span class="flag">\Flagged</span>`)
	if strings.Contains(work, `class="uidl"><code>`) {
		t.Error("Work/2024 page shows a UIDL")
	}

	msg := e.page("/accounts/alice@example.org/folders/INBOX/2")
	mustContain(t, "message page", msg,
		"<code>=?utf-8?q?Gr=C3=BC=C3=9Fe?=</code>", `<div class="decoded" title="decoded (RFC 2047)">Grüße</div>`,
		"<strong>multipart/mixed</strong>", `<span class="section">1</span> <strong>text/plain</strong>`,
		`<span class="section">2</span> <strong>message/rfc822</strong>`, "attachment; filename=&#34;fwd.eml&#34;",
		`<span class="section">2.1</span> <strong>text/plain</strong>`,
		`<span class="section">2.2</span> <strong>text/html</strong>`,
		"message 2, UIDL", `href="/accounts/alice@example.org/folders/INBOX/2/raw"`)

	resp, err := e.srv.Client().Get(e.srv.URL + "/accounts/alice@example.org/folders/INBOX/1/raw")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || string(raw) != plainMessage {
		t.Errorf("raw message: %s %q, want text/plain and the stored message", ct, raw)
	}

	for path, want := range map[string]string{
		"/sessions":             "The session list is not enabled",
		"/traces":               "Wire traces are not enabled",
		"/assets/inspector.js":  "new EventSource(",
		"/assets/inspector.css": ".live-status",
	} {
		body := e.page(path)
		mustContain(t, path, body, want)
		if strings.Contains(body, "data-events") {
			t.Errorf("%s: a page with nothing to follow opens an event stream", path)
		}
	}
}

func TestFolderPagesAndPOP3Numbers(t *testing.T) {
	e := newEnv(t, Options{DeleteMode: maildrop.DeleteHide, UIDLFormat: "%u"})
	a := e.account("bob", 0)
	for range 3 {
		e.deliver(a, "", plainMessage)
	}
	// A committed POP3 DELE in the "hide" mode leaves message 2 for IMAP only.
	inbox, err := e.st.MailboxByName(ctx, a.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetFlags(ctx, inbox.ID, []uint32{2}, store.FlagsAdd, []string{maildrop.HiddenKeyword}); err != nil {
		t.Fatal(err)
	}
	body := e.page("/accounts/bob/folders/INBOX")
	row := func(uid string) string {
		i := strings.Index(body, `<tr data-uid="`+uid+`">`)
		if i < 0 {
			t.Fatalf("no row for UID %s", uid)
		}
		return body[i : i+strings.Index(body[i:], "</tr>")]
	}
	mustContain(t, "UID 1", row("1"), `<td class="num">1</td><td class="uidl"><code>1</code>`)
	mustContain(t, "UID 2", row("2"), `title="not in a POP3 session&#39;s maildrop`)
	mustContain(t, "UID 3", row("3"), `<td class="num">2</td><td class="uidl"><code>3</code>`)
	mustContain(t, "message 3", e.page("/accounts/bob/folders/INBOX/3"), "message 2, UIDL <code>3</code>")
}

// TestHostileHeadersEscaped: header values reach the page only as text.
func TestHostileHeadersEscaped(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.account("bob", 0)
	const hostile = "From: \"<img src=x onerror=alert(1)>\" <evil@example.org>\r\n" +
		"Subject: <script>alert(1)</script>\r\n" +
		"X-Attack: \"><script>alert(2)</script>\r\n" +
		"Content-Type: text/plain; name=\"<b>x</b>\"\r\n\r\nbody\r\n"
	e.deliver(a, "", hostile, "<script>")
	for _, path := range []string{"/", "/accounts/bob", "/accounts/bob/folders/INBOX", "/accounts/bob/folders/INBOX/1"} {
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		for _, raw := range []string{"<script>alert", "<img src=x", "<b>x</b>", `"><script>`} {
			if strings.Contains(body, raw) {
				t.Errorf("%s: %q appears unescaped", path, raw)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q does not restrict scripts", path, csp)
		}
	}
	mustContain(t, "message page", e.page("/accounts/bob/folders/INBOX/1"),
		"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;")
}

// TestMalformedHeader: a message whose header has a line that is no field is shown with
// the fields before it, as the store measured its header.
func TestMalformedHeader(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.account("bob", 0)
	e.deliver(a, "", "Subject: half a header\r\nX-Fine: yes\r\nthis line is no field\r\nX-Body: after it\r\n\r\nbody\r\n")
	page := e.page("/accounts/bob/folders/INBOX/1")
	mustContain(t, "message page", page, "<code>half a header</code>", `<th scope="row">X-Fine</th>`)
	if strings.Contains(page, `<th scope="row">X-Body</th>`) {
		t.Error("a line after the end of the header is shown as a field")
	}
}

func TestNotFound(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.account("bob", 0)
	e.deliver(a, "", plainMessage)
	for _, path := range []string{
		"/accounts/nobody",
		"/accounts/nobody/folders/INBOX",
		"/accounts/bob/folders/Nope",
		"/accounts/bob/folders/INBOX/2",
		"/accounts/bob/folders/INBOX/0",
		"/accounts/bob/folders/INBOX/x",
		"/accounts/bob/folders/INBOX/99999999999",
		"/accounts/bob/folders/INBOX/2/raw",
		"/traces/x",
		"/events?account=nobody",
	} {
		code, body := e.get(path)
		if code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
		if path != "/events?account=nobody" && !strings.Contains(body, `<main id="live">`) {
			t.Errorf("GET %s: not the inspector's error page", path)
		}
	}
}

func TestAccess(t *testing.T) {
	e := newEnv(t, Options{})
	guarded := newEnv(t, Options{Token: "t0ken"})
	type request struct {
		remote, host string
		header       map[string]string
		basic        string // password
	}
	send := func(in *Inspector, rq request) *httptest.ResponseRecorder {
		mux := http.NewServeMux()
		in.Register(mux)
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr, req.Host = rq.remote, rq.host
		for k, v := range rq.header {
			req.Header.Set(k, v)
		}
		if rq.basic != "" {
			req.SetBasicAuth("anyone", rq.basic)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	local := "127.0.0.1:50000"
	for _, c := range []struct {
		name string
		in   *Inspector
		rq   request
		want int
	}{
		{"loopback, no token", e.in, request{remote: local, host: "127.0.0.1:8080"}, 200},
		{"loopback IPv6 as localhost", e.in, request{remote: "[::1]:50000", host: "localhost:8080"}, 200},
		{"remote, no token configured", e.in, request{remote: "192.0.2.1:50000", host: "127.0.0.1:8080"}, 403},
		{"loopback, a foreign host name (DNS rebinding)", e.in, request{remote: local, host: "evil.example:8080"}, 403},
		{"loopback through a proxy", e.in, request{remote: local, host: "localhost",
			header: map[string]string{"X-Forwarded-For": "198.51.100.7"}}, 403},
		{"token: none sent", guarded.in, request{remote: local, host: "localhost"}, 401},
		{"token: wrong password", guarded.in, request{remote: local, host: "localhost", basic: "guess"}, 401},
		{"token: as the Basic password, from afar", guarded.in, request{remote: "192.0.2.1:1", host: "mail.example", basic: "t0ken"}, 200},
		{"token: as a bearer token", guarded.in, request{remote: "192.0.2.1:1", host: "mail.example",
			header: map[string]string{"Authorization": "Bearer t0ken"}}, 200},
	} {
		rec := send(c.in, c.rq)
		if rec.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, rec.Code, c.want)
		}
		if rec.Code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: 401 without a Basic challenge", c.name)
		}
		if rec.Code != 200 && strings.Contains(rec.Body.String(), "Accounts") {
			t.Errorf("%s: refused, but the page was sent", c.name)
		}
	}
}

// nextEvent reads the event stream up to the next event and returns its name.
func nextEvent(t *testing.T, r *bufio.Reader) (string, error) {
	t.Helper()
	name := ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return name, err
		}
		line = strings.TrimRight(line, "\n")
		if n, ok := strings.CutPrefix(line, "event: "); ok {
			name = n
		}
		if line == "" && name != "" {
			return name, nil
		}
	}
}

func openEvents(t *testing.T, e *env, path string) *bufio.Reader {
	t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, ct)
	}
	r := bufio.NewReader(resp.Body)
	if ev, err := nextEvent(t, r); ev != "change" || err != nil {
		t.Fatalf("first event %q, %v; want change at once", ev, err)
	}
	return r
}

func TestEvents(t *testing.T) {
	e := newEnv(t, Options{})
	bob := e.account("bob", 0)
	one := openEvents(t, e, "/events?account=bob")
	all := openEvents(t, e, "/events")

	e.deliver(bob, "", plainMessage)
	for name, r := range map[string]*bufio.Reader{"bob's stream": one, "the overview's": all} {
		if ev, err := nextEvent(t, r); ev != "change" || err != nil {
			t.Errorf("%s after a delivery: %q, %v", name, ev, err)
		}
	}
	e.account("carol", 0)
	if ev, err := nextEvent(t, all); ev != "change" || err != nil {
		t.Errorf("the overview's stream after a new account: %q, %v", ev, err)
	}

	// Shutdown ends open streams (the server's graceful stop must not wait for them) and
	// refuses new ones.
	e.in.Shutdown()
	for name, r := range map[string]*bufio.Reader{"bob's stream": one, "the overview's": all} {
		for {
			_, err := nextEvent(t, r)
			if errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	if code, _ := e.get("/events"); code != http.StatusServiceUnavailable {
		t.Errorf("a new stream after Shutdown: %d, want 503", code)
	}
}

type fakeSessions []Session

func (f fakeSessions) Sessions() []Session { return f }

type fakeTraces struct {
	traces []Trace
	text   map[string]string
	opened []string
}

func (f *fakeTraces) Traces() ([]Trace, error) { return f.traces, nil }

func (f *fakeTraces) OpenTrace(name string) (io.ReadCloser, error) {
	f.opened = append(f.opened, name)
	return io.NopCloser(strings.NewReader(f.text[name])), nil
}

func TestSessionsAndTraces(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	traces := &fakeTraces{
		traces: []Trace{
			{Name: "older.log", Protocol: "pop3", User: "bob", Started: t0, Size: 10},
			{Name: "newer.log", Protocol: "imap", User: "<b>bob</b>", Started: t0.Add(time.Minute), Size: 20},
		},
		text: map[string]string{"newer.log": "S: * OK ready\r\nC: a LOGIN bob ****\r\nS: <script>x</script>\r\n"},
	}
	e := newEnv(t, Options{
		Sessions: fakeSessions{
			{Protocol: "pop3", ID: "p1", User: "bob", Remote: "127.0.0.1:4000", Started: t0, State: "transaction", Mailbox: "INBOX"},
			{Protocol: "imap", ID: "i1", User: "<i>alice</i>", Remote: "127.0.0.1:4001", Started: t0, State: "idle", Mailbox: "Work"},
		},
		Traces: traces,
	})
	sessions := e.page("/sessions")
	mustContain(t, "sessions page", sessions, "2 open now", `data-protocol="imap"`, `data-protocol="pop3"`,
		"<code>p1</code>", "&lt;i&gt;alice&lt;/i&gt;", `data-events="/events?activity=1"`)
	if strings.Index(sessions, `data-protocol="imap"`) > strings.Index(sessions, `data-protocol="pop3"`) {
		t.Error("sessions page: IMAP is not first")
	}
	list := e.page("/traces")
	mustContain(t, "traces page", list, `href="/traces/newer.log"`, `href="/traces/older.log"`, "&lt;b&gt;bob&lt;/b&gt;")
	if strings.Index(list, "newer.log") > strings.Index(list, "older.log") {
		t.Error("traces page: not newest first")
	}
	mustContain(t, "a transcript", e.page("/traces/newer.log"), "C: a LOGIN bob ****", "S: &lt;script&gt;x&lt;/script&gt;")
	for _, name := range []string{"nope.log", "..%2F..%2Fetc%2Fpasswd"} {
		if code, _ := e.get("/traces/" + name); code != http.StatusNotFound {
			t.Errorf("GET /traces/%s: %d, want 404", name, code)
		}
	}
	if len(traces.opened) != 1 || traces.opened[0] != "newer.log" {
		t.Errorf("OpenTrace called with %q; want only listed names", traces.opened)
	}
}

func TestPartTreeNumbering(t *testing.T) {
	text := store.Part{Type: "text", Subtype: "plain"}
	single := partTree(text, "")
	if single.Section != "1" {
		t.Errorf("single-part message: section %q, want 1", single.Section)
	}
	// message/rfc822 enclosing a single part, inside a multipart.
	m := store.Part{Type: "multipart", Subtype: "mixed", Children: []store.Part{
		text,
		{Type: "message", Subtype: "rfc822", Message: &store.Part{Type: "message", Subtype: "rfc822", Message: &text}},
	}}
	got := partTree(m, "")
	var sections []string
	var walk func(n partNode)
	walk = func(n partNode) {
		sections = append(sections, n.Section+" "+n.Type)
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(got)
	want := " multipart/mixed|1 text/plain|2 message/rfc822|2.1 message/rfc822|2.1.1 text/plain"
	if strings.Join(sections, "|") != want {
		t.Errorf("sections %s, want %s", strings.Join(sections, "|"), want)
	}
}
