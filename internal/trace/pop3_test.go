package trace

import (
	"strings"
	"testing"
)

func TestPOP3CredentialsAreMasked(t *testing.T) {
	plain := b64("\x00alice\x00plain-pw")
	s := newSession(t, "pop3", false, 0)
	s.s("+OK Letterbox POP3 server ready\r\n")
	s.c("USER alice\r\n")
	s.s("+OK\r\n")
	s.c("PASS user-pass-pw\r\n")
	s.s("-ERR [AUTH] Invalid credentials\r\n")
	s.c("pass lower-pass-pw with spaces\r\n")
	s.s("-ERR [AUTH] Invalid credentials\r\n")
	s.c("APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n") // RFC 1939 §7's example digest
	s.s("-ERR APOP is not supported\r\n")
	s.c("AUTH PLAIN " + plain + "\r\n")
	s.s("-ERR [AUTH] Invalid credentials\r\n")
	s.c("AUTH PLAIN\r\n")
	s.s("+ \r\n")
	s.c(plain + "\r\n")
	s.s("-ERR [AUTH] Invalid credentials\r\n")
	s.c("AUTH LOGIN\r\n")
	s.s("+ " + b64("Username:") + "\r\n")
	s.c(b64("alice") + "\r\n")
	s.s("+ " + b64("Password:") + "\r\n")
	s.c(b64("login-pw") + "\r\n")
	s.s("-ERR [AUTH] Invalid credentials\r\n")
	s.c("AUTH LOGIN\r\n")
	s.s("+ " + b64("Username:") + "\r\n")
	s.c("*\r\n")
	s.s("-ERR AUTH cancelled\r\n")
	s.c("USER bob\r\n") // after the exchange: shown again
	trace := s.transcript()
	wantLines(t, trace,
		"S: +OK Letterbox POP3 server ready",
		"C: USER alice",
		"S: +OK",
		"C: PASS ****",
		"S: -ERR [AUTH] Invalid credentials",
		"C: pass ****",
		"S: -ERR [AUTH] Invalid credentials",
		"C: APOP alice ****",
		"S: -ERR APOP is not supported",
		"C: AUTH PLAIN ****",
		"S: -ERR [AUTH] Invalid credentials",
		"C: AUTH PLAIN",
		"S: + ",
		"C: ****",
		"S: -ERR [AUTH] Invalid credentials",
		"C: AUTH LOGIN",
		"S: + "+b64("Username:"),
		"C: ****",
		"S: + "+b64("Password:"),
		"C: ****",
		"S: -ERR [AUTH] Invalid credentials",
		"C: AUTH LOGIN",
		"S: + "+b64("Username:"),
		"C: *",
		"S: -ERR AUTH cancelled",
		"C: USER bob")
	noLeak(t, trace, "pass-pw", "c4c9334bac560ecc979e58001b3e22fb", plain, "plain-pw", b64("login-pw"))
}

func TestPOP3BodiesAreCappedAndPipeliningFollowed(t *testing.T) {
	s := newSession(t, "pop3", false, 16)
	s.s("+OK ready\r\n")
	s.c("USER alice\r\nPASS pipelined-pw\r\nLIST\r\nRETR 1\r\nLIST 1\r\nTOP 1 0\r\nNOOP\r\n")
	s.s("+OK\r\n+OK logged in\r\n+OK 1 messages\r\n1 60\r\n.\r\n")
	s.s("+OK 60 octets\r\nSubject: hello\r\n\r\n..dot-stuffed line\r\nsecond body line\r\n.\r\n")
	s.s("+OK 1 60\r\n")
	s.s("+OK\r\nSubject: hello\r\n\r\n.\r\n")
	s.s("+OK\r\n")
	trace := s.transcript()
	wantLines(t, trace,
		"S: +OK ready",
		"C: USER alice",
		"C: PASS ****",
		"C: LIST",
		"C: RETR 1",
		"C: LIST 1",
		"C: TOP 1 0",
		"C: NOOP",
		"S: +OK",
		"S: +OK logged in",
		"S: +OK 1 messages",
		"S: 1 60",
		"S: .",
		"S: +OK 60 octets",
		"S: Subject: hello", // whole lines, until 16 bytes are shown
		"S: [... 40 more bytes]",
		"S: .",
		"S: +OK 1 60", // LIST with an argument: one line, not a body
		"S: +OK",
		"S: Subject: hello",
		"S: [... 2 more bytes]",
		"S: .",
		"S: +OK")
	noLeak(t, trace, "pipelined-pw", "second body line")
}

func TestPOP3STLSStopsTheRawTrace(t *testing.T) {
	s := newSession(t, "pop3", false, 0)
	s.s("+OK ready\r\n")
	s.c("STLS\r\n")
	s.s("+OK Begin TLS negotiation\r\n")
	s.c("\x16\x03\x01 ciphertext\r\n")
	trace := s.transcript()
	wantLines(t, trace, "S: +OK ready", "C: STLS", "S: +OK Begin TLS negotiation",
		"-- TLS started (STARTTLS accepted); the encrypted stream is not traced")
	if strings.Contains(trace, "ciphertext") {
		t.Errorf("ciphertext in the trace:\n%s", trace)
	}
}

func TestPOP3RefusedSTLSGoesOn(t *testing.T) {
	s := newSession(t, "pop3", false, 0)
	s.s("+OK ready\r\n")
	s.c("STLS\r\n")
	s.s("-ERR STLS not available\r\n")
	s.c("PASS after-refusal-pw\r\n")
	trace := s.transcript()
	wantLines(t, trace, "S: +OK ready", "C: STLS", "S: -ERR STLS not available", "C: PASS ****")
}

// TestPOP3SASLResponseAfterRefusalIsMasked: a client that sends its SASL response although
// the server refused the AUTH (plaintext not allowed here) has it answered as an unknown
// command; the trace masks it, and shows the commands after it again.
func TestPOP3SASLResponseAfterRefusalIsMasked(t *testing.T) {
	plain := b64("\x00alice\x00refused-pw")
	s := newSession(t, "pop3", false, 0)
	s.s("+OK ready\r\n")
	s.c("AUTH PLAIN\r\n")
	s.s("-ERR [AUTH] Plaintext authentication disallowed without TLS\r\n")
	s.c(plain + "\r\n")
	s.s("-ERR Unknown command\r\n")
	s.c("CAPA\r\n")
	s.s("-ERR nothing\r\n")
	s.c("AUTH LOGIN\r\n")
	s.s("-ERR [AUTH] Plaintext authentication disallowed without TLS\r\n")
	s.c("QUIT\r\n")
	trace := s.transcript()
	wantLines(t, trace,
		"S: +OK ready",
		"C: AUTH PLAIN",
		"S: -ERR [AUTH] Plaintext authentication disallowed without TLS",
		"C: ****",
		"S: -ERR Unknown command",
		"C: CAPA",
		"S: -ERR nothing",
		"C: AUTH LOGIN",
		"S: -ERR [AUTH] Plaintext authentication disallowed without TLS",
		"C: QUIT")
	noLeak(t, trace, plain)
}
