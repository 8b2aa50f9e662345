package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"golang.org/x/crypto/bcrypt"

	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

func TestMain(m *testing.M) {
	// Cheap hashes: the cost is a parameter of each hash, so this tests the same code.
	argonParams = argonConfig{time: 1, memory: 64, threads: 1, keyLen: 32, saltLen: 16}
	os.Exit(m.Run())
}

var ctx = context.Background()

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, testOptions(t, dir, Options{Logger: quietLogger()}))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) *Store {
	return openStore(t, t.TempDir())
}

func newAccount(t testing.TB, s *Store, address string) Account {
	t.Helper()
	a, err := s.CreateAccount(ctx, NewAccount{Address: address, Password: "secret"})
	if err != nil {
		t.Fatalf("CreateAccount(%s): %v", address, err)
	}
	return a
}

func inbox(t testing.TB, s *Store, accountID int64) Mailbox {
	t.Helper()
	m, err := s.MailboxByName(ctx, accountID, "INBOX")
	if err != nil {
		t.Fatalf("MailboxByName(INBOX): %v", err)
	}
	return m
}

func simpleMessage(subject string) string {
	return "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.com>\r\n\r\nHello, " + subject + ".\r\n"
}

func deliver(t testing.TB, s *Store, accountID int64, msg string, opts DeliverOptions) Delivered {
	t.Helper()
	d, err := s.Deliver(ctx, accountID, strings.NewReader(msg), opts)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	return d
}

func readMessage(t testing.TB, s *Store, mailboxID int64, uid uint32) string {
	t.Helper()
	b, err := s.OpenMessage(ctx, mailboxID, uid)
	if err != nil {
		t.Fatalf("OpenMessage(%d): %v", uid, err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("read message %d: %v", uid, err)
	}
	if int64(len(data)) != b.Size() {
		t.Fatalf("message %d: read %d bytes, Size() %d", uid, len(data), b.Size())
	}
	return string(data)
}

func uids(msgs []Message) []uint32 {
	out := make([]uint32, len(msgs))
	for i, m := range msgs {
		out[i] = m.UID
	}
	return out
}

func countRows(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.readers.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenMigratesAndReopens(t *testing.T) {
	sqliteOnly(t, "SQLite files and PRAGMAs")
	dir := filepath.Join(t.TempDir(), "data", "nested")
	s, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v, want 0700", fi.Mode().Perm())
	}
	var version int
	var mode string
	s.readers.QueryRow(`PRAGMA user_version`).Scan(&version)
	s.readers.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if version != len(migrations) || mode != "wal" {
		t.Errorf("user_version %d journal_mode %q, want %d wal", version, mode, len(migrations))
	}
	// Durability rests on the writer's pragmas: an acknowledged write is durable only with
	// WAL and synchronous=FULL (2), which a kill -9 test cannot tell from OFF, since the
	// page cache survives the process. Read them on the writer connection itself, inside a
	// write transaction as every write runs.
	var writerMode string
	var writerSync, foreignKeys int
	err = s.write(context.Background(), "test pragmas", func(wt *writeTx) error {
		if err := wt.tx.QueryRow(`PRAGMA journal_mode`).Scan(&writerMode); err != nil {
			return err
		}
		if err := wt.tx.QueryRow(`PRAGMA synchronous`).Scan(&writerSync); err != nil {
			return err
		}
		return wt.tx.QueryRow(`PRAGMA foreign_keys`).Scan(&foreignKeys)
	})
	if err != nil {
		t.Fatal(err)
	}
	if writerMode != "wal" || writerSync != 2 || foreignKeys != 1 {
		t.Errorf("writer: journal_mode %q synchronous %d foreign_keys %d, want wal 2 (FULL) 1",
			writerMode, writerSync, foreignKeys)
	}
	a := newAccount(t, s, "alice@example.com")
	deliver(t, s, a.ID, simpleMessage("one"), DeliverOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = openStore(t, dir)
	got, err := s.LookupAccount(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.Messages != 1 {
		t.Errorf("after reopen: %d messages, want 1", got.Messages)
	}
	// Readers cannot write, even by mistake.
	if _, err := s.readers.Exec(`DELETE FROM accounts`); err == nil {
		t.Error("reader pool accepted a write")
	}
	// A database from a newer program is refused, not damaged.
	if _, err := s.writer.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir, Options{Logger: quietLogger()}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v", err)
	}
}

func TestAccounts(t *testing.T) {
	s := newStore(t)
	a, err := s.CreateAccount(ctx, NewAccount{Address: " Alice@Example.COM ", Password: "pw1", QuotaBytes: 1000, Protocols: []string{"IMAP"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Address != "alice@example.com" || a.QuotaBytes != 1000 || !a.Allows(ProtocolIMAP) || a.Allows(ProtocolPOP3) || a.Created.IsZero() {
		t.Errorf("created %+v", a)
	}
	if _, err := s.CreateAccount(ctx, NewAccount{Address: "ALICE@example.com", Password: "x"}); !errors.Is(err, ErrAccountExists) {
		t.Errorf("duplicate: %v, want ErrAccountExists", err)
	}

	// Authentication.
	if got, err := s.Authenticate(ctx, "alice@EXAMPLE.com", "pw1"); err != nil || got.ID != a.ID {
		t.Errorf("right password: %v %+v", err, got)
	}
	if _, err := s.Authenticate(ctx, "alice@example.com", "pw2"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := s.Authenticate(ctx, "nobody@example.com", "pw1"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("unknown user: %v", err)
	}
	if err := s.SetPassword(ctx, "alice@example.com", "pw2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "alice@example.com", "pw1"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("old password after SetPassword: %v", err)
	}
	if _, err := s.Authenticate(ctx, "alice@example.com", "pw2"); err != nil {
		t.Errorf("new password: %v", err)
	}
	if err := s.SetPassword(ctx, "nobody@example.com", "x"); !errors.Is(err, ErrNoSuchAccount) {
		t.Errorf("SetPassword unknown: %v", err)
	}
	var hash string
	s.readers.QueryRow(`SELECT password_hash FROM accounts WHERE id = ?`, a.ID).Scan(&hash)
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q is not a PHC argon2id string", hash)
	}

	// Disabled: only the right password learns it.
	if err := s.SetAccountDisabled(ctx, "alice@example.com", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "alice@example.com", "pw2"); !errors.Is(err, ErrAccountDisabled) {
		t.Errorf("disabled, right password: %v", err)
	}
	if _, err := s.Authenticate(ctx, "alice@example.com", "bad"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("disabled, wrong password: %v", err)
	}
	s.SetAccountDisabled(ctx, "alice@example.com", false)

	// bcrypt hashes written by other tools are accepted.
	bh, _ := bcrypt.GenerateFromPassword([]byte("legacy"), bcrypt.MinCost)
	if _, err := s.writer.Exec(`UPDATE accounts SET password_hash = ? WHERE id = ?`, string(bh), a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "alice@example.com", "legacy"); err != nil {
		t.Errorf("bcrypt hash: %v", err)
	}
	if _, err := s.Authenticate(ctx, "alice@example.com", "pw2"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("bcrypt hash, wrong password: %v", err)
	}

	// Bare-name fallback.
	demo := newAccount(t, s, "demo")
	if got, err := s.LookupAccount(ctx, "Demo@Localhost"); err != nil || got.ID != demo.ID {
		t.Errorf("LookupAccount(demo@localhost) = %+v, %v", got, err)
	}
	if _, err := s.LookupAccount(ctx, "other@localhost"); !errors.Is(err, ErrNoSuchAccount) {
		t.Errorf("LookupAccount(unknown): %v", err)
	}
	if _, err := s.Authenticate(ctx, "demo@localhost", "secret"); err != nil {
		t.Errorf("Authenticate via bare name: %v", err)
	}

	// Special folders, all subscribed.
	boxes, err := s.Mailboxes(ctx, demo.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"INBOX": "", "Sent": SpecialSent, "Drafts": SpecialDrafts, "Trash": SpecialTrash, "Junk": SpecialJunk, "Archives": SpecialArchive}
	if len(boxes) != len(want) {
		t.Errorf("mailboxes %+v", boxes)
	}
	for _, m := range boxes {
		if su, ok := want[m.Name]; !ok || su != m.SpecialUse || m.UIDValidity == 0 || m.UIDNext != 1 {
			t.Errorf("mailbox %+v", m)
		}
	}
	if subs, err := s.Subscriptions(ctx, demo.ID); err != nil || !slices.Equal(subs, []string{"Archives", "Drafts", "INBOX", "Junk", "Sent", "Trash"}) {
		t.Errorf("subscriptions of a new account %q, %v", subs, err)
	}

	// Usage in the listing.
	deliver(t, s, demo.ID, simpleMessage("usage"), DeliverOptions{})
	list, err := s.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Address != "alice@example.com" || list[1].Address != "demo" {
		t.Fatalf("Accounts() = %+v", list)
	}
	if list[1].Messages != 1 || list[1].UsedBytes != int64(len(simpleMessage("usage"))) {
		t.Errorf("usage %+v", list[1])
	}

	// Delete removes everything, bodies included.
	if err := s.DeleteAccount(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, "demo"); !errors.Is(err, ErrNoSuchAccount) {
		t.Errorf("second delete: %v", err)
	}
	for _, table := range []string{"mailboxes WHERE account_id = " + fmt.Sprint(demo.ID), "bodies", "body_chunks", "messages", "changes WHERE account_id = " + fmt.Sprint(demo.ID)} {
		if n := countRows(t, s, table); n != 0 {
			t.Errorf("after DeleteAccount: %d rows in %s", n, table)
		}
	}
}

func TestCustomFolders(t *testing.T) {
	s, err := openTest(t, Options{Logger: quietLogger(), Folders: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := newAccount(t, s, "bob")
	boxes, _ := s.Mailboxes(ctx, a.ID)
	if len(boxes) != 1 || boxes[0].Name != "INBOX" {
		t.Errorf("mailboxes %+v, want INBOX only", boxes)
	}
}

func TestMailboxes(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")

	if m, err := s.MailboxByName(ctx, a.ID, "iNbOx"); err != nil || m.Name != "INBOX" {
		t.Errorf("inbox in mixed case: %+v %v", m, err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "inbox", ""); !errors.Is(err, ErrMailboxExists) {
		t.Errorf("create inbox: %v", err)
	}
	work, err := s.CreateMailbox(ctx, a.ID, "Work", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "Work", ""); !errors.Is(err, ErrMailboxExists) {
		t.Errorf("create twice: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, b.ID, "Work", ""); err != nil {
		t.Errorf("same name, other account: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "Work/Projects/Été", ""); err != nil {
		t.Fatal(err)
	}
	deliver(t, s, a.ID, simpleMessage("in work"), DeliverOptions{Mailbox: "Work"})

	// Rename renames children, keeps messages and UIDVALIDITY.
	if err := s.RenameMailbox(ctx, a.ID, "Work", "Job"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MailboxByName(ctx, a.ID, "Work"); !errors.Is(err, ErrNoSuchMailbox) {
		t.Errorf("old name still there: %v", err)
	}
	job, err := s.MailboxByName(ctx, a.ID, "Job")
	if err != nil || job.ID != work.ID || job.UIDValidity != work.UIDValidity {
		t.Errorf("renamed: %+v %v", job, err)
	}
	if _, err := s.MailboxByName(ctx, a.ID, "Job/Projects/Été"); err != nil {
		t.Errorf("child not renamed: %v", err)
	}
	if msgs, _ := s.Messages(ctx, job.ID); len(msgs) != 1 {
		t.Errorf("messages after rename: %d", len(msgs))
	}
	if err := s.RenameMailbox(ctx, a.ID, "Job", "Sent"); !errors.Is(err, ErrMailboxExists) {
		t.Errorf("rename onto existing: %v", err)
	}
	if err := s.RenameMailbox(ctx, a.ID, "Nope", "X"); !errors.Is(err, ErrNoSuchMailbox) {
		t.Errorf("rename missing: %v", err)
	}
	if err := s.RenameMailbox(ctx, a.ID, "Job", "inbox"); !errors.Is(err, ErrMailboxExists) {
		t.Errorf("rename to INBOX: %v", err)
	}

	// Renaming INBOX moves its messages and leaves it empty.
	in := inbox(t, s, a.ID)
	deliver(t, s, a.ID, simpleMessage("first"), DeliverOptions{Flags: []string{FlagSeen}})
	deliver(t, s, a.ID, simpleMessage("second"), DeliverOptions{})
	if err := s.RenameMailbox(ctx, a.ID, "INBOX", "Old Inbox"); err != nil {
		t.Fatal(err)
	}
	old, err := s.MailboxByName(ctx, a.ID, "Old Inbox")
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := s.Messages(ctx, old.ID)
	if !slices.Equal(uids(msgs), []uint32{1, 2}) || !msgs[0].HasFlag(FlagSeen) {
		t.Errorf("moved messages %+v", msgs)
	}
	if readMessage(t, s, old.ID, 2) != simpleMessage("second") {
		t.Error("moved message content differs")
	}
	if msgs, _ := s.Messages(ctx, in.ID); len(msgs) != 0 {
		t.Errorf("INBOX not empty after rename: %d", len(msgs))
	}
	if m := inbox(t, s, a.ID); m.ID != in.ID || m.UIDNext != 3 {
		t.Errorf("INBOX after rename %+v", m)
	}

	// Subscription.
	if err := s.SetSubscribed(ctx, a.ID, "Job", false); err != nil {
		t.Fatal(err)
	}
	if subs, _ := s.Subscriptions(ctx, a.ID); slices.Contains(subs, "Job") {
		t.Error("still subscribed")
	}

	// Delete.
	if err := s.DeleteMailbox(ctx, a.ID, "inbox"); !errors.Is(err, ErrMailboxProtected) {
		t.Errorf("delete INBOX: %v", err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "Job"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MailboxByID(ctx, job.ID); !errors.Is(err, ErrNoSuchMailbox) {
		t.Errorf("deleted mailbox by id: %v", err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "Job"); !errors.Is(err, ErrNoSuchMailbox) {
		t.Errorf("delete twice: %v", err)
	}
	acct, _ := s.LookupAccount(ctx, "alice")
	if acct.Messages != 2 { // the two in "Old Inbox"
		t.Errorf("account counts %d messages, want 2", acct.Messages)
	}

	// Mailbox changes are logged.
	changes, err := s.Changes(ctx, a.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[ChangeKind]int{}
	for _, c := range changes {
		kinds[c.Kind]++
	}
	if kinds[ChangeMailboxCreate] < 8 || kinds[ChangeMailboxRename] != 2 || kinds[ChangeMailboxDelete] != 1 {
		t.Errorf("change kinds %v", kinds)
	}
}

func TestUIDValidityChangesOnRecreate(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	seen := map[uint32]bool{}
	for i := 0; i < 5; i++ {
		m, err := s.CreateMailbox(ctx, a.ID, "Box", "")
		if err != nil {
			t.Fatal(err)
		}
		if seen[m.UIDValidity] || m.UIDValidity == 0 {
			t.Fatalf("UIDVALIDITY %d reused", m.UIDValidity)
		}
		seen[m.UIDValidity] = true
		if err := s.DeleteMailbox(ctx, a.ID, "Box"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTemporaryErrors(t *testing.T) {
	for _, code := range []sqlite3.ErrNo{sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrFull, sqlite3.ErrIoErr} {
		err := wrapErr("op", fmt.Errorf("inner: %w", sqlite3.Error{Code: code}))
		if !errors.Is(err, ErrTemporary) {
			t.Errorf("%v not temporary", code)
		}
	}
	if err := wrapErr("op", sqlite3.Error{Code: sqlite3.ErrConstraint}); errors.Is(err, ErrTemporary) {
		t.Error("constraint error marked temporary")
	}
	if err := wrapErr("op", ErrNoSuchMailbox); !errors.Is(err, ErrNoSuchMailbox) || !strings.Contains(err.Error(), "op") {
		t.Errorf("sentinel lost: %v", err)
	}
	if err := wrapErr("op", sqlite3.Error{Code: sqlite3.ErrBusy}); errors.Is(err, ErrStorageFull) {
		t.Error("a busy database marked full")
	}
}

// A full disk, an exhausted filesystem quota and a read-only store, whether SQLite or the
// spool meets them, are ErrStorageFull (and so ErrTemporary); other I/O errors are not.
func TestStorageFullErrors(t *testing.T) {
	full := []error{
		sqlite3.Error{Code: sqlite3.ErrFull},
		sqlite3.Error{Code: sqlite3.ErrReadonly, ExtendedCode: sqlite3.ErrReadonlyDbMoved},
		sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: syscall.ENOSPC},
		sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrFsync, SystemErrno: syscall.EROFS},
		&os.PathError{Op: "write", Path: "tmp/spool-1", Err: syscall.ENOSPC},
		&os.PathError{Op: "open", Path: "tmp/spool-2", Err: syscall.EROFS},
		&os.PathError{Op: "write", Path: "tmp/spool-3", Err: syscall.EDQUOT},
	}
	for _, inner := range full {
		err := wrapErr("op", fmt.Errorf("inner: %w", inner))
		if !errors.Is(err, ErrStorageFull) || !errors.Is(err, ErrTemporary) {
			t.Errorf("%v: got %v, want ErrStorageFull and ErrTemporary", inner, err)
		}
		if again := wrapErr("outer", err); !errors.Is(again, ErrStorageFull) {
			t.Errorf("wrapping twice lost ErrStorageFull: %v", again)
		}
	}
	for _, inner := range []error{
		sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrRead, SystemErrno: syscall.EIO},
		&os.PathError{Op: "write", Path: "tmp/spool-4", Err: syscall.EIO},
	} {
		if err := wrapErr("op", inner); errors.Is(err, ErrStorageFull) {
			t.Errorf("%v marked full", inner)
		}
	}
}

// A second writer holding the lock longer than the busy timeout yields ErrTemporary.
func TestBusyIsTemporary(t *testing.T) {
	defer func(d time.Duration) { busyTimeout = d }(busyTimeout)
	busyTimeout = time.Second
	s := newStore(t)
	a := newAccount(t, s, "alice")
	// Hold the write lock from another connection (on PostgreSQL, another node's).
	other, err := Open(s.dir, testOptions(t, s.dir, Options{Logger: quietLogger()}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.writer.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = s.Deliver(cctx, a.ID, strings.NewReader(simpleMessage("busy")), DeliverOptions{})
	if !errors.Is(err, ErrTemporary) {
		t.Errorf("deliver while locked: %v, want ErrTemporary", err)
	}
	if d := time.Since(start); d < busyTimeout/2 {
		t.Errorf("gave up after %v, before the busy timeout", d)
	}
}

func TestUIDValidityOption(t *testing.T) {
	// A proposal at or below the account's last UIDVALIDITY is raised to last+1: a mailbox
	// created again still gets a new one, whatever the option says.
	var lasts []uint32
	s, err := openTest(t, Options{Logger: quietLogger(), UIDValidity: func(last uint32) uint32 {
		lasts = append(lasts, last)
		return 1000
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := newAccount(t, s, "alice")
	if m := inbox(t, s, a.ID); m.UIDValidity != 1000 {
		t.Errorf("INBOX UIDVALIDITY %d, want the proposed 1000", m.UIDValidity)
	}
	mbs, err := s.Mailboxes(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	// INBOX first, then the default folders in name order: 1000, 1001, ...
	want := map[string]uint32{"INBOX": 1000, "Archives": 1001, "Drafts": 1002, "Junk": 1003, "Sent": 1004, "Trash": 1005}
	for _, m := range mbs {
		if m.UIDValidity != want[m.Name] {
			t.Errorf("%s: UIDVALIDITY %d, want %d", m.Name, m.UIDValidity, want[m.Name])
		}
	}
	if err := s.DeleteMailbox(ctx, a.ID, "Trash"); err != nil {
		t.Fatal(err)
	}
	m, err := s.CreateMailbox(ctx, a.ID, "Trash", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.UIDValidity != 1006 {
		t.Errorf("recreated Trash: UIDVALIDITY %d, want 1006", m.UIDValidity)
	}
	if !slices.Equal(lasts, []uint32{0, 1000, 1001, 1002, 1003, 1004, 1005}) {
		t.Errorf("option called with last = %v", lasts)
	}
	// Another account starts afresh.
	b := newAccount(t, s, "bob")
	if m := inbox(t, s, b.ID); m.UIDValidity != 1000 {
		t.Errorf("bob's INBOX UIDVALIDITY %d, want 1000", m.UIDValidity)
	}
}

// The writer and the readers map the database file as Options.MmapSize says: the
// default when it is 0, not at all when it is negative.
func TestMmapSize(t *testing.T) {
	sqliteOnly(t, "PRAGMA mmap_size")
	for _, tc := range []struct {
		opt, want int64
	}{{0, sqlite.DefaultMmapSize}, {64 << 20, 64 << 20}, {-1, 0}} {
		s := openStoreWith(t, Options{MmapSize: tc.opt})
		for name, db := range map[string]*sql.DB{"writer": s.writer, "readers": s.readers} {
			var got int64
			if err := db.QueryRow(`PRAGMA mmap_size`).Scan(&got); err != nil || got != tc.want {
				t.Errorf("MmapSize %d: %s mmap_size %d, %v; want %d", tc.opt, name, got, err, tc.want)
			}
		}
	}
}
