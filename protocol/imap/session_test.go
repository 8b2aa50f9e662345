package imap

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/letterbox-mail/letterbox/pkg/auth"
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
		"STATUS=SIZE", "BINARY", "CHILDREN", "CREATE-SPECIAL-USE", "APPENDLIMIT=52428800"} {
		if !strings.Contains(after+" ", " "+want+" ") {
			t.Errorf("CAPABILITY after login lacks %s: %q", want, after)
		}
	}
	for _, not := range []string{"CONDSTORE", "QRESYNC", "AUTH=", "QUOTA"} {
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
