package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/store"
)

var ctx = context.Background()

const msg = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Hello\r\n" +
	"Message-ID: <hello@example.org>\r\n\r\nHi Bob!\r\n"

// env is an API over a fresh store, served by httptest on loopback.
type env struct {
	t     *testing.T
	st    *store.Store
	srv   *httptest.Server
	token string
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st, err := store.Open(t.TempDir(), store.Options{
		Logger: slog.New(slog.DiscardHandler),
		Now:    func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts.Store = st
	if opts.Folders == nil {
		opts.Folders = config.Folders{Sent: "Sent", Drafts: "Drafts", Trash: "Trash", Junk: "Junk", Archive: "Archives"}.Store()
	}
	mux := http.NewServeMux()
	if err := Register(mux, opts); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, st: st, srv: srv, token: opts.Token}
}

// request sends a request with the env's token and returns the answer, its body read.
func (e *env) request(method, path, contentType string, body string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, raw
}

// do sends a request and decodes a JSON answer into out (if not nil); it returns the status.
func (e *env) do(method, path, contentType string, body string, out any) int {
	e.t.Helper()
	resp, raw := e.request(method, path, contentType, body)
	if resp.StatusCode != http.StatusNoContent {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			e.t.Errorf("%s %s: %d with Content-Type %q, want application/json", method, path, resp.StatusCode, ct)
		}
	}
	if resp.StatusCode >= 400 {
		var eb Error
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error == "" {
			e.t.Errorf("%s %s: %d with a body that is not a JSON error: %q", method, path, resp.StatusCode, raw)
		}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

func (e *env) createUser(address string) User {
	e.t.Helper()
	var u User
	if code := e.do("POST", "/api/v1/users", "application/json",
		`{"address":"`+address+`","password":"secret"}`, &u); code != http.StatusCreated {
		e.t.Fatalf("create %s: %d", address, code)
	}
	return u
}

func (e *env) deliver(address, mailboxQuery, message string) Delivered {
	e.t.Helper()
	var d Delivered
	if code := e.do("POST", "/api/v1/users/"+address+"/messages"+mailboxQuery, "message/rfc822", message, &d); code != http.StatusCreated {
		e.t.Fatalf("deliver to %s%s: %d", address, mailboxQuery, code)
	}
	return d
}

func TestAuthorization(t *testing.T) {
	for _, tc := range []struct {
		name           string
		token          string
		openOnLoopback bool
		header         string
		remote         string
		want           int
	}{
		{"no token configured", "", false, "", "127.0.0.1:5000", http.StatusUnauthorized},
		{"testing mode on loopback", "", true, "", "127.0.0.1:5000", http.StatusOK},
		{"testing mode on IPv6 loopback", "", true, "", "[::1]:5000", http.StatusOK},
		{"testing mode from elsewhere", "", true, "", "192.0.2.1:5000", http.StatusUnauthorized},
		{"token missing", "t0ken", true, "", "127.0.0.1:5000", http.StatusUnauthorized},
		{"token wrong", "t0ken", false, "Bearer t0ke", "127.0.0.1:5000", http.StatusUnauthorized},
		{"token in another scheme", "t0ken", false, "Basic t0ken", "127.0.0.1:5000", http.StatusUnauthorized},
		{"token right", "t0ken", false, "Bearer t0ken", "192.0.2.1:5000", http.StatusOK},
		{"scheme case-insensitive", "t0ken", false, "bearer t0ken", "192.0.2.1:5000", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			mux := http.NewServeMux()
			if err := Register(mux, Options{Store: st, Token: tc.token, OpenOnLoopback: tc.openOnLoopback}); err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/api/v1/users", nil)
			req.RemoteAddr, req.Host = tc.remote, "127.0.0.1:8080"
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("status %d, want %d (%s)", rec.Code, tc.want, rec.Body)
			}
			if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// TestOpenOnLoopbackIsLocalOnly: serve --testing opens the API without a token to this
// machine only. A web page elsewhere must not reach it through the developer's browser by
// re-pointing its own name at 127.0.0.1 (DNS rebinding), nor through a proxy on this host.
func TestOpenOnLoopbackIsLocalOnly(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mux := http.NewServeMux()
	if err := Register(mux, Options{Store: st, OpenOnLoopback: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, forwardedFor string
		want               int
	}{
		{"127.0.0.1:8080", "", http.StatusOK},
		{"[::1]:8080", "", http.StatusOK},
		{"localhost:8080", "", http.StatusOK},
		{"app.localhost", "", http.StatusOK}, // RFC 6761 §6.3: never resolved by DNS
		{"evil.example:8080", "", http.StatusUnauthorized},
		{"127.0.0.1.nip.io:8080", "", http.StatusUnauthorized},
		{"127.0.0.1:8080", "192.0.2.1", http.StatusUnauthorized},
	} {
		req := httptest.NewRequest("GET", "/api/v1/users", nil)
		req.RemoteAddr, req.Host = "127.0.0.1:5000", tc.host
		if tc.forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", tc.forwardedFor)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Host %s, X-Forwarded-For %q: status %d, want %d (%s)", tc.host, tc.forwardedFor, rec.Code, tc.want, rec.Body)
		}
	}
}

func TestRegisterRejectsBadUIDLFormat(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := Register(http.NewServeMux(), Options{Store: st, UIDLFormat: "%v"}); err == nil {
		t.Error("Register accepted a UIDL format without %u")
	}
}

func TestUsers(t *testing.T) {
	e := newEnv(t, Options{Token: "t"})
	u := e.createUser("Bob@Example.NET")
	if u.Address != "bob@example.net" || u.Quota != 0 {
		t.Errorf("created %+v", u)
	}
	var q User
	if code := e.do("POST", "/api/v1/users", "application/json",
		`{"address":"carol","password":"x","quota":"1K"}`, &q); code != http.StatusCreated || q.Quota != 1024 {
		t.Errorf("quota \"1K\": %d %+v", code, q)
	}
	if code := e.do("POST", "/api/v1/users", "application/json",
		`{"address":"dave","password":"x","quota":2048}`, &q); code != http.StatusCreated || q.Quota != 2048 {
		t.Errorf("quota 2048: %d %+v", code, q)
	}
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"address":"bob@example.net","password":"again"}`, http.StatusConflict},
		{`{"address":"","password":"x"}`, http.StatusBadRequest},
		{`{"address":"a b","password":"x"}`, http.StatusBadRequest},
		{`{"address":"eve","password":""}`, http.StatusBadRequest},
		{`{"address":"eve","password":"x","quota":"lots"}`, http.StatusBadRequest},
		{`{"address":"eve","password":"x","quota":-1}`, http.StatusBadRequest},
		{`{"address":"eve","password":"x","admin":true}`, http.StatusBadRequest},
		{`not json`, http.StatusBadRequest},
	} {
		if code := e.do("POST", "/api/v1/users", "application/json", tc.body, nil); code != tc.want {
			t.Errorf("POST %s: %d, want %d", tc.body, code, tc.want)
		}
	}
	if _, err := e.st.Authenticate(ctx, "bob@example.net", "secret"); err != nil {
		t.Errorf("the created user cannot log in: %v", err)
	}

	var list UserList
	if code := e.do("GET", "/api/v1/users", "", "", &list); code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	var names []string
	for _, u := range list.Users {
		names = append(names, u.Address)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"bob@example.net", "carol", "dave"}) {
		t.Errorf("users %v", names)
	}

	if code := e.do("DELETE", "/api/v1/users/carol", "", "", nil); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code := e.do("DELETE", "/api/v1/users/carol", "", "", nil); code != http.StatusNotFound {
		t.Errorf("delete again: %d", code)
	}
	if _, err := e.st.LookupAccount(ctx, "carol"); err == nil {
		t.Error("carol still exists")
	}
}

func TestDeliverAndList(t *testing.T) {
	e := newEnv(t, Options{Token: "t"})
	e.createUser("bob@example.net")
	d := e.deliver("bob@example.net", "", strings.ReplaceAll(msg, "\r\n", "\n"))
	inbox, err := e.st.MailboxByName(ctx, mustAccount(t, e.st, "bob@example.net"), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	wantUIDL, _ := maildrop.FormatUIDL("", 1, inbox.UIDValidity)
	if d.Mailbox != "INBOX" || d.UID != 1 || d.UIDValidity != inbox.UIDValidity || d.UIDL != wantUIDL || d.Size != int64(len(msg)) {
		t.Errorf("delivered %+v, want uid 1, uidvalidity %d, uidl %s, size %d", d, inbox.UIDValidity, wantUIDL, len(msg))
	}
	// curl --data-binary sends x-www-form-urlencoded: taken as the message all the same.
	d2 := e.deliver("bob@example.net", "", msg)
	if d2.UID != 2 {
		t.Errorf("second delivery: uid %d", d2.UID)
	}
	sent := e.deliver("bob@example.net", "?mailbox=Sent", msg)
	if sent.Mailbox != "Sent" || sent.UID != 1 || sent.UIDL != "" {
		t.Errorf("delivered to Sent: %+v (no UIDL outside INBOX)", sent)
	}
	for _, tc := range []struct {
		path, ct, body string
		want           int
	}{
		{"/api/v1/users/nobody/messages", "message/rfc822", msg, http.StatusNotFound},
		{"/api/v1/users/bob@example.net/messages?mailbox=Nope", "message/rfc822", msg, http.StatusNotFound},
		{"/api/v1/users/bob@example.net/messages", "application/json", `{"raw":"..."}`, http.StatusUnsupportedMediaType},
		{"/api/v1/users/bob@example.net/messages", "message/rfc822", "", http.StatusUnprocessableEntity},
		// New mail beyond the store's content limits (default: 64 levels of nesting).
		{"/api/v1/users/bob@example.net/messages", "message/rfc822", strings.Repeat("Content-Type: message/rfc822\r\n\r\n", 65) + "Subject: x\r\n\r\nx\r\n", http.StatusUnprocessableEntity},
	} {
		if code := e.do("POST", tc.path, tc.ct, tc.body, nil); code != tc.want {
			t.Errorf("POST %s (%s): %d, want %d", tc.path, tc.ct, code, tc.want)
		}
	}

	var mbs MailboxList
	if code := e.do("GET", "/api/v1/users/bob@example.net/mailboxes", "", "", &mbs); code != http.StatusOK {
		t.Fatalf("mailboxes: %d", code)
	}
	if len(mbs.Mailboxes) == 0 || mbs.Mailboxes[0].Name != "INBOX" {
		t.Errorf("mailboxes %+v: INBOX not first", mbs.Mailboxes)
	}
	got := map[string]Mailbox{}
	for _, m := range mbs.Mailboxes {
		got[m.Name] = m
	}
	if in := got["INBOX"]; in.Messages != 2 || in.Unseen != 2 || in.UIDNext != 3 || in.UIDValidity != inbox.UIDValidity {
		t.Errorf("INBOX %+v", in)
	}
	if s := got["Sent"]; s.SpecialUse != store.SpecialSent || s.Messages != 1 {
		t.Errorf("Sent %+v", s)
	}
	if len(got) != 6 {
		t.Errorf("%d mailboxes, want INBOX and 5 default folders", len(got))
	}
	if code := e.do("GET", "/api/v1/users/nobody/mailboxes", "", "", nil); code != http.StatusNotFound {
		t.Errorf("mailboxes of nobody: %d", code)
	}

	if _, err := e.st.SetFlags(ctx, inbox.ID, []uint32{1}, store.FlagsAdd, []string{store.FlagSeen, "$Work"}); err != nil {
		t.Fatal(err)
	}
	var ml MessageList
	if code := e.do("GET", "/api/v1/users/bob@example.net/mailboxes/INBOX/messages", "", "", &ml); code != http.StatusOK {
		t.Fatalf("messages: %d", code)
	}
	if ml.Mailbox != "INBOX" || ml.UIDValidity != inbox.UIDValidity || len(ml.Messages) != 2 {
		t.Fatalf("messages %+v", ml)
	}
	m := ml.Messages[0]
	if m.UID != 1 || m.UIDL != wantUIDL || !slices.Equal(m.Flags, []string{store.FlagSeen, "$Work"}) ||
		m.Size != int64(len(msg)) || m.Subject != "Hello" || m.From != "Alice <alice@example.org>" ||
		m.MessageID != "<hello@example.org>" || !m.InternalDate.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("message 1: %+v", m)
	}
	if ml.Messages[1].Flags == nil || len(ml.Messages[1].Flags) != 0 {
		t.Errorf("message 2 flags %#v, want []", ml.Messages[1].Flags)
	}
	var sl MessageList
	if code := e.do("GET", "/api/v1/users/bob@example.net/mailboxes/Sent/messages", "", "", &sl); code != http.StatusOK ||
		len(sl.Messages) != 1 || sl.Messages[0].UIDL != "" {
		t.Errorf("Sent messages: %d %+v (no UIDL outside INBOX)", code, sl)
	}
	if code := e.do("GET", "/api/v1/users/bob@example.net/mailboxes/Nope/messages", "", "", nil); code != http.StatusNotFound {
		t.Errorf("messages of a missing mailbox: %d", code)
	}
}

func mustAccount(t *testing.T, st *store.Store, address string) int64 {
	t.Helper()
	a, err := st.LookupAccount(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// TestUIDLFollowsPOP3 checks that the API shows a UIDL for exactly the messages a POP3
// session lists, in the configured format.
func TestUIDLFollowsPOP3(t *testing.T) {
	e := newEnv(t, Options{Token: "t", UIDLFormat: "%v.%u", DeleteMode: maildrop.DeleteKeepFlagged})
	e.createUser("bob")
	e.deliver("bob", "", msg)
	d := e.deliver("bob", "", msg)
	e.deliver("bob", "", msg)
	if want := itoa(d.UIDValidity) + ".2"; d.UIDL != want {
		t.Errorf("UIDL %q, want %q", d.UIDL, want)
	}
	inbox, _ := e.st.MailboxByName(ctx, mustAccount(t, e.st, "bob"), "INBOX")
	e.st.SetFlags(ctx, inbox.ID, []uint32{1}, store.FlagsAdd, []string{store.FlagDeleted})
	e.st.SetFlags(ctx, inbox.ID, []uint32{2}, store.FlagsAdd, []string{maildrop.HiddenKeyword})
	var ml MessageList
	e.do("GET", "/api/v1/users/bob/mailboxes/INBOX/messages", "", "", &ml)
	var uidls []string
	for _, m := range ml.Messages {
		uidls = append(uidls, m.UIDL)
	}
	if want := []string{"", "", itoa(d.UIDValidity) + ".3"}; !slices.Equal(uidls, want) {
		t.Errorf("UIDLs %q, want %q", uidls, want)
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func TestMailboxNameWithSlash(t *testing.T) {
	e := newEnv(t, Options{Token: "t"})
	e.createUser("bob")
	if _, err := e.st.CreateMailbox(ctx, mustAccount(t, e.st, "bob"), "Work/2024", ""); err != nil {
		t.Fatal(err)
	}
	d := e.deliver("bob", "?mailbox=Work%2F2024", msg)
	if d.Mailbox != "Work/2024" || d.UID != 1 {
		t.Errorf("delivered %+v", d)
	}
	var ml MessageList
	if code := e.do("GET", "/api/v1/users/bob/mailboxes/Work%2F2024/messages", "", "", &ml); code != http.StatusOK ||
		ml.Mailbox != "Work/2024" || len(ml.Messages) != 1 {
		t.Errorf("Work/2024: %d %+v", code, ml)
	}
}

func TestRawMessage(t *testing.T) {
	e := newEnv(t, Options{Token: "t"})
	e.createUser("bob")
	e.deliver("bob", "", strings.ReplaceAll(msg, "\r\n", "\n"))
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/users/bob/mailboxes/INBOX/messages/1/raw", nil)
	req.Header.Set("Authorization", "Bearer t")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "message/rfc822" || !bytes.Equal(raw, []byte(msg)) {
		t.Errorf("raw: %d %s %q, want the CRLF message", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	for path, want := range map[string]int{
		"/api/v1/users/bob/mailboxes/INBOX/messages/2/raw":    http.StatusNotFound,
		"/api/v1/users/bob/mailboxes/INBOX/messages/x/raw":    http.StatusBadRequest,
		"/api/v1/users/bob/mailboxes/INBOX/messages/0/raw":    http.StatusBadRequest,
		"/api/v1/users/bob/mailboxes/Nope/messages/1/raw":     http.StatusNotFound,
		"/api/v1/users/nobody/mailboxes/INBOX/messages/1/raw": http.StatusNotFound,
	} {
		if code := e.do("GET", path, "", "", nil); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
}

func TestResetUser(t *testing.T) {
	e := newEnv(t, Options{Token: "t"})
	e.createUser("bob")
	e.createUser("carol")
	id := mustAccount(t, e.st, "bob")
	for _, name := range []string{"Projects", "Projects/Old", "Sent/2023"} {
		if _, err := e.st.CreateMailbox(ctx, id, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.DeleteMailbox(ctx, id, "Trash"); err != nil {
		t.Fatal(err)
	}
	e.deliver("bob", "", msg)
	e.deliver("bob", "", msg)
	e.deliver("bob", "?mailbox=Projects%2FOld", msg)
	e.deliver("bob", "?mailbox=Sent", msg)
	e.deliver("carol", "", msg)
	inboxBefore, _ := e.st.MailboxByName(ctx, id, "INBOX")

	var res UserReset
	if code := e.do("POST", "/api/v1/users/bob/reset", "", "", &res); code != http.StatusOK {
		t.Fatalf("reset: %d", code)
	}
	if res != (UserReset{Messages: 4, Deleted: 3, Created: 1}) {
		t.Errorf("reset answered %+v", res)
	}
	mbs, err := e.st.Mailboxes(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mb := range mbs {
		names = append(names, mb.Name)
		st, _ := e.st.Status(ctx, mb.ID)
		if st.Messages != 0 {
			t.Errorf("%s still has %d messages", mb.Name, st.Messages)
		}
	}
	slices.Sort(names)
	if want := []string{"Archives", "Drafts", "INBOX", "Junk", "Sent", "Trash"}; !slices.Equal(names, want) {
		t.Errorf("mailboxes after reset %v, want %v", names, want)
	}
	// UIDs go on in a kept mailbox: its UIDVALIDITY did not change.
	if d := e.deliver("bob", "", msg); d.UID != 3 || d.UIDValidity != inboxBefore.UIDValidity {
		t.Errorf("delivery after reset: %+v", d)
	}
	if a, _ := e.st.LookupAccount(ctx, "carol"); a.Messages != 1 {
		t.Errorf("carol lost mail: %d messages", a.Messages)
	}
	if code := e.do("POST", "/api/v1/users/nobody/reset", "", "", nil); code != http.StatusNotFound {
		t.Errorf("reset nobody: %d", code)
	}
}

func TestResetAll(t *testing.T) {
	e := newEnv(t, Options{Token: "t"})
	e.createUser("bob")
	e.createUser("carol")
	e.deliver("bob", "", msg)
	var res AllReset
	if code := e.do("POST", "/api/v1/reset", "", "", &res); code != http.StatusOK || res != (AllReset{Users: 2, Messages: 1}) {
		t.Errorf("reset: %d %+v", code, res)
	}
	accts, err := e.st.Accounts(ctx)
	if err != nil || len(accts) != 0 {
		t.Errorf("accounts after reset: %v %v", accts, err)
	}
}

func TestUnknownEndpoint(t *testing.T) {
	e := newEnv(t, Options{Token: "t"})
	if code := e.do("GET", "/api/v1/nothing", "", "", nil); code != http.StatusNotFound {
		t.Errorf("unknown endpoint: %d", code)
	}
	e.token = ""
	if code := e.do("GET", "/api/v1/nothing", "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("unknown endpoint without a token: %d (must not tell what exists)", code)
	}
}

func TestJSONIsNotHTMLEscaped(t *testing.T) {
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, Message{MessageID: "<id@host>", Flags: []string{}})
	if body := rec.Body.String(); !strings.Contains(body, `"message_id": "<id@host>"`) {
		t.Errorf("body %s", body)
	}
}
