//go:build linux

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory for the test, or skips the
// test where mounting is not allowed (not root, in a container without CAP_SYS_ADMIN),
// except in CI, where it fails instead.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes a file in dir until the filesystem is full and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return path
		}
	}
}

// storedMessages checks that every message acknowledged (UID -> raw text) is in INBOX as
// it was delivered.
func storedMessages(t *testing.T, s *Store, accountID int64, acked map[uint32]string) {
	t.Helper()
	in := inbox(t, s, accountID)
	msgs, err := s.Messages(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(acked) {
		t.Errorf("%d messages in INBOX, %d acknowledged", len(msgs), len(acked))
	}
	for uid, want := range acked {
		if got := readMessage(t, s, in.ID, uid); got != want {
			t.Errorf("UID %d differs from what was delivered", uid)
		}
	}
}

func integrityCheck(t *testing.T, dir string) {
	t.Helper()
	s := openStore(t, dir)
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Error(err)
	}
	s.Close()
}

// TestDiskFull runs the store on a small tmpfs and fills it: small deliveries (spooled in
// memory, failing in SQLite) and large ones (failing in the spool file) report
// ErrStorageFull, a POP3-style QUIT transaction either commits or fails the same way,
// nothing acknowledged is harmed, and once space returns the same open store delivers
// again, with integrity_check ok.
func TestDiskFull(t *testing.T) {
	sqliteOnly(t, "SQLite on a full file system")
	dir := mountTmpfs(t, 3<<20)
	s := openStore(t, dir)
	a := newAccount(t, s, "alice")
	acked := map[uint32]string{}
	deliverAcked := func(msg string) error {
		d, err := s.Deliver(ctx, a.ID, strings.NewReader(msg), DeliverOptions{})
		if err == nil {
			acked[d.UID] = msg
		}
		return err
	}
	for i := range 5 {
		if err := deliverAcked(simpleMessage(fmt.Sprintf("before %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	filler := fillDisk(t, dir)

	big, _ := bigMessage(spoolInMemory + 50000)
	big = strings.ReplaceAll(big, "\n", "\r\n")
	if err := deliverAcked(big); !errors.Is(err, ErrStorageFull) || !errors.Is(err, ErrTemporary) {
		t.Errorf("large delivery on a full disk: %v, want ErrStorageFull", err)
	}
	// Small ones may still fit in the WAL's free pages for a while; soon they do not.
	full := 0
	for i := 0; i < 500 && full < 3; i++ {
		msg := simpleMessage(fmt.Sprintf("full %d", i)) + strings.Repeat("padding to fill pages\r\n", 400)
		switch err := deliverAcked(msg); {
		case err == nil:
		case errors.Is(err, ErrStorageFull):
			full++
		default:
			t.Fatalf("delivery %d on a full disk: %v, want nil or ErrStorageFull", i, err)
		}
	}
	if full == 0 {
		t.Fatal("no delivery failed on a full disk")
	}
	// POP3 QUIT: \Seen and an expunge in one transaction, all or nothing.
	in := inbox(t, s, a.ID)
	err := s.CommitMaildrop(ctx, in.ID, MaildropCommit{Seen: []uint32{2}, Deleted: []uint32{1}})
	switch {
	case err == nil:
		delete(acked, 1)
	case !errors.Is(err, ErrStorageFull):
		t.Errorf("QUIT transaction on a full disk: %v, want nil or ErrStorageFull", err)
	}
	storedMessages(t, s, a.ID, acked)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := deliverAcked(big); err != nil {
		t.Errorf("large delivery once space returned: %v", err)
	}
	if err := deliverAcked(simpleMessage("after")); err != nil {
		t.Errorf("delivery once space returned: %v", err)
	}
	storedMessages(t, s, a.ID, acked)
	s.Close()
	integrityCheck(t, dir)
}

// TestReadOnlyStore: a store whose filesystem is read-only (mounted so, or remounted so
// by the kernel after an error) refuses to open or to deliver with ErrStorageFull, never
// another error, and works again once the filesystem is writable. (A filesystem with files
// open for writing cannot be remounted read-only on purpose, so the store is closed first.)
func TestReadOnlyStore(t *testing.T) {
	sqliteOnly(t, "SQLite on a read-only file system")
	dir := mountTmpfs(t, 8<<20)
	s := openStore(t, dir)
	a := newAccount(t, s, "alice")
	acked := map[uint32]string{}
	d := deliver(t, s, a.ID, simpleMessage("before"), DeliverOptions{})
	acked[d.UID] = simpleMessage("before")
	s.Close()

	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("remount read-only: %v", err)
		}
		t.Skipf("cannot remount read-only here: %v", err)
	}
	remounted := true
	defer func() {
		if remounted {
			syscall.Mount("", dir, "", syscall.MS_REMOUNT, "")
		}
	}()
	ro, err := Open(dir, Options{Logger: quietLogger()})
	if err == nil {
		_, err = ro.Deliver(ctx, a.ID, strings.NewReader(simpleMessage("read-only")), DeliverOptions{})
		ro.Close()
	}
	if !errors.Is(err, ErrStorageFull) {
		t.Errorf("a read-only store: %v, want ErrStorageFull", err)
	}

	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT, ""); err != nil {
		t.Fatal(err)
	}
	remounted = false
	s = openStore(t, dir)
	storedMessages(t, s, a.ID, acked)
	d = deliver(t, s, a.ID, simpleMessage("after"), DeliverOptions{})
	acked[d.UID] = simpleMessage("after")
	storedMessages(t, s, a.ID, acked)
	s.Close()
	integrityCheck(t, dir)
}
