package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRestore(t *testing.T) {
	sqliteOnly(t, "Restore reads an SQLite file")
	dir := t.TempDir()
	s := openStore(t, dir)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	deliver(t, s, a.ID, simpleMessage("kept"), DeliverOptions{})
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	after := deliver(t, s, a.ID, simpleMessage("after the backup"), DeliverOptions{})
	afterMsg := mustMessagesNoT(s, in.ID)[1]
	temp, err := s.CreateMailbox(ctx, a.ID, "Temp", "")
	if err != nil {
		t.Fatal(err)
	}
	lastModSeq, err := s.HighestModSeq(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}

	// Not while the store is open: the server would go on writing into a replaced file.
	if _, err := Restore(ctx, dir, backup); !errors.Is(err, ErrInUse) {
		t.Fatalf("restore while open: %v, want ErrInUse", err)
	}
	if got := uids(mustMessagesNoT(s, in.ID)); len(got) != 2 {
		t.Fatalf("a refused restore changed the store: %v", got)
	}
	s.Close()

	// Not from something that is not a whole store.
	bad := filepath.Join(t.TempDir(), "bad.db")
	os.WriteFile(bad, []byte("not a database"), 0o600)
	if _, err := Restore(ctx, dir, bad); err == nil {
		t.Error("restore of a file that is not a database succeeded")
	}
	if _, err := Restore(ctx, dir, filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Error("restore of a missing file succeeded")
	}

	kept, err := Restore(ctx, dir, backup)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the replaced database was not kept: %v", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(filepath.Join(dir, DBFile+suffix)); err == nil {
			t.Errorf("%s left beside the restored database", suffix)
		}
	}
	r := openStore(t, dir)
	msgs := mustMessagesNoT(r, in.ID)
	if len(msgs) != 1 || msgs[0].UID != 1 {
		t.Fatalf("restored INBOX: %v", uids(msgs))
	}
	// The UID handed out after the backup (2) is not handed out again: a POP3 client that
	// downloaded that message would take the next one for it (same UIDL).
	d := deliver(t, r, a.ID, simpleMessage("new"), DeliverOptions{})
	if d.UID != 3 {
		t.Errorf("first delivery after the restore: UID %d, want 3", d.UID)
	}
	// Nor an EMAILID (RFC 8474: it names one content for good).
	if m := mustMessagesNoT(r, in.ID)[1]; m.EmailID() == afterMsg.EmailID() {
		t.Errorf("EMAILID %s of UID %d, given after the backup to UID %d, handed out again", m.EmailID(), d.UID, after.UID)
	}
	// Nor a UIDVALIDITY, a MAILBOXID or a modseq.
	if m, err := r.CreateMailbox(ctx, a.ID, "Temp", ""); err != nil || m.UIDValidity <= temp.UIDValidity || m.ObjectID() == temp.ObjectID() {
		t.Errorf("Temp created again after the restore: UIDVALIDITY %d, want above %d; MAILBOXID %s, was %s (%v)",
			m.UIDValidity, temp.UIDValidity, m.ObjectID(), temp.ObjectID(), err)
	}
	if ms, err := r.HighestModSeq(ctx, a.ID); err != nil || ms <= lastModSeq+1 {
		t.Errorf("highest modseq after the restore %d, want above %d (%v)", ms, lastModSeq+1, err)
	}
	checkIntegrity(t, r)
}
