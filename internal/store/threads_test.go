package store

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// reply is a message with the given Message-ID and In-Reply-To / References fields.
func reply(id, inReplyTo, references string) string {
	h := "From: bob@example.com\r\nTo: alice@example.com\r\nSubject: x\r\nMessage-ID: <" + id + ">\r\n"
	if inReplyTo != "" {
		h += "In-Reply-To: <" + inReplyTo + ">\r\n"
	}
	if references != "" {
		h += "References: " + references + "\r\n"
	}
	return h + "\r\nbody\r\n"
}

// TestThreadIDs: THREADID (RFC 8474 §5.2) is the same for a message, its replies (by
// In-Reply-To or References, in any mailbox of the account) and its copies, differs for
// unrelated messages, and does not cross accounts.
func TestThreadIDs(t *testing.T) {
	s := openStoreWith(t, Options{})
	a := newAccount(t, s, "alice@example.com")
	b := newAccount(t, s, "bob@example.com")
	in := inbox(t, s, a.ID)
	folder, err := s.CreateMailbox(ctx, a.ID, "Folder", "")
	if err != nil {
		t.Fatal(err)
	}
	thread := func(mailboxID int64, uid uint32) string {
		t.Helper()
		return messageAt(t, s, mailboxID, uid).ThreadID()
	}
	root := deliver(t, s, a.ID, reply("root@x", "", ""), DeliverOptions{})
	r1 := deliver(t, s, a.ID, reply("r1@x", "root@x", ""), DeliverOptions{Mailbox: "Folder"})
	r2 := deliver(t, s, a.ID, reply("r2@x", "", "<root@x> <r1@x>"), DeliverOptions{})
	r3 := deliver(t, s, a.ID, reply("r3@x", "r2@x", ""), DeliverOptions{})
	other := deliver(t, s, a.ID, reply("other@x", "nowhere@x", ""), DeliverOptions{})
	want := thread(in.ID, root.UID)
	// The thread is named by its first message's body, the number of its EMAILID.
	if emailID := messageAt(t, s, in.ID, root.UID).EmailID(); want != "T"+emailID[1:] {
		t.Fatalf("root's THREADID %q, EMAILID %s", want, messageAt(t, s, in.ID, root.UID).EmailID())
	}
	for name, got := range map[string]string{
		"In-Reply-To, another mailbox": thread(folder.ID, r1.UID),
		"References":                   thread(in.ID, r2.UID),
		"reply to a reply":             thread(in.ID, r3.UID),
	} {
		if got != want {
			t.Errorf("%s: THREADID %q, want %q", name, got, want)
		}
	}
	if got := thread(in.ID, other.UID); got == "" || got == want {
		t.Errorf("unrelated message: THREADID %q (root's %q)", got, want)
	}
	pairs, err := s.Copy(ctx, in.ID, []uint32{other.UID}, folder.ID)
	if err != nil || len(pairs) != 1 {
		t.Fatalf("Copy: %v %v", pairs, err)
	}
	if got := thread(folder.ID, pairs[0].Dst); got != thread(in.ID, other.UID) {
		t.Errorf("copy: THREADID %q, original's %q", got, thread(in.ID, other.UID))
	}
	// Another account has no root: the same reply begins its own thread there.
	rb := deliver(t, s, b.ID, reply("r1b@x", "root@x", ""), DeliverOptions{})
	if got := thread(inbox(t, s, b.ID).ID, rb.UID); got == "" || got == want {
		t.Errorf("another account: THREADID %q (alice's thread %q)", got, want)
	}
}

// The threading keys' migration, on a store made by the code before it (testdata/
// schema8.db.gz: schema version 8, written by `letterbox deliver` of that version, four
// messages: root@x; r1@x In-Reply-To root@x; r2@x References root@x r1@x; other@x): the
// THREADIDs stay, bodies loses its copies of the keys, and a new reply finds its thread
// through sort_keys, by In-Reply-To and by References.
func TestThreadKeysMigration(t *testing.T) {
	sqliteOnly(t, "a SQLite schema-8 database file")
	dir := t.TempDir()
	gz, err := os.ReadFile("testdata/schema8.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	db, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DBFile), db, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	var version int
	if err := s.readers.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("schema version %d, %v; want %d", version, err, len(migrations))
	}
	for _, col := range []string{"message_id", "parent_ids"} {
		var n int
		if err := s.readers.QueryRow(`SELECT count(*) FROM pragma_table_info('bodies') WHERE name = ?`, col).Scan(&n); err != nil || n != 0 {
			t.Errorf("bodies.%s still there (%d, %v)", col, n, err)
		}
	}
	a, err := s.LookupAccount(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	in := inbox(t, s, a.ID)
	thread := func(uid uint32) string {
		t.Helper()
		return messageAt(t, s, in.ID, uid).ThreadID()
	}
	root, other := thread(1), thread(4)
	if root == "" || other == "" || root == other || thread(2) != root || thread(3) != root {
		t.Fatalf("THREADIDs after the migration: %q %q %q %q, want 1-3 in one, 4 in another", root, thread(2), thread(3), other)
	}
	r3 := deliver(t, s, a.ID, reply("r3@x", "r2@x", ""), DeliverOptions{})
	r4 := deliver(t, s, a.ID, reply("r4@x", "", "<nowhere@x> <other@x>"), DeliverOptions{})
	alone := deliver(t, s, a.ID, reply("alone@x", "nowhere@x", ""), DeliverOptions{})
	if got := thread(r3.UID); got != root {
		t.Errorf("reply by In-Reply-To to a message stored before: THREADID %q, want %q", got, root)
	}
	if got := thread(r4.UID); got != other {
		t.Errorf("reply by References to a message stored before: THREADID %q, want %q", got, other)
	}
	if got := thread(alone.UID); got == root || got == other || got == "" {
		t.Errorf("unrelated message: THREADID %q", got)
	}
	// SORT's and THREAD's keys are where they were.
	rows, err := s.SortData(ctx, in.ID, SortThreading)
	if err != nil || len(rows) != 7 || rows[0].MessageID != "<root@x>" || rows[2].References != "<root@x> <r1@x>" || rows[1].InReplyTo != "<root@x>" {
		t.Errorf("SortData after the migration: %+v, %v", rows, err)
	}
}
