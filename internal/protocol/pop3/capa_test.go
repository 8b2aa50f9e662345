package pop3

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func capaOf(t *testing.T, out string) []string {
	t.Helper()
	lines := replies(out)
	i := slices.Index(lines, "+OK Capability list follows")
	if i < 0 {
		t.Fatalf("no CAPA reply in %q", lines)
	}
	end := slices.Index(lines[i:], ".")
	if end < 0 {
		t.Fatalf("CAPA not terminated: %q", lines)
	}
	return lines[i+1 : i+end]
}

func TestCapa(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	_, caps := c.multi("CAPA")
	want := []string{"TOP", "USER", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
		"EXPIRE NEVER", "SASL PLAIN LOGIN", "UTF8 USER", "IMPLEMENTATION Letterbox"}
	if !slices.Equal(caps, want) {
		t.Errorf("CAPA = %q, want %q", caps, want)
	}
	c.err("CAPA extra")
	// RFC 2449 §5: in the TRANSACTION state too.
	c.ok("USER " + testUser)
	c.ok("PASS " + testPassword)
	if _, after := c.multi("CAPA"); !slices.Equal(after, want) {
		t.Errorf("CAPA after login = %q, want %q", after, want)
	}
}

func TestCapaWithoutPlaintext(t *testing.T) {
	e := newEnv(t, noPlaintext)
	_, caps := e.dial().multi("CAPA")
	for _, c := range caps {
		if c == "USER" || strings.HasPrefix(c, "SASL") {
			t.Errorf("CAPA offers %q where plaintext is not allowed", c)
		}
	}
	if slices.Contains(caps, "STLS") {
		t.Error("CAPA offers STLS without TLS configured")
	}
}

func TestCapaOptions(t *testing.T) {
	caps := capaOf(t, runScript(t, "CAPA\r\n", func(o *Options) {
		o.Expire = "30"
		o.LoginDelay = 90*time.Second + time.Millisecond
	}))
	for _, want := range []string{"EXPIRE 30", "LOGIN-DELAY 91"} {
		if !slices.Contains(caps, want) {
			t.Errorf("CAPA %q lacks %q", caps, want)
		}
	}
	caps = capaOf(t, runScript(t, "CAPA\r\n"))
	for _, c := range caps {
		if strings.HasPrefix(c, "LOGIN-DELAY") {
			t.Errorf("CAPA offers %q without a configured delay", c)
		}
	}
}
