//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// TestDiskFullServe runs `serve` with its data directory on a small tmpfs and fills the
// disk: LMTP answers 452 4.2.2, `deliver` exits 75, IMAP APPEND answers NO [UNAVAILABLE],
// and a POP3 QUIT either commits or answers -ERR having deleted nothing. Once space
// returns the running server takes mail again, everything acknowledged is there, and the
// database passes integrity_check.
func TestDiskFullServe(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	data := t.TempDir()
	if err := syscall.Mount("tmpfs", data, "tmpfs", 0, "size=4m,mode=0700"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(data, syscall.MNT_DETACH) })
	srv := startE2E(t, data)
	srv.addUser("bob@example.com", "bob-secret")

	lmtp := dialText(t, srv.ports["lmtp"])
	lmtpExpect(t, lmtp, "", 220)
	lmtpExpect(t, lmtp, "LHLO mta.example", 250)
	send := func(subject string) (int, string) {
		lmtpExpect(t, lmtp, "MAIL FROM:<alice@example.org>", 250)
		lmtpExpect(t, lmtp, "RCPT TO:<bob@example.com>", 250)
		lmtpExpect(t, lmtp, "DATA", 354)
		w := lmtp.DotWriter()
		fmt.Fprintf(w, "Subject: %s\r\n\r\n%s", subject, strings.Repeat("a line of padding text\r\n", 800))
		w.Close()
		code, msg, _ := lmtp.ReadResponse(0)
		return code, msg
	}
	acked := 0
	if code, msg := send("before"); code != 250 {
		t.Fatalf("LMTP before the disk is full: %d %s", code, msg)
	}
	acked++

	filler := filepath.Join(data, "filler")
	fillFile(t, filler)
	full := false
	for i := 0; i < 300 && !full; i++ {
		switch code, msg := send(fmt.Sprint("full ", i)); {
		case code == 250:
			acked++
		case code == 452 && strings.HasPrefix(msg, "4.2.2"):
			full = true
		default:
			t.Fatalf("LMTP on a full disk: %d %s, want 250 or 452 4.2.2", code, msg)
		}
	}
	if !full {
		t.Fatal("LMTP never answered 452 4.2.2 on a full disk")
	}

	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789 a big message to spool to a file\r\n", 9000)
	if out, code := srv.cli(big, "deliver", "--to", "bob@example.com"); code != exitTempFail {
		t.Errorf("deliver on a full disk: exit %d (%s), want %d", code, out, exitTempFail)
	}

	imap := dialText(t, srv.ports["imap"])
	imap.ReadLine()
	imapCmd(t, imap, "a1 LOGIN bob@example.com bob-secret", "a1 OK")
	appendBig := func(tag string) string {
		imap.PrintfLine("%s APPEND INBOX {%d}", tag, len(big))
		if line, _ := imap.ReadLine(); !strings.HasPrefix(line, "+") {
			t.Fatalf("APPEND: %q, want a continuation", line)
		}
		imap.W.WriteString(big + "\r\n")
		imap.W.Flush()
		for {
			line, err := imap.ReadLine()
			if err != nil || strings.HasPrefix(line, tag+" ") {
				return line
			}
		}
	}
	if line := appendBig("a2"); !strings.HasPrefix(line, "a2 NO [UNAVAILABLE]") {
		t.Errorf("APPEND on a full disk: %q, want NO [UNAVAILABLE]", line)
	}

	pop := dialText(t, srv.ports["pop3"])
	pop.ReadLine()
	popCmd(t, pop, "USER bob@example.com", "+OK")
	popCmd(t, pop, "PASS bob-secret", "+OK")
	popCmd(t, pop, "DELE 1", "+OK")
	pop.PrintfLine("QUIT")
	quit, _ := pop.ReadLine()
	switch {
	case strings.HasPrefix(quit, "+OK"):
		acked--
	case !strings.HasPrefix(quit, "-ERR"):
		t.Errorf("POP3 QUIT on a full disk: %q", quit)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code, msg := send("after"); code != 250 {
		t.Errorf("LMTP once space returned: %d %s", code, msg)
	}
	acked++
	if line := appendBig("a3"); !strings.HasPrefix(line, "a3 OK") {
		t.Errorf("APPEND once space returned: %q", line)
	}
	acked++
	srv.kill()

	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.LookupAccount(context.Background(), "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if a.Messages != int64(acked) {
		t.Errorf("%d messages stored, %d acknowledged and not deleted", a.Messages, acked)
	}
	if err := st.IntegrityCheck(context.Background()); err != nil {
		t.Error(err)
	}
}

func dialText(t *testing.T, addr string) *textproto.Conn {
	t.Helper()
	c, err := textproto.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func lmtpExpect(t *testing.T, c *textproto.Conn, line string, code int) {
	t.Helper()
	if line != "" {
		c.PrintfLine("%s", line)
	}
	if _, msg, err := c.ReadResponse(code); err != nil {
		t.Fatalf("%q: %v %s", line, err, msg)
	}
}

func imapCmd(t *testing.T, c *textproto.Conn, line, want string) {
	t.Helper()
	c.PrintfLine("%s", line)
	tag := strings.Fields(line)[0] + " "
	for {
		got, err := c.ReadLine()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if strings.HasPrefix(got, tag) {
			if !strings.HasPrefix(got, want) {
				t.Fatalf("%q: %q, want %s", line, got, want)
			}
			return
		}
	}
}

func popCmd(t *testing.T, c *textproto.Conn, line, want string) {
	t.Helper()
	c.PrintfLine("%s", line)
	if got, err := c.ReadLine(); err != nil || !strings.HasPrefix(got, want) {
		t.Fatalf("%q: %q %v, want %s", line, got, err, want)
	}
}

// fillFile writes path until its filesystem is full.
func fillFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}
