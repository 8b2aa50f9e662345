package trace

import "testing"

func TestLMTPDataAndBDATAreCapped(t *testing.T) {
	s := newSession(t, "lmtp", false, 16)
	s.s("220 letterbox LMTP ready\r\n")
	s.c("LHLO mta.example.org\r\n")
	s.s("250-letterbox\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
	s.c("MAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n")
	s.s("250 2.0.0 OK\r\n550 5.1.1 no such user\r\n503 5.5.1 no valid recipients\r\n")
	s.c("RSET\r\n") // DATA was refused: a command, not a body
	s.s("250 2.0.0 OK\r\n")
	s.c("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
	s.s("250 2.0.0 OK\r\n250 2.1.5 OK\r\n354 Go ahead\r\n")
	s.c("Subject: hi\r\n\r\n..stuffed\r\nsecret body line\r\n.\r\n")
	s.s("250 2.0.0 <bob@example.org> delivered\r\n")
	s.c("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.org>\r\nBDAT 29 LAST\r\nSubject: hi\r\n\r\nsecret chunk\r\n")
	s.c("QUIT\r\n")
	trace := s.transcript()
	wantLines(t, trace,
		"S: 220 letterbox LMTP ready",
		"C: LHLO mta.example.org",
		"S: 250-letterbox",
		"S: 250-PIPELINING",
		"S: 250 CHUNKING",
		"C: MAIL FROM:<a@example.org>",
		"C: RCPT TO:<nobody@example.org>",
		"C: DATA",
		"S: 250 2.0.0 OK",
		"S: 550 5.1.1 no such user",
		"S: 503 5.5.1 no valid recipients",
		"C: RSET",
		"S: 250 2.0.0 OK",
		"C: MAIL FROM:<a@example.org>",
		"C: RCPT TO:<bob@example.org>",
		"C: DATA",
		"S: 250 2.0.0 OK",
		"S: 250 2.1.5 OK",
		"S: 354 Go ahead",
		"C: Subject: hi",
		"C: ",
		"C: ..stuffed",
		"C: [... 18 more bytes]",
		"C: .",
		"S: 250 2.0.0 <bob@example.org> delivered",
		"C: MAIL FROM:<a@example.org>",
		"C: RCPT TO:<bob@example.org>",
		"C: BDAT 29 LAST",
		"C: Subject: hi",
		"C: ",
		"C: s",
		"C: [... 13 more bytes]",
		"C: QUIT")
	noLeak(t, trace, "secret")
}

func TestLMTPAuthIsMasked(t *testing.T) {
	plain := b64("\x00mta\x00lmtp-pw")
	s := newSession(t, "lmtp", false, 0)
	s.c("AUTH PLAIN " + plain + "\r\n")
	s.s("535 5.7.8 no\r\n")
	s.c("AUTH LOGIN\r\n")
	s.s("334 " + b64("Username:") + "\r\n")
	s.c(b64("mta") + "\r\n")
	s.s("334 " + b64("Password:") + "\r\n")
	s.c(b64("lmtp-pw") + "\r\n")
	s.s("535 5.7.8 no\r\n")
	s.c("NOOP\r\n")
	trace := s.transcript()
	wantLines(t, trace,
		"C: AUTH PLAIN ****",
		"S: 535 5.7.8 no",
		"C: AUTH LOGIN",
		"S: 334 "+b64("Username:"),
		"C: ****",
		"S: 334 "+b64("Password:"),
		"C: ****",
		"S: 535 5.7.8 no",
		"C: NOOP")
	noLeak(t, trace, plain, b64("lmtp-pw"))
}
