package trace

import (
	"encoding/base64"
	"strings"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestIMAPLoginPasswordIsMasked(t *testing.T) {
	for _, tc := range []struct {
		name, client, want string
		secrets            []string
	}{
		{"atom", "A1 LOGIN alice s3cret-atom\r\n", "C: A1 LOGIN alice ****", []string{"s3cret"}},
		{"lower case", "a1 login alice s3cret-lower\r\n", "C: a1 login alice ****", []string{"s3cret"}},
		{"quoted", `A1 LOGIN "alice" "pa\"ss w0rd"` + "\r\n", `C: A1 LOGIN "alice" ****`, []string{"pa", "w0rd"}},
		{"quoted user with space", `A1 LOGIN "al ice" s3cret` + "\r\n", `C: A1 LOGIN "al ice" ****`, []string{"s3cret"}},
		{"extra arguments", "A1 LOGIN alice s3cret more-s3cret\r\n", "C: A1 LOGIN alice **** ****", []string{"s3cret"}},
		{"no tag", "LOGIN alice s3cret-untagged\r\n", "C: LOGIN alice ****", []string{"s3cret"}},
		{"no tag, lower case", "login alice s3cret-untagged\r\n", "C: login alice ****", []string{"s3cret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, "imap", false, 0)
			s.c(tc.client)
			s.s("A1 OK LOGIN completed\r\n")
			trace := s.transcript()
			wantLines(t, trace, tc.want, "S: A1 OK LOGIN completed")
			noLeak(t, trace, tc.secrets...)
		})
	}
}

func TestIMAPLoginWithLiterals(t *testing.T) {
	s := newSession(t, "imap", false, 0)
	s.s("* OK ready\r\n")
	s.c("A1 LOGIN {5}\r\n")
	s.s("+ Ready for literal data\r\n")
	s.c("alice {13}\r\n")
	s.s("+ Ready for literal data\r\n")
	s.c("literal-pw-1\n\r\n") // a literal may hold a line end
	s.s("A1 OK LOGIN completed\r\n")
	// LITERAL+ (RFC 7888): no continuation requests, all in one go.
	s.c("A2 LOGIN {3+}\r\nbob {12+}\r\nliteral-pw-2 \r\n")
	s.s("A2 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
	trace := s.transcript()
	wantLines(t, trace,
		"S: * OK ready",
		"C: A1 LOGIN {5}",
		"S: + Ready for literal data",
		"C: alice {13}",
		"S: + Ready for literal data",
		"C: ****",
		"S: A1 OK LOGIN completed",
		"C: A2 LOGIN {3+}",
		"C: bob {12+}",
		"C: **** ",
		"S: A2 NO [AUTHENTICATIONFAILED] Invalid credentials")
	noLeak(t, trace, "literal-pw")
}

func TestIMAPRefusedLiteralIsNotAwaited(t *testing.T) {
	s := newSession(t, "imap", false, 0)
	s.c("A1 LOGIN {5}\r\n")
	s.s("A1 BAD literals are not welcome here\r\n") // no "+": the client sends no literal
	s.c("A2 LOGIN alice after-refusal-pw\r\n")
	s.s("A2 OK LOGIN completed\r\n")
	trace := s.transcript()
	wantLines(t, trace,
		"C: A1 LOGIN {5}",
		"S: A1 BAD literals are not welcome here",
		"C: A2 LOGIN alice ****",
		"S: A2 OK LOGIN completed")
	noLeak(t, trace, "after-refusal-pw")
}

func TestIMAPLoginLiteralBeyondACutLine(t *testing.T) {
	s := newSession(t, "imap", false, 0)
	user := strings.Repeat("u", maxLine)
	s.c("A1 LOGIN " + user + " {11}\r\n")
	s.s("+ Ready\r\n")
	s.c("cut-line-pw\r\n")
	trace := s.transcript()
	noLeak(t, trace, "cut-line-pw")
	if !strings.Contains(trace, "C: ****\n") {
		t.Errorf("the password literal is not shown masked:\n%.300s", trace[len(trace)-300:])
	}
}

func TestIMAPAuthenticateIsMasked(t *testing.T) {
	plain := b64("\x00alice\x00plain-pw")
	s := newSession(t, "imap", false, 0)
	// SASL-IR (RFC 4959).
	s.c("A1 AUTHENTICATE PLAIN " + plain + "\r\n")
	s.s("A1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
	// Without initial response: the response comes on a continuation line.
	s.c("A2 AUTHENTICATE PLAIN\r\n")
	s.s("+ \r\n")
	s.c(plain + "\r\n")
	s.s("A2 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
	// LOGIN: two continuation lines; then a cancelled exchange.
	s.c("A3 AUTHENTICATE LOGIN\r\n")
	s.s("+ " + b64("Username:") + "\r\n")
	s.c(b64("alice") + "\r\n")
	s.s("+ " + b64("Password:") + "\r\n")
	s.c(b64("login-pw") + "\r\n")
	s.s("A3 OK AUTHENTICATE completed\r\n")
	s.c("A4 AUTHENTICATE PLAIN\r\n")
	s.s("+ \r\n")
	s.c("*\r\n")
	s.s("A4 BAD AUTHENTICATE cancelled\r\n")
	s.c("A5 NOOP\r\n") // the exchange is over: shown again
	trace := s.transcript()
	wantLines(t, trace,
		"C: A1 AUTHENTICATE PLAIN ****",
		"S: A1 NO [AUTHENTICATIONFAILED] Invalid credentials",
		"C: A2 AUTHENTICATE PLAIN",
		"S: + ",
		"C: ****",
		"S: A2 NO [AUTHENTICATIONFAILED] Invalid credentials",
		"C: A3 AUTHENTICATE LOGIN",
		"S: + "+b64("Username:"),
		"C: ****",
		"S: + "+b64("Password:"),
		"C: ****",
		"S: A3 OK AUTHENTICATE completed",
		"C: A4 AUTHENTICATE PLAIN",
		"S: + ",
		"C: *",
		"S: A4 BAD AUTHENTICATE cancelled",
		"C: A5 NOOP")
	noLeak(t, trace, plain, b64("login-pw"), "plain-pw", "login-pw")
}

func TestIMAPStartTLSEndsTheTrace(t *testing.T) {
	s := newSession(t, "imap", false, 0)
	s.c("A1 STARTTLS\r\n")
	s.s("A1 OK Begin TLS negotiation now\r\n")
	s.c("\x16\x03\x01 ciphertext A2 LOGIN alice tls-pw\r\n")
	s.s("ciphertext\r\n")
	sessionsEntry(s).SetUser("alice")
	trace := s.transcript()
	wantLines(t, trace,
		"C: A1 STARTTLS",
		"S: A1 OK Begin TLS negotiation now",
		"-- TLS started (STARTTLS accepted); the encrypted stream is not traced",
		"-- user alice")
	noLeak(t, trace, "ciphertext", "tls-pw")
	if !sessionsEntry(s).Session().TLS {
		t.Error("the registry does not know the session is TLS now")
	}
}

func TestIMAPRefusedStartTLSGoesOn(t *testing.T) {
	s := newSession(t, "imap", false, 0)
	s.c("A1 STARTTLS\r\n")
	s.s("A1 BAD STARTTLS not available\r\n")
	s.c("A2 LOGIN alice pw-after\r\n")
	trace := s.transcript()
	wantLines(t, trace, "C: A1 STARTTLS", "S: A1 BAD STARTTLS not available", "C: A2 LOGIN alice ****")
}

func TestIMAPBinaryLiteralIsNotTakenForTLS(t *testing.T) {
	s := newSession(t, "imap", false, 0)
	s.c("A1 APPEND INBOX ~{8+}\r\n")
	s.c("\x16\x03 bin\r\n\r\n") // a literal that starts like a TLS record, in its own read
	s.s("A1 OK APPEND completed\r\n")
	wantLines(t, s.transcript(), `C: A1 APPEND INBOX ~{8+}`, `C: \x16\x03 bin`, `C: `, "S: A1 OK APPEND completed")
}
