package imap

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/letterbox-mail/letterbox/internal/auth"
)

func TestCapabilities(t *testing.T) {
	e := newEnv(t)
	c := e.raw()
	before := c.ok("CAPABILITY")
	for _, want := range []string{"IMAP4rev1", "AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR"} {
		if !strings.Contains(before[0], " "+want) {
			t.Errorf("CAPABILITY before login lacks %s: %q", want, before[0])
		}
	}
	if strings.Contains(before[0], "LOGINDISABLED") || strings.Contains(before[0], "STARTTLS") {
		t.Errorf("loopback without TLS config: %q", before[0])
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	after := c.ok("CAPABILITY")[0]
	for _, want := range []string{"IMAP4rev1", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "SPECIAL-USE",
		"UNSELECT", "ENABLE", "LITERAL+", "ESEARCH", "SEARCHRES", "LIST-EXTENDED", "LIST-STATUS",
		"STATUS=SIZE", "BINARY", "CHILDREN", "CREATE-SPECIAL-USE", "APPENDLIMIT=52428800",
		"CONDSTORE", "QRESYNC", "QUOTA", "QUOTA=RES-STORAGE"} {
		if !strings.Contains(after+" ", " "+want+" ") {
			t.Errorf("CAPABILITY after login lacks %s: %q", want, after)
		}
	}
	for _, not := range []string{"AUTH=", "QUOTASET"} {
		if strings.Contains(after, not) {
			t.Errorf("CAPABILITY after login announces %s: %q", not, after)
		}
	}
}

func TestLoginFailure(t *testing.T) {
	e := newEnv(t)
	c := e.raw()
	if _, status := c.cmd(`LOGIN %q "wrong"`, testUser); !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
		t.Errorf("wrong password: %s", status)
	}
	if _, status := c.cmd(`LOGIN "nobody@example.com" "x"`); !strings.HasPrefix(status, "NO") {
		t.Errorf("unknown user: %s", status)
	}
	if _, status := c.cmd("SELECT INBOX"); !strings.HasPrefix(status, "BAD") && !strings.HasPrefix(status, "NO") {
		t.Errorf("SELECT before login: %s", status)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	c.ok("NOOP")
}

func TestPlaintextNeverAllowed(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *mailStore) {
		o.Auth.Plaintext = auth.PlaintextPolicy{Never: true}
	})
	c := e.raw()
	caps := c.ok("CAPABILITY")[0]
	if !strings.Contains(caps, "LOGINDISABLED") || strings.Contains(caps, "AUTH=") {
		t.Errorf("CAPABILITY where plaintext is refused: %q", caps)
	}
	if _, status := c.cmd(`LOGIN %q %q`, testUser, testPassword); !strings.HasPrefix(status, "NO [PRIVACYREQUIRED]") {
		t.Errorf("LOGIN where plaintext is refused: %s", status)
	}
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t)

	// PLAIN with an initial response (SASL-IR, RFC 4959).
	c := e.raw()
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPassword))
	c.ok("AUTHENTICATE PLAIN %s", ir)
	c.ok("SELECT INBOX")

	// LOGIN, challenge by challenge.
	c = e.raw()
	c.send("A1 AUTHENTICATE LOGIN")
	if l := c.line(); l != "+ "+base64.StdEncoding.EncodeToString([]byte("Username:")) {
		t.Fatalf("first challenge %q", l)
	}
	c.send(base64.StdEncoding.EncodeToString([]byte(testUser)))
	if l := c.line(); l != "+ "+base64.StdEncoding.EncodeToString([]byte("Password:")) {
		t.Fatalf("second challenge %q", l)
	}
	c.send(base64.StdEncoding.EncodeToString([]byte(testPassword)))
	if l := c.line(); !strings.HasPrefix(l, "A1 OK") {
		t.Fatalf("AUTHENTICATE LOGIN: %q", l)
	}

	// A wrong password through SASL.
	c = e.raw()
	bad := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00nope"))
	if _, status := c.cmd("AUTHENTICATE PLAIN %s", bad); !strings.HasPrefix(status, "NO") {
		t.Errorf("AUTHENTICATE PLAIN with a wrong password: %s", status)
	}

	// And through imapclient's SASL client.
	cl := e.clientNoLogin()
	if err := cl.Authenticate(sasl.NewPlainClient("", testUser, testPassword)); err != nil {
		t.Fatalf("imapclient AUTHENTICATE: %v", err)
	}
}

func TestNamespace(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatal(err)
	}
	want := []imap.NamespaceDescriptor{{Prefix: "", Delim: '/'}}
	if len(ns.Personal) != 1 || ns.Personal[0] != want[0] || ns.Other != nil || ns.Shared != nil {
		t.Errorf("NAMESPACE = %+v", ns)
	}
}

func TestUnknownCommandsAndBadSyntax(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	if _, status := c.cmd("FROBNICATE"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("unknown command: %s", status)
	}
	if _, status := c.cmd("FETCH 1 (FLAGS)"); !strings.HasPrefix(status, "BAD") && !strings.HasPrefix(status, "NO") {
		t.Errorf("FETCH without a mailbox: %s", status)
	}
	if _, status := c.cmd("SELECT"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("SELECT without a name: %s", status)
	}
	if _, status := c.cmd(`SELECT "No Such Folder"`); !strings.HasPrefix(status, "NO [NONEXISTENT]") {
		t.Errorf("SELECT of a missing mailbox: %s", status)
	}
	c.ok("SELECT INBOX")
	if _, status := c.cmd("FETCH 1:* (NOSUCHITEM)"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("unknown FETCH item: %s", status)
	}
	if _, status := c.cmd(`UID STORE 1 +FLAGS (\Seen`); !strings.HasPrefix(status, "BAD") {
		t.Errorf("unbalanced parenthesis: %s", status)
	}
	if _, status := c.cmd(`STORE 1 +FLAGS (\Bogus)`); !strings.HasPrefix(status, "BAD") && !strings.HasPrefix(status, "OK") {
		t.Errorf("unknown system flag: %s", status)
	}
	// A 100 KB line is refused and the server goes on serving.
	c.send("L1 LOGIN a \"%s\"", strings.Repeat("x", 100<<10))
	for {
		l := c.line()
		if strings.HasPrefix(l, "* BYE") || strings.HasPrefix(l, "L1 BAD") || strings.HasPrefix(l, "L1 NO") {
			break
		}
	}
	e.rawLogin().ok("SELECT INBOX")
}

// A client that ENABLEs IMAP4rev2 (RFC 9051) gets ESEARCH answers, UTF-8 names, STATUS
// DELETED and the mailbox's LIST data on SELECT.
func TestIMAP4rev2(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("One", "x\r\n"), `\Deleted`)
	e.deliver("INBOX", plainMessage("Two", "y\r\n"))
	c := e.raw()
	if caps := c.ok("CAPABILITY")[0]; !strings.Contains(caps, "IMAP4rev2") {
		t.Fatalf("CAPABILITY %q", caps)
	}
	c.ok(`LOGIN %q %q`, testUser, testPassword)
	if got := c.ok("ENABLE IMAP4rev2"); len(got) != 1 || got[0] != "* ENABLED IMAP4rev2" {
		t.Fatalf("ENABLE: %q", got)
	}
	got := c.ok("SELECT INBOX")
	if len(grep(got, `RECENT`)) != 0 || len(grep(got, `^\* LIST \(\) "/" INBOX$`)) != 1 {
		t.Errorf("SELECT under IMAP4rev2: %q", got)
	}
	// RFC 9051 has no \Recent: not shown, and not taken from IMAP4rev1 sessions.
	if got := grep(c.ok("FETCH 1:* FLAGS"), "FETCH"); len(got) != 2 || strings.Contains(strings.Join(got, " "), `\Recent`) {
		t.Errorf("FETCH FLAGS under IMAP4rev2: %q", got)
	}
	if got := grep(e.rawLogin().ok("SELECT INBOX"), "RECENT"); len(got) != 1 || got[0] != "* 2 RECENT" {
		t.Errorf("IMAP4rev1 SELECT after an IMAP4rev2 one: %q, want 2 RECENT", got)
	}
	if got := c.ok("SEARCH UNDELETED"); len(got) != 1 || !strings.HasPrefix(got[0], "* ESEARCH") || !strings.HasSuffix(got[0], "ALL 2") {
		t.Errorf("SEARCH under IMAP4rev2: %q", got)
	}
	if got := c.ok("STATUS INBOX (MESSAGES DELETED SIZE)"); len(got) != 1 || !strings.Contains(got[0], "DELETED 1") {
		t.Errorf("STATUS under IMAP4rev2: %q", got)
	}
	c.ok(`CREATE "Entwürfe"`)
	if got := grep(c.ok(`LIST "" "*"`), `Entw`); len(got) != 1 || !strings.HasSuffix(got[0], `"Entwürfe"`) {
		t.Errorf("LIST under IMAP4rev2: %q", got)
	}
}
