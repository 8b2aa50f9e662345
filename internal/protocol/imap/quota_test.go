package imap

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// GETQUOTAROOT and GETQUOTA (RFC 9208 §4.2, §4.3) show the account's usage and the limits
// it has, in KiB and messages, under one non-empty root.
func TestGetQuota(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d1 := e.deliver("INBOX", plainMessage("One", strings.Repeat("x", 3000)+"\r\n"))
	d2 := e.deliver("Archives", plainMessage("Two", "y\r\n"))
	c := e.rawLogin()

	// No limits: the root is there, with no resources.
	lines := c.ok("GETQUOTAROOT INBOX")
	if len(lines) != 2 || lines[0] != `* QUOTAROOT INBOX "User quota"` || lines[1] != `* QUOTA "User quota" ()` {
		t.Errorf("GETQUOTAROOT without limits: %q", lines)
	}

	if err := e.st.SetQuota(ctx, testUser, 10*1024*1024); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetQuotaMessages(ctx, testUser, 500); err != nil {
		t.Fatal(err)
	}
	kib := (d1.Size + d2.Size + 1023) / 1024
	want := `* QUOTA "User quota" (STORAGE ` + strconv.FormatInt(kib, 10) + ` 10240 MESSAGE 2 500)`
	lines = c.ok("GETQUOTAROOT Archives")
	if len(lines) != 2 || lines[0] != `* QUOTAROOT "Archives" "User quota"` || lines[1] != want {
		t.Errorf("GETQUOTAROOT Archives: %q, want QUOTAROOT and %q", lines, want)
	}
	if lines = c.ok(`GETQUOTA "User quota"`); len(lines) != 1 || lines[0] != want {
		t.Errorf("GETQUOTA: %q, want %q", lines, want)
	}

	// Usage is read afresh: a delivery after login counts.
	e.deliver("INBOX", plainMessage("Three", "z\r\n"))
	if lines = c.ok(`GETQUOTA "user quota"`); len(lines) != 1 || !strings.Contains(lines[0], "MESSAGE 3 500") {
		t.Errorf("GETQUOTA after a delivery: %q", lines)
	}

	// Only the message limit: STORAGE is not listed.
	if err := e.st.SetQuota(ctx, testUser, 0); err != nil {
		t.Fatal(err)
	}
	if lines = c.ok(`GETQUOTA "User quota"`); len(lines) != 1 || lines[0] != `* QUOTA "User quota" (MESSAGE 3 500)` {
		t.Errorf("GETQUOTA with a message limit only: %q", lines)
	}

	for _, tt := range []struct{ cmd, want string }{
		{`GETQUOTA ""`, "NO [NONEXISTENT]"},
		{`GETQUOTAROOT Nowhere`, "NO [NONEXISTENT]"},
		{`SETQUOTA "User quota" (STORAGE 512)`, "NO"},
		{`SETQUOTA "User quota" (STORAGE)`, "BAD"},
		{`GETQUOTA`, "BAD"},
	} {
		if _, status := c.cmd("%s", tt.cmd); !strings.HasPrefix(status, tt.want) {
			t.Errorf("%s: %s, want %s", tt.cmd, status, tt.want)
		}
	}
	// SETQUOTA changed nothing.
	if lines = c.ok(`GETQUOTA "User quota"`); len(lines) != 1 || lines[0] != `* QUOTA "User quota" (MESSAGE 3 500)` {
		t.Errorf("GETQUOTA after SETQUOTA: %q", lines)
	}
}

// STATUS DELETED and DELETED-STORAGE (RFC 9208 §4.4): what EXPUNGE would free, in KiB.
func TestStatusDeletedStorage(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("Keep", "k\r\n"))
	d := e.deliver("INBOX", plainMessage("Drop", strings.Repeat("d", 5000)+"\r\n"), `\Deleted`)
	c := e.rawLogin()
	want := `* STATUS INBOX (DELETED 1 DELETED-STORAGE ` + strconv.FormatInt((d.Size+1023)/1024, 10) + `)`
	if lines := c.ok("STATUS INBOX (DELETED DELETED-STORAGE)"); len(lines) != 1 || lines[0] != want {
		t.Errorf("STATUS: %q, want %q", lines, want)
	}
}
