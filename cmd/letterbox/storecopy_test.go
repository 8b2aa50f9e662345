package main

// `letterbox store copy` as a process (the real binary, through lb), and its progress
// line. The store's own tests (internal/store/copy_test.go) check every row of a copy; these check
// the command: the round trip SQLite -> PostgreSQL -> SQLite through the command line
// with every message byte-identical and every POP3 UIDL unchanged, a copy from a backup
// file, the refusal of a target that is not empty, and the progress shown only on a
// terminal. The PostgreSQL ones skip without LETTERBOX_TEST_PG_URL; `make unit-pg` runs
// them (-run 'Cluster|StoreCopy').

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// copySource makes an SQLite store in a new data directory through the command line
// (accounts with quotas and protocol plans, an alias, deliveries, one of them a message
// of several chunks with 8-bit octets), then flags, copies and expunges some messages
// through the store.
func copySource(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	d := "--data=" + data
	expectCode(t, lb(t, nil, "pw-ann\n", "user", "add", "ann@example.test", "--password-stdin", "--quota", "20M", "--quota-messages", "500", d), 0, "user add ann")
	expectCode(t, lb(t, nil, "pw-bob\n", "user", "add", "bob@example.test", "--password-stdin", "--protocols", "pop3", d), 0, "user add bob")
	expectCode(t, lb(t, nil, "", "alias", "add", "postmaster@example.test", "ann@example.test", d), 0, "alias add")
	var big strings.Builder
	big.WriteString("From: z@example.org\nSubject: caf\xe9 \xc3\xa9t\xc3\xa9\nContent-Transfer-Encoding: 8bit\n\n")
	for big.Len() < 200<<10 {
		big.WriteString("8-bit \x80\x81\xfe\xff \xc3\xa9 and more text on a line of its own\n")
	}
	expectCode(t, lb(t, nil, big.String(), "deliver", "--to", "ann@example.test", d), 0, "deliver the big message")
	for i := 1; i <= 5; i++ {
		msg := fmt.Sprintf("From: a@example.org\nSubject: note %d\nMessage-ID: <%d@example.org>\n\nbody %d\n", i, i, i)
		expectCode(t, lb(t, nil, msg, "deliver", "--to", "ann@example.test", d), 0, "deliver to ann")
		expectCode(t, lb(t, nil, msg, "deliver", "--to", "postmaster@example.test", d), 0, "deliver to the alias")
		expectCode(t, lb(t, nil, msg, "deliver", "--to", "bob@example.test", d), 0, "deliver to bob")
	}
	ctx := context.Background()
	st := openTestStore(t, data)
	ann, err := st.LookupAccount(ctx, "ann@example.test")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := st.MailboxByName(ctx, ann.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetFlags(ctx, inbox.ID, []uint32{1, 3}, store.FlagsAdd, []string{`\Seen`, "$Label2"}); err != nil {
		t.Fatal(err)
	}
	archive, err := st.MailboxByName(ctx, ann.ID, "Archives")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Copy(ctx, inbox.ID, []uint32{1, 2}, archive.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Expunge(ctx, inbox.ID, []uint32{2, 5}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

// storeView is what clients and administrators see of a store, as text: accounts with
// their quotas, aliases, mailboxes with UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ, messages
// with UID, flags, MODSEQ, dates and a digest of their octets, POP3 UIDLs, and QRESYNC's
// VANISHED since modseq 1. url is "" for the SQLite store in data.
func storeView(t *testing.T, data, url string) string {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(data, store.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var b strings.Builder
	accts, err := st.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aliases, err := st.Aliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "aliases %v\n", aliases)
	for _, a := range accts {
		high, err := st.HighestModSeq(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "account %+v highestmodseq %d\n", a, high)
		mbs, err := st.Mailboxes(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, mb := range mbs {
			fmt.Fprintf(&b, " mailbox %+v\n", mb)
			msgs, err := st.Messages(ctx, mb.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				body, err := st.OpenMessage(ctx, mb.ID, m.UID)
				if err != nil {
					t.Fatal(err)
				}
				h := sha256.New()
				n, err := io.Copy(h, body)
				body.Close()
				if err != nil {
					t.Fatal(err)
				}
				uidl, err := maildrop.FormatUIDL(maildrop.DefaultUIDLFormat, m.UID, mb.UIDValidity)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "  message %+v date %s uidl %s octets %d sha256 %x\n", m, m.InternalDate.Format("2006-01-02T15:04:05-07:00"), uidl, n, h.Sum(nil))
			}
			v, err := st.Vanished(ctx, mb.ID, 1)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "  vanished %+v\n", v)
		}
	}
	return b.String()
}

// checkCopyCLI checks the summary line of a copy and that stderr, not a terminal, shows
// no progress.
func checkCopyCLI(t *testing.T, r result, what string) {
	t.Helper()
	expectCode(t, r, 0, what)
	if !strings.HasPrefix(r.stdout, "copied 2 accounts, 12 mailboxes, 16 messages (") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("%s: stdout %q, want one summary line of 2 accounts, 12 mailboxes, 16 messages", what, r.stdout)
	}
	if strings.Contains(r.stderr, "\r") || strings.Contains(r.stderr, "copying") {
		t.Errorf("%s: progress on a stderr that is not a terminal: %q", what, r.stderr)
	}
}

// checkDeliveryAfterCopy delivers through the command line into a copy and checks the
// message gets INBOX's UIDNEXT of before.
func checkDeliveryAfterCopy(t *testing.T, data, url string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(data, store.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	ann, _ := st.LookupAccount(ctx, "ann@example.test")
	inbox, err := st.MailboxByName(ctx, ann.ID, "INBOX")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"deliver", "--to", "ann@example.test", "--data", data}
	if url != "" {
		args = append(args, "--store", url)
	}
	expectCode(t, lb(t, nil, "Subject: after\n\nafter the copy\n", args...), 0, "deliver into the copy")
	st, err = store.Open(data, store.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	msgs, err := st.Messages(ctx, inbox.ID)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("INBOX of the copy: %v %v", msgs, err)
	}
	if got := msgs[len(msgs)-1].UID; got != inbox.UIDNext {
		t.Errorf("a delivery into the copy got UID %d, want UIDNEXT %d", got, inbox.UIDNext)
	}
}

// The round trip through the command line: SQLite -> PostgreSQL (--to URL) ->
// SQLite (--store URL as the source), with everything a client sees unchanged.
func TestStoreCopyCLIPostgres(t *testing.T) {
	url := storetest.Database(t)
	src := copySource(t)
	want := storeView(t, src, "")

	r := lb(t, nil, "", "store", "copy", "--data", src, "--to", url)
	checkCopyCLI(t, r, "store copy --to postgres://")
	if got := storeView(t, t.TempDir(), url); got != want {
		t.Errorf("the PostgreSQL copy differs:\ngot:\n%s\nwant:\n%s", got, want)
	}
	back := filepath.Join(t.TempDir(), "back")
	r = lb(t, nil, "", "store", "copy", "--data", t.TempDir(), "--store", url, "--to", "sqlite://"+back)
	checkCopyCLI(t, r, "store copy --store postgres:// --to sqlite://")
	if got := storeView(t, back, ""); got != want {
		t.Errorf("the SQLite copy of the PostgreSQL copy differs:\ngot:\n%s\nwant:\n%s", got, want)
	}
	checkDeliveryAfterCopy(t, back, "")
	checkDeliveryAfterCopy(t, t.TempDir(), url)

	// The PostgreSQL store is not empty now: refused, with nothing written.
	before := storeView(t, t.TempDir(), url)
	r = lb(t, nil, "", "store", "copy", "--data", src, "--to", url)
	expectCode(t, r, exitCantCrt, "store copy into a PostgreSQL store that is not empty")
	if !strings.Contains(r.stderr, "not empty") || !strings.Contains(r.stderr, "nothing was written") {
		t.Errorf("the refusal says %q", r.stderr)
	}
	if got := storeView(t, t.TempDir(), url); got != before {
		t.Errorf("the refused PostgreSQL target changed:\ngot:\n%s\nwant:\n%s", got, before)
	}
}

// SQLite -> SQLite (a plain directory), and from a backup file (--from); then the
// refusal of a target that is not empty, which leaves its database file as it was.
func TestStoreCopyCLISQLite(t *testing.T) {
	src := copySource(t)
	want := storeView(t, src, "")

	dst := filepath.Join(t.TempDir(), "copy")
	checkCopyCLI(t, lb(t, nil, "", "store", "copy", "--data", src, "--to", dst), "store copy --to DIR")
	if got := storeView(t, dst, ""); got != want {
		t.Errorf("the copy differs:\ngot:\n%s\nwant:\n%s", got, want)
	}

	file := filepath.Join(t.TempDir(), "backup.db")
	expectCode(t, lb(t, nil, "", "backup", file, "--data", src), 0, "backup")
	fromBackup := filepath.Join(t.TempDir(), "restored")
	r := lb(t, nil, "", "store", "copy", "--data", filepath.Join(t.TempDir(), "none"), "--from", file, "--to", "sqlite://"+fromBackup)
	checkCopyCLI(t, r, "store copy --from FILE")
	if got := storeView(t, fromBackup, ""); got != want {
		t.Errorf("the copy of the backup differs:\ngot:\n%s\nwant:\n%s", got, want)
	}
	checkDeliveryAfterCopy(t, dst, "")

	db := filepath.Join(dst, store.DBFile)
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	r = lb(t, nil, "", "store", "copy", "--data", src, "--to", dst)
	expectCode(t, r, exitCantCrt, "store copy into a store that is not empty")
	for _, w := range []string{"not empty", "2 account", "nothing was written"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("the refusal does not say %q: %q", w, r.stderr)
		}
	}
	after, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the refused target's database file changed")
	}
	if entries, _ := os.ReadDir(dst); len(entries) != 2 { // letterbox.db, tmp
		t.Errorf("the refused target's directory holds %v, want letterbox.db and tmp only", entries)
	}
	// Usage errors: no --to, a target that is the source, a file as the target.
	expectCode(t, lb(t, nil, "", "store", "copy", "--data", src), exitUsage, "store copy without --to")
	expectCode(t, lb(t, nil, "", "store", "copy", "--data", src, "--to", src), exitUsage, "store copy onto itself")
	expectCode(t, lb(t, nil, "", "store", "copy", "--data", src, "--to", file), exitUsage, "store copy to a file")
	expectCode(t, lb(t, nil, "", "store", "copy", "--data", filepath.Join(t.TempDir(), "none"), "--to", t.TempDir()), exitNoInput, "store copy of no store")
}

// Progress: on a terminal, one line rewritten in place (\r, erase line) up to the totals,
// ended by a newline, and the summary on stdout; elsewhere the summary alone. The
// command runs in this process, with the terminal decision made for it.
func TestStoreCopyProgress(t *testing.T) {
	src := copySource(t)
	defer func(f func(io.Writer) bool) { copyTerminal = f }(copyTerminal)
	for _, terminal := range []bool{true, false} {
		copyTerminal = func(io.Writer) bool { return terminal }
		root := newRootCmd()
		var stdout, stderr bytes.Buffer
		root.SetOut(&stdout)
		root.SetErr(&stderr)
		root.SetArgs([]string{"store", "copy", "--data", src, "--to", filepath.Join(t.TempDir(), "copy"), "--log-level", "error"})
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("terminal %v: %v", terminal, err)
		}
		if !strings.HasPrefix(stdout.String(), "copied 2 accounts, 12 mailboxes, 16 messages") {
			t.Errorf("terminal %v: stdout %q", terminal, stdout.String())
		}
		out := stderr.String()
		if !terminal {
			if out != "" {
				t.Errorf("not a terminal: stderr %q, want nothing", out)
			}
			continue
		}
		lines := strings.Split(out, "\r\x1b[K")
		if len(lines) < 3 || lines[0] != "" || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
			t.Fatalf("terminal: stderr %q, want a line rewritten in place (at least twice), then a newline", out)
		}
		if !strings.HasPrefix(lines[1], "copying: 0/16 messages, 0/") {
			t.Errorf("terminal: first state %q, want nothing copied yet of 16 messages", lines[1])
		}
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "copying: 16/16 messages, ") || !strings.Contains(last, "(100%), 2 accounts, 12 mailboxes") {
			t.Errorf("terminal: last state %q, want everything copied", last)
		}
	}
}
