package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMWithActiveSessions: `letterbox serve` gets SIGTERM while sessions of every
// protocol are open, some in the middle of a command. The listeners stop accepting; an
// APPEND and an LMTP DATA whose data is still arriving finish and are acknowledged, and
// what they acknowledged is stored whole; idle, selected and IDLE IMAP sessions get
// `* BYE` (RFC 3501 §7.1.5); a POP3 session that marked messages deleted but never sent
// QUIT deletes nothing (RFC 1939 §6: deletion happens only in the UPDATE state); the
// process exits 0.
func TestSIGTERMWithActiveSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	data := t.TempDir()
	srv := startE2E(t, data)
	const user = "term@example.net"
	srv.addUser(user, "pw")
	for i := 0; i < 3; i++ {
		if err := lmtpDeliver(srv.ports["lmtp"], user, fmt.Sprintf("<%d.before@letterbox.test>", i)); err != nil {
			t.Fatal(err)
		}
	}

	imap := func() *lineConn {
		c := dialLine(t, srv.ports["imap"])
		c.read() // greeting
		c.write("L LOGIN " + user + " pw")
		if l := c.tagged("L"); !strings.HasPrefix(l, "L OK") {
			t.Fatalf("LOGIN: %s", l)
		}
		return c
	}
	authenticated := imap()
	selected := imap()
	selected.write("S SELECT INBOX")
	selected.tagged("S")
	idling := imap()
	idling.write("S SELECT INBOX")
	idling.tagged("S")
	idling.write("I IDLE")
	if l := idling.read(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %s", l)
	}

	// An APPEND with half of its literal sent.
	appended := "From: alice@example.org\r\nSubject: in flight\r\nMessage-ID: <append.term@letterbox.test>\r\n\r\n" +
		strings.Repeat("a line of the message that arrives during the shutdown\r\n", 2000)
	appending := imap()
	appending.write(fmt.Sprintf("A APPEND INBOX {%d}", len(appended)))
	if l := appending.read(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND: %s", l)
	}
	half := len(appended) / 2
	if _, err := io.WriteString(appending.c, appended[:half]); err != nil {
		t.Fatal(err)
	}

	// An LMTP transaction with half of its DATA sent.
	delivered := "From: alice@example.org\r\nSubject: in flight\r\nMessage-ID: <lmtp.term@letterbox.test>\r\n\r\n" +
		strings.Repeat("a line of the delivery that arrives during the shutdown\r\n", 2000)
	lmtp := dialLine(t, srv.ports["lmtp"])
	lmtp.read()
	lmtp.write("LHLO term.test")
	for l := lmtp.read(); strings.HasPrefix(l, "250-"); l = lmtp.read() {
	}
	for _, cmd := range []string{"MAIL FROM:<alice@example.org>", "RCPT TO:<" + user + ">", "DATA"} {
		lmtp.write(cmd)
		if l := lmtp.read(); !strings.HasPrefix(l, "250") && !strings.HasPrefix(l, "354") {
			t.Fatalf("LMTP %s: %s", cmd, l)
		}
	}
	if _, err := io.WriteString(lmtp.c, delivered[:len(delivered)/2]); err != nil {
		t.Fatal(err)
	}

	// A POP3 session that marks everything deleted and never sends QUIT.
	pop := dialPOP3(t, srv.ports["pop3"], user, "pw")
	for n := 1; n <= 3; n++ {
		pop3Cmd(t, pop, "DELE %d", n)
	}

	exited := make(chan error, 1)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { exited <- srv.cmd.Wait() }()

	for name, c := range map[string]*lineConn{"authenticated": authenticated, "selected": selected, "idle": idling} {
		if l := c.read(); !strings.HasPrefix(l, "* BYE") {
			t.Errorf("%s IMAP session got %q, want * BYE", name, l)
		}
	}
	// The listeners are closed at once (dialling is retried only while the signal is on its
	// way; the guard is for a hang, not a measure of speed).
	for _, proto := range []string{"imap", "pop3", "lmtp"} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", srv.ports[proto], time.Second)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepts connections after SIGTERM", proto)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The commands in flight finish.
	if _, err := io.WriteString(appending.c, appended[half:]+"\r\n"); err != nil {
		t.Fatal(err)
	}
	if l := appending.tagged("A"); !strings.HasPrefix(l, "A OK") {
		t.Errorf("APPEND in flight during shutdown: %q, want OK", l)
	}
	if l := appending.read(); !strings.HasPrefix(l, "* BYE") {
		t.Errorf("after the APPEND: %q, want * BYE", l)
	}
	if _, err := io.WriteString(lmtp.c, delivered[len(delivered)/2:]+".\r\n"); err != nil {
		t.Fatal(err)
	}
	if l := lmtp.read(); !strings.HasPrefix(l, "250") {
		t.Errorf("LMTP DATA in flight during shutdown: %q, want 250", l)
	}
	// The POP3 session is told goodbye without an UPDATE state (RFC 1939 §6).
	if l, err := pop.ReadLine(); err == nil && !strings.HasPrefix(l, "-ERR") {
		t.Errorf("POP3 session without QUIT got %q at shutdown, want -ERR or nothing", l)
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v, want exit 0\nlog:\n%s", err, srv.log.String())
		}
	case <-time.After(30 * time.Second): // a hang guard
		t.Fatal("serve did not exit after SIGTERM")
	}

	_, bodies := mailbox(t, data, user, "INBOX")
	stored := map[string]string{}
	for _, b := range bodies {
		if m := messageIDHeader.FindSubmatch(b); m != nil {
			stored[string(m[1])] = string(b)
		}
	}
	for i := 0; i < 3; i++ {
		if id := fmt.Sprintf("<%d.before@letterbox.test>", i); stored[id] == "" {
			t.Errorf("%s is gone: a POP3 DELE without QUIT deleted it at shutdown", id)
		}
	}
	if !strings.HasSuffix(stored["<append.term@letterbox.test>"], appended) {
		t.Error("the APPEND acknowledged during shutdown is not stored whole")
	}
	if !strings.HasSuffix(stored["<lmtp.term@letterbox.test>"], delivered) {
		t.Error("the LMTP delivery acknowledged during shutdown is not stored whole")
	}
	if len(stored) != 5 {
		t.Errorf("%d messages stored, want 5", len(stored))
	}
}
