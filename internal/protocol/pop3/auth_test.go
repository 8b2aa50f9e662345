package pop3

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/store"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestUserPass(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("one", "x\r\n"))
	c := e.dial()
	c.ok("USER " + testUser)
	if got := c.err("PASS wrong-" + testPassword); !strings.HasPrefix(got, "-ERR [AUTH] ") {
		t.Errorf("wrong password: %q, want -ERR [AUTH] (RFC 3206)", got)
	}
	// RFC 1939 §7: after a failed PASS, USER must come again.
	c.err("PASS " + testPassword)
	c.ok("USER nobody@example.com")
	if got := c.err("PASS whatever"); !strings.HasPrefix(got, "-ERR [AUTH] ") {
		t.Errorf("unknown user: %q, want -ERR [AUTH]", got)
	}
	c.ok("USER " + testUser)
	// The password is the rest of the line, its space included.
	if got := c.ok("PASS " + testPassword); !strings.Contains(got, "1 messages") {
		t.Errorf("PASS: %q, want the maildrop size", got)
	}
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Errorf("STAT: %q", got)
	}
	c.ok("QUIT")
}

func TestUserAddressCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	c.ok("USER " + strings.ToUpper(testUser))
	c.ok("PASS " + testPassword)
}

func TestAuthPlain(t *testing.T) {
	e := newEnv(t)
	// With an initial response (RFC 5034 §4).
	c := e.dial()
	if got := c.err("AUTH PLAIN " + b64("\x00"+testUser+"\x00wrong")); !strings.HasPrefix(got, "-ERR [AUTH] ") {
		t.Errorf("AUTH PLAIN, wrong password: %q, want -ERR [AUTH]", got)
	}
	c.ok("AUTH PLAIN " + b64("\x00"+testUser+"\x00"+testPassword))
	c.ok("STAT")
	c.ok("QUIT")

	// With a continuation: "+ " (an empty challenge), then the response.
	c = e.dial()
	if got := c.cmd("auth plain"); got != "+ " {
		t.Fatalf("AUTH PLAIN without initial response: %q, want \"+ \"", got)
	}
	c.ok(b64(testUser + "\x00" + testUser + "\x00" + testPassword))
	c.ok("STAT")
	c.ok("QUIT")

	// An authorization identity other than the user is refused.
	c = e.dial()
	if got := c.err("AUTH PLAIN " + b64("bob@example.com\x00"+testUser+"\x00"+testPassword)); !strings.HasPrefix(got, "-ERR [AUTH]") {
		t.Errorf("foreign authzid: %q", got)
	}
	// "=" is an empty initial response, which PLAIN refuses.
	c.err("AUTH PLAIN =")
	c.err("AUTH PLAIN !!notbase64")
	c.err("AUTH PLAIN " + b64("no nul separators"))
	c.ok("AUTH PLAIN " + b64("\x00"+testUser+"\x00"+testPassword))
}

func TestAuthLogin(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	if got := c.cmd("AUTH LOGIN"); got != "+ "+b64("Username:") {
		t.Fatalf("AUTH LOGIN: %q, want the Username: challenge", got)
	}
	if got := c.cmd(b64(testUser)); got != "+ "+b64("Password:") {
		t.Fatalf("after the user name: %q, want the Password: challenge", got)
	}
	c.ok(b64(testPassword))
	c.ok("QUIT")

	// The initial response is the user name.
	c = e.dial()
	if got := c.cmd("AUTH LOGIN " + b64(testUser)); got != "+ "+b64("Password:") {
		t.Fatalf("AUTH LOGIN with initial response: %q", got)
	}
	if got := c.err(b64("wrong")); !strings.HasPrefix(got, "-ERR [AUTH]") {
		t.Errorf("wrong password: %q", got)
	}
	c.cmd("AUTH LOGIN " + b64(testUser))
	c.ok(b64(testPassword))
}

func TestAuthCancelAndErrors(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	if got := c.cmd("AUTH LOGIN"); !strings.HasPrefix(got, "+ ") {
		t.Fatalf("AUTH LOGIN: %q", got)
	}
	// RFC 5034 §4: "*" cancels the exchange.
	c.err("*")
	c.cmd("AUTH PLAIN")
	c.err("not base64!")
	c.err("AUTH CRAM-MD5")
	c.err("AUTH GSSAPI =")
	c.ok("AUTH PLAIN " + b64("\x00"+testUser+"\x00"+testPassword))
}

func TestAuthListsMechanisms(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	_, mechs := c.multi("AUTH")
	if strings.Join(mechs, " ") != "PLAIN LOGIN" {
		t.Errorf("AUTH lists %q, want PLAIN LOGIN", mechs)
	}

	e = newEnv(t, noPlaintext)
	c = e.dial()
	if _, mechs := c.multi("AUTH"); len(mechs) != 0 {
		t.Errorf("without plaintext AUTH lists %q, want nothing", mechs)
	}
}

func TestPlaintextRefused(t *testing.T) {
	e := newEnv(t, noPlaintext)
	c := e.dial()
	for _, cmd := range []string{
		"USER " + testUser,
		"AUTH PLAIN " + b64("\x00"+testUser+"\x00"+testPassword),
		"AUTH LOGIN",
	} {
		got := c.err(cmd)
		if !strings.HasPrefix(got, "-ERR [AUTH] ") || !strings.Contains(got, "TLS") {
			t.Errorf("%s without TLS: %q, want -ERR [AUTH] ... TLS", strings.Fields(cmd)[0], got)
		}
	}
	c.err("PASS " + testPassword)
}

func TestAccountMayNotUsePOP3(t *testing.T) {
	e := newEnv(t)
	_, err := e.st.CreateAccount(context.Background(), store.NewAccount{
		Address: "imaponly@example.com", Password: "pw", Protocols: []string{store.ProtocolIMAP}})
	if err != nil {
		t.Fatal(err)
	}
	c := e.dial()
	c.ok("USER imaponly@example.com")
	if got := c.err("PASS pw"); !strings.HasPrefix(got, "-ERR [AUTH] ") {
		t.Errorf("IMAP-only account: %q, want -ERR [AUTH]", got)
	}
}

// accountsFailing answers every Authenticate with err.
type accountsFailing struct{ err error }

func (a accountsFailing) Authenticate(context.Context, string, string) (store.Account, error) {
	return store.Account{}, a.err
}

func TestLoginErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{store.ErrAccountDisabled, "-ERR [AUTH] "},
		{store.ErrAuthFailed, "-ERR [AUTH] "},
		{errors.Join(store.ErrTemporary, errors.New("database is locked")), "-ERR [SYS/TEMP] "},
	} {
		out := replies(runScript(t, "USER u\r\nPASS p\r\n", func(o *Options) {
			o.Auth = &auth.Authenticator{Store: accountsFailing{tc.err}}
		}))
		if len(out) != 3 || !strings.HasPrefix(out[2], tc.code) {
			t.Errorf("store error %v: replies %q, want %s", tc.err, out, tc.code)
		}
	}
}

func TestUTF8(t *testing.T) {
	e := newEnv(t)
	const user, password = "jörg@example.com", "pässwörd"
	if _, err := e.st.CreateAccount(context.Background(), store.NewAccount{Address: user, Password: password}); err != nil {
		t.Fatal(err)
	}
	c := e.dial()
	c.err("UTF8 now")
	c.ok("UTF8")
	c.err("USER j\xf6rg@example.com") // Latin-1, not UTF-8
	c.ok("USER " + user)
	c.ok("PASS " + password)
	c.err("UTF8") // AUTHORIZATION state only (RFC 6856 §2)
}

func TestControlCharactersInCredentials(t *testing.T) {
	out := replies(runScript(t, "USER u\x01\r\nUSER u\r\nPASS p\x00\r\n"))
	if !strings.HasPrefix(out[1], "-ERR") || !strings.HasPrefix(out[3], "-ERR") {
		t.Errorf("control characters accepted: %q", out)
	}
}

func TestApopNotOffered(t *testing.T) {
	out := replies(runScript(t, "APOP u c4c9334bac560ecc979e58001b3e22fb\r\n"))
	if !strings.HasPrefix(out[1], "-ERR") {
		t.Errorf("APOP: %q, want -ERR", out[1])
	}
}
