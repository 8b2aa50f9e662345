package store

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// The tests of Copy (copy.go), what `letterbox store copy` promises (docs/operations.md): a round
// trip SQLite -> PostgreSQL -> SQLite keeps every row (ids, UIDs, UIDVALIDITY, UIDNEXT,
// modseqs, flags, dates, bodies, password hashes, quotas, aliases, protocols,
// subscriptions, tombstones) and every POP3 UIDL; later writes on the copy get keys past
// everything the source handed out; a target that is not empty is refused untouched.
// Named TestStoreCopy* so that `make unit-pg` selects them with the two-node tests. The
// stores are opened on the engine each test names, whatever LETTERBOX_TEST_STORE says.

// openEngine opens a store in a new directory: SQLite when url is empty, else the
// PostgreSQL database url names.
func openEngine(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{Logger: quietLogger(), URL: url})
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// copyFixture is what fillCopySource stored, for the checks after a copy.
type copyFixture struct {
	passwords map[string]string // address -> password, of the enabled accounts
	big       []byte            // the multi-chunk message as stored
}

// bigCopyMessage is a message of several 64 KiB chunks whose header and body carry 8-bit
// octets (not all UTF-8) and whose body carries NUL and every other octet value.
func bigCopyMessage() []byte {
	var b bytes.Buffer
	b.WriteString("From: Zoë <zoe@example.org>\r\nTo: ann@example.test\r\nSubject: caf\xe9 \xff r\xc3\xa9sum\xc3\xa9\r\n" +
		"Message-ID: <big@example.org>\r\nDate: Tue, 02 Jan 2024 10:00:00 +0100\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	line := make([]byte, 0, 256)
	for i := 0; i < 256; i++ {
		if i != '\r' && i != '\n' {
			line = append(line, byte(i))
		}
	}
	line = append(line, '\r', '\n')
	for b.Len() < 3*chunkSize+12345 {
		b.Write(line)
	}
	return b.Bytes()
}

func smallMessage(i int, subject string) string {
	return fmt.Sprintf("From: alice@example.org\r\nTo: ann@example.test\r\nSubject: %s\r\n"+
		"Message-ID: <m%d@example.org>\r\nReferences: <m%d@example.org>\r\nDate: Mon, 01 Jan 2024 09:%02d:00 -0500\r\n\r\nbody %d\r\n", subject, i, i-1, i%60, i)
}

// fillCopySource fills s with several accounts (one disabled, one deleted), aliases,
// quotas, protocol plans, mailboxes (one deleted, with its tombstones), subscriptions,
// flags and keywords, copies sharing a body, expunged messages and a multi-chunk body.
func fillCopySource(t *testing.T, s *Store) copyFixture {
	t.Helper()
	fx := copyFixture{passwords: map[string]string{}}
	mk := func(a NewAccount) Account {
		acct, err := s.CreateAccount(ctx, a)
		if err != nil {
			t.Fatalf("CreateAccount(%s): %v", a.Address, err)
		}
		fx.passwords[acct.Address] = a.Password
		return acct
	}
	deliver := func(acct Account, raw []byte, opts DeliverOptions) Delivered {
		d, err := s.Deliver(ctx, acct.ID, bytes.NewReader(raw), opts)
		if err != nil {
			t.Fatalf("Deliver to %s: %v", acct.Address, err)
		}
		return d
	}
	// An account created and deleted first: the copy must not hand its ids out again.
	gone := mk(NewAccount{Address: "gone@example.test", Password: "pw-gone"})
	deliver(gone, []byte(smallMessage(900, "gone")), DeliverOptions{})
	if err := s.DeleteAccount(ctx, gone.Address); err != nil {
		t.Fatal(err)
	}
	delete(fx.passwords, gone.Address)

	ann := mk(NewAccount{Address: "ann@example.test", Password: "pw-ann", QuotaBytes: 50 << 20, QuotaMessages: 1000})
	bob := mk(NewAccount{Address: "bob@example.test", Password: "pw-bob", Protocols: []string{"pop3"}})
	cid := mk(NewAccount{Address: "cid@example.test", Password: "pw-cid", Protocols: []string{"imap"}})
	if err := s.SetAccountDisabled(ctx, cid.Address, true); err != nil {
		t.Fatal(err)
	}
	delete(fx.passwords, cid.Address)
	for alias, to := range map[string]string{"postmaster@example.test": ann.Address, "ann.b@example.test": ann.Address, "robert@example.test": bob.Address} {
		if err := s.AddAlias(ctx, alias, to); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateMailbox(ctx, ann.ID, "Work/Projects", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSubscribed(ctx, ann.ID, "Not/There/Yet", true); err != nil {
		t.Fatal(err)
	}
	old, err := s.CreateMailbox(ctx, ann.ID, "Old", "")
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 1, 2, 10, 0, 0, 0, time.FixedZone("", 3600+1800))
	big := deliver(ann, bigCopyMessage(), DeliverOptions{Flags: []string{`\Seen`, "$Label1"}, InternalDate: when})
	var inbox []Delivered
	for i := 1; i <= 12; i++ {
		inbox = append(inbox, deliver(ann, []byte(smallMessage(i, fmt.Sprintf("note %d", i))), DeliverOptions{
			InternalDate: when.Add(time.Duration(i) * time.Hour)}))
	}
	for i := 1; i <= 3; i++ {
		deliver(ann, []byte(smallMessage(100+i, "old")), DeliverOptions{Mailbox: "Old"})
		deliver(bob, []byte(smallMessage(200+i, "for bob")), DeliverOptions{})
	}
	if _, err := s.SetFlags(ctx, big.MailboxID, []uint32{inbox[0].UID, inbox[3].UID}, FlagsAdd, []string{`\Flagged`, `\Answered`, "Project-X"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetFlags(ctx, big.MailboxID, []uint32{inbox[4].UID}, FlagsAdd, []string{`\Deleted`, `\Draft`}); err != nil {
		t.Fatal(err)
	}
	work, err := s.MailboxByName(ctx, ann.ID, "Work/Projects")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Copy(ctx, big.MailboxID, []uint32{big.UID, inbox[1].UID}, work.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, big.MailboxID, []uint32{inbox[2].UID, inbox[6].UID, inbox[7].UID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimRecent(ctx, big.MailboxID, inbox[9].UID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(ctx, ann.ID, old.Name); err != nil {
		t.Fatal(err)
	}
	// The last message delivered, then expunged: the highest body id and message id the
	// source handed out are in no row any more.
	last := deliver(bob, []byte(smallMessage(300, "last")), DeliverOptions{})
	if _, err := s.Expunge(ctx, last.MailboxID, []uint32{last.UID}); err != nil {
		t.Fatal(err)
	}
	b, err := s.OpenMessage(ctx, big.MailboxID, big.UID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if fx.big, err = io.ReadAll(b); err != nil {
		t.Fatal(err)
	}
	if len(fx.big) <= 3*chunkSize {
		t.Fatalf("the big message is %d octets, want more than 3 chunks", len(fx.big))
	}
	return fx
}

// storeDump is every row Copy copies, each as text, sorted per table; the account
// counters (recomputed by the triggers) are in it too.
func storeDump(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	tables := append(slices.Clone(copyTables), chunkTable, sortKeysTable)
	for _, tb := range tables {
		cols := tb.cols
		if tb.name == "accounts" {
			cols = append(slices.Clone(cols), "used_bytes", "message_count")
		}
		rows, err := s.readers.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+tb.name)
		if err != nil {
			t.Fatalf("dump %s: %v", tb.name, err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, v := range vals {
				if x, ok := v.([]byte); ok {
					v = string(x)
				}
				fmt.Fprintf(&b, "%s=%q ", cols[i], fmt.Sprint(v))
			}
			out[tb.name] = append(out[tb.name], b.String())
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out[tb.name])
	}
	return out
}

// sqliteTypes is, per column of the tables SQLite stores text in, the storage classes
// SQLite holds (typeof), so that a copy into SQLite is seen to keep text as text.
func sqliteTypes(t *testing.T, s *Store) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT group_concat(DISTINCT typeof(header) || typeof(body_text) || typeof(envelope) || typeof(structure)) FROM bodies`,
		`SELECT group_concat(DISTINCT typeof(subject) || typeof(message_id) || typeof(refs) || typeof(in_reply_to)) FROM sort_keys`,
		`SELECT group_concat(DISTINCT typeof(keywords)) FROM messages`,
		`SELECT group_concat(DISTINCT typeof(data)) FROM body_chunks`,
	} {
		var v sql.NullString
		if err := s.readers.QueryRowContext(ctx, q).Scan(&v); err != nil {
			t.Fatal(err)
		}
		b.WriteString(v.String + ";")
	}
	return b.String()
}

func compareDumps(t *testing.T, what string, want, got map[string][]string) {
	t.Helper()
	for table, rows := range want {
		if !slices.Equal(rows, got[table]) {
			t.Errorf("%s: table %s differs:\nwant %d rows:\n  %s\ngot %d rows:\n  %s", what, table,
				len(rows), strings.Join(rows, "\n  "), len(got[table]), strings.Join(got[table], "\n  "))
		}
	}
}

// uidls is every account's POP3 UIDL listing (the default pop3.uidl_format) and every
// message's bytes, by address and mailbox.
func uidls(t *testing.T, s *Store) (map[string][]string, map[string][]byte) {
	t.Helper()
	lists := map[string][]string{}
	bodies := map[string][]byte{}
	accts, err := s.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		mboxes, err := s.Mailboxes(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, mb := range mboxes {
			msgs, err := s.Messages(ctx, mb.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if mb.Name == "INBOX" {
					u, err := maildrop.FormatUIDL(maildrop.DefaultUIDLFormat, m.UID, mb.UIDValidity)
					if err != nil {
						t.Fatal(err)
					}
					lists[a.Address] = append(lists[a.Address], u)
				}
				b, err := s.OpenMessage(ctx, mb.ID, m.UID)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := io.ReadAll(b)
				b.Close()
				if err != nil {
					t.Fatal(err)
				}
				bodies[fmt.Sprintf("%s %s %d", a.Address, mb.Name, m.UID)] = raw
			}
		}
	}
	return lists, bodies
}

// checkCopy checks a copy against its source through the domain API: UIDLs, bytes,
// mailboxes (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ), messages (flags, MODSEQ, dates),
// tombstones (QRESYNC's VANISHED), passwords, aliases, quotas.
func checkCopy(t *testing.T, what string, src, dst *Store, fx copyFixture) {
	t.Helper()
	compareDumps(t, what, storeDump(t, src), storeDump(t, dst))
	wantUIDLs, wantBodies := uidls(t, src)
	gotUIDLs, gotBodies := uidls(t, dst)
	if len(wantUIDLs["ann@example.test"]) == 0 || len(wantUIDLs["bob@example.test"]) == 0 {
		t.Fatalf("%s: the source has no UIDLs to compare: %v", what, wantUIDLs)
	}
	for addr, want := range wantUIDLs {
		if !slices.Equal(want, gotUIDLs[addr]) {
			t.Errorf("%s: %s's UIDLs: got %v, want %v", what, addr, gotUIDLs[addr], want)
		}
	}
	for key, want := range wantBodies {
		if !bytes.Equal(want, gotBodies[key]) {
			t.Errorf("%s: message %s: %d octets differ from the source's %d", what, key, len(gotBodies[key]), len(want))
		}
	}
	if len(gotBodies) != len(wantBodies) {
		t.Errorf("%s: %d messages, want %d", what, len(gotBodies), len(wantBodies))
	}
	if !bytes.Equal(gotBodies["ann@example.test INBOX 1"], fx.big) {
		t.Errorf("%s: the multi-chunk message is not byte-identical", what)
	}
	accts, err := src.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		got, err := dst.LookupAccount(ctx, a.Address)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(a) {
			t.Errorf("%s: account %s: got %+v, want %+v", what, a.Address, got, a)
		}
		if pw, ok := fx.passwords[a.Address]; ok {
			if _, err := dst.Authenticate(ctx, a.Address, pw); err != nil {
				t.Errorf("%s: %s's password does not verify on the copy: %v", what, a.Address, err)
			}
			if _, err := dst.Authenticate(ctx, a.Address, pw+"x"); err == nil {
				t.Errorf("%s: %s: a wrong password verifies on the copy", what, a.Address)
			}
		} else if _, err := dst.Authenticate(ctx, a.Address, "pw-cid"); !errors.Is(err, ErrAccountDisabled) {
			t.Errorf("%s: the disabled account %s: Authenticate gave %v, want ErrAccountDisabled", what, a.Address, err)
		}
		wantHigh, _ := src.HighestModSeq(ctx, a.ID)
		gotHigh, _ := dst.HighestModSeq(ctx, a.ID)
		if gotHigh != wantHigh || wantHigh == 0 {
			t.Errorf("%s: %s: HIGHESTMODSEQ %d, want %d", what, a.Address, gotHigh, wantHigh)
		}
		wantBoxes, _ := src.Mailboxes(ctx, a.ID)
		gotBoxes, _ := dst.Mailboxes(ctx, a.ID)
		if fmt.Sprint(gotBoxes) != fmt.Sprint(wantBoxes) {
			t.Errorf("%s: %s's mailboxes:\ngot  %+v\nwant %+v", what, a.Address, gotBoxes, wantBoxes)
		}
		for _, mb := range wantBoxes {
			wantMsgs, _ := src.Messages(ctx, mb.ID)
			gotMsgs, _ := dst.Messages(ctx, mb.ID)
			if fmt.Sprint(gotMsgs) != fmt.Sprint(wantMsgs) {
				t.Errorf("%s: %s %s's messages:\ngot  %+v\nwant %+v", what, a.Address, mb.Name, gotMsgs, wantMsgs)
			}
			wantV, err1 := src.Vanished(ctx, mb.ID, 1)
			gotV, err2 := dst.Vanished(ctx, mb.ID, 1)
			if err1 != nil || err2 != nil || fmt.Sprint(gotV) != fmt.Sprint(wantV) {
				t.Errorf("%s: %s %s: VANISHED since 1: got %+v (%v), want %+v (%v)", what, a.Address, mb.Name, gotV, err2, wantV, err1)
			}
		}
		wantCh, _ := src.Changes(ctx, a.ID, 0)
		gotCh, _ := dst.Changes(ctx, a.ID, 0)
		if fmt.Sprint(gotCh) != fmt.Sprint(wantCh) {
			t.Errorf("%s: %s's change log differs", what, a.Address)
		}
	}
	wantAliases, _ := src.Aliases(ctx)
	gotAliases, _ := dst.Aliases(ctx)
	slices.SortFunc(wantAliases, func(a, b Alias) int { return strings.Compare(a.Address, b.Address) })
	slices.SortFunc(gotAliases, func(a, b Alias) int { return strings.Compare(a.Address, b.Address) })
	if len(wantAliases) != 3 || fmt.Sprint(gotAliases) != fmt.Sprint(wantAliases) {
		t.Errorf("%s: aliases: got %v, want %v", what, gotAliases, wantAliases)
	}
}

// counters is the highest key of each sequenced table the store has handed out.
func counters(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	tx, err := s.readers.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	c := &copier{ctx: ctx, src: tx, srcPG: s.pg}
	n, err := c.sourceCounters()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkNewWrites checks that writes on a copy get keys past everything its source handed
// out: the next UID of INBOX, and new message, body, mailbox and account ids and modseqs.
func checkNewWrites(t *testing.T, what string, src, dst *Store) {
	t.Helper()
	before := counters(t, src)
	ann, err := dst.LookupAccount(ctx, "ann@example.test")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := dst.MailboxByName(ctx, ann.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	d, err := dst.Deliver(ctx, ann.ID, strings.NewReader(smallMessage(5000, "after the copy")), DeliverOptions{})
	if err != nil {
		t.Fatalf("%s: a delivery into the copy: %v", what, err)
	}
	if d.UID != inbox.UIDNext || d.UIDValidity != inbox.UIDValidity {
		t.Errorf("%s: a new delivery got UID %d (UIDVALIDITY %d), want UIDNEXT %d (%d)", what, d.UID, d.UIDValidity, inbox.UIDNext, inbox.UIDValidity)
	}
	if d.ModSeq <= before["changes"] {
		t.Errorf("%s: a new delivery got modseq %d, which the source had handed out (up to %d)", what, d.ModSeq, before["changes"])
	}
	msgs, err := dst.Messages(ctx, inbox.ID, UIDRange{Start: d.UID, Stop: d.UID})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%s: the new message: %v %v", what, msgs, err)
	}
	if msgs[0].ID <= before["messages"] || msgs[0].BodyID <= before["bodies"] {
		t.Errorf("%s: the new message got id %d and body id %d; the source had handed out up to %d and %d", what, msgs[0].ID, msgs[0].BodyID, before["messages"], before["bodies"])
	}
	mb, err := dst.CreateMailbox(ctx, ann.ID, "New after copy", "")
	if err != nil {
		t.Fatal(err)
	}
	if mb.ID <= before["mailboxes"] {
		t.Errorf("%s: a new mailbox got id %d; the source had handed out up to %d", what, mb.ID, before["mailboxes"])
	}
	a, err := dst.CreateAccount(ctx, NewAccount{Address: "new@example.test", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID <= before["accounts"] {
		t.Errorf("%s: a new account got id %d; the source had handed out up to %d", what, a.ID, before["accounts"])
	}
}

// The round trip SQLite -> PostgreSQL -> SQLite, every row, UIDL and octet
// kept; SQLite's text stays text after its time as PostgreSQL's BYTEA; and each copy
// takes new writes with keys past the source's.
func TestStoreCopyRoundTripPostgres(t *testing.T) {
	pgURL := storetest.Database(t)
	// Small transactions and statements: the copy takes many, and a body's chunks span
	// several.
	defer func(b, r, sb int) { copyTxBytes, copyTxRows, copyStmtBytes = b, r, sb }(copyTxBytes, copyTxRows, copyStmtBytes)
	copyTxBytes, copyTxRows, copyStmtBytes = 100<<10, 7, 100<<10

	src := openEngine(t, "")
	fx := fillCopySource(t, src)
	pg := openEngine(t, pgURL)
	var reports []CopyProgress
	got, err := Copy(ctx, src, pg, func(p CopyProgress) { reports = append(reports, p) })
	if err != nil {
		t.Fatalf("Copy SQLite -> PostgreSQL: %v", err)
	}
	checkProgress(t, reports, got)
	checkCopy(t, "SQLite -> PostgreSQL", src, pg, fx)

	back := openEngine(t, "")
	if _, err := Copy(ctx, pg, back, nil); err != nil {
		t.Fatalf("Copy PostgreSQL -> SQLite: %v", err)
	}
	checkCopy(t, "SQLite -> PostgreSQL -> SQLite", src, back, fx)
	if got, want := sqliteTypes(t, back), sqliteTypes(t, src); got != want {
		t.Errorf("storage classes after the round trip: got %s, want %s", got, want)
	}
	if got, want := counters(t, back), counters(t, src); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sequences after the round trip: got %v, want %v", got, want)
	}
	checkNewWrites(t, "PostgreSQL copy", src, pg)
	checkNewWrites(t, "SQLite copy of the PostgreSQL copy", src, back)
}

// SQLite -> SQLite, and from a backup file: the same checks without PostgreSQL.
func TestStoreCopySQLite(t *testing.T) {
	defer func(b, r, sb int) { copyTxBytes, copyTxRows, copyStmtBytes = b, r, sb }(copyTxBytes, copyTxRows, copyStmtBytes)
	copyTxBytes, copyTxRows, copyStmtBytes = 100<<10, 7, 100<<10
	src := openEngine(t, "")
	fx := fillCopySource(t, src)

	dst := openEngine(t, "")
	if _, err := Copy(ctx, src, dst, nil); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	checkCopy(t, "SQLite -> SQLite", src, dst, fx)
	if got, want := sqliteTypes(t, dst), sqliteTypes(t, src); got != want {
		t.Errorf("storage classes: got %s, want %s", got, want)
	}

	file := filepath.Join(t.TempDir(), "backup.db")
	if err := src.Backup(ctx, file); err != nil {
		t.Fatal(err)
	}
	fromBackup := openEngine(t, "")
	if _, err := CopyBackup(ctx, file, fromBackup, nil); err != nil {
		t.Fatalf("CopyBackup: %v", err)
	}
	checkCopy(t, "backup file -> SQLite", src, fromBackup, fx)
	checkNewWrites(t, "SQLite copy", src, dst)
	checkNewWrites(t, "copy of a backup", src, fromBackup)
}

// checkProgress checks the reports of one copy: counts that only grow, up to the totals,
// the last one the result.
func checkProgress(t *testing.T, reports []CopyProgress, final CopyProgress) {
	t.Helper()
	if len(reports) < 3 {
		t.Fatalf("%d progress reports, want one per transaction (several): %+v", len(reports), reports)
	}
	if first := reports[0]; first.Messages != 0 || first.Bytes != 0 || first.MessagesTotal == 0 || first.BytesTotal == 0 {
		t.Errorf("first report %+v: want nothing copied yet, of known totals", first)
	}
	for i := 1; i < len(reports); i++ {
		p, q := reports[i-1], reports[i]
		if q.Messages < p.Messages || q.Bytes < p.Bytes || q.Accounts < p.Accounts || q.Bytes > q.BytesTotal || q.Messages > q.MessagesTotal {
			t.Errorf("report %d %+v after %+v", i, q, p)
		}
	}
	last := reports[len(reports)-1]
	if last != final || last.Messages != last.MessagesTotal || last.Bytes != last.BytesTotal || last.Accounts != 3 {
		t.Errorf("last report %+v, result %+v: want everything copied (3 accounts)", last, final)
	}
}

// A target that holds anything is refused, on either engine, with nothing written; the
// check before Open (CheckEmpty) says the same without creating or migrating a store.
func TestStoreCopyRefusesNonEmptyTarget(t *testing.T) {
	src := openEngine(t, "")
	fillCopySource(t, src)
	targets := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"SQLite", func(*testing.T) string { return "" }},
		{"PostgreSQL", func(t *testing.T) string { return storetest.Database(t) }},
	}
	for _, tc := range targets {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url(t)
			dir := t.TempDir()
			if err := CheckEmpty(ctx, dir, url); err != nil {
				t.Fatalf("CheckEmpty before any store exists: %v", err)
			}
			dst, err := Open(dir, Options{Logger: quietLogger(), URL: url})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if err := CheckEmpty(ctx, dir, url); err != nil {
				t.Fatalf("CheckEmpty on a new store: %v", err)
			}
			// Only an alias-free account with its default mailboxes; then only a
			// subscription left behind: each is "not empty".
			if _, err := dst.CreateAccount(ctx, NewAccount{Address: "there@example.test", Password: "pw"}); err != nil {
				t.Fatal(err)
			}
			before := storeDump(t, dst)
			_, err = Copy(ctx, src, dst, nil)
			if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "1 account") {
				t.Fatalf("Copy into a store with an account: %v, want ErrNotEmpty saying 1 account", err)
			}
			compareDumps(t, "the refused target", before, storeDump(t, dst))
			if err := CheckEmpty(ctx, dir, url); !errors.Is(err, ErrNotEmpty) {
				t.Errorf("CheckEmpty on a store with an account: %v, want ErrNotEmpty", err)
			}
			file := filepath.Join(t.TempDir(), "backup.db")
			if err := src.Backup(ctx, file); err != nil {
				t.Fatal(err)
			}
			if _, err := CopyBackup(ctx, file, dst, nil); !errors.Is(err, ErrNotEmpty) {
				t.Errorf("CopyBackup into a store with an account: %v, want ErrNotEmpty", err)
			}
			compareDumps(t, "the refused target", before, storeDump(t, dst))
		})
	}
}

// copyDerived are the columns and tables Copy leaves to the target to compute again
// (copy.go's notes): the account counters the triggers keep, the search index and its mark,
// PostgreSQL's login penalties and counter, and its schema version (Open migrates the
// target; SQLite keeps the version in PRAGMA user_version).
var copyDerived = map[string]bool{
	"accounts.used_bytes": true, "accounts.message_count": true,
	"bodies_fts": true, "bodies_fts_state": true, "login_penalties": true, "modseq_counter": true,
	"letterbox_schema": true,
}

// TestStoreCopyCoversTheSchema holds copyTables to the schema: every column of every table
// of a new store is copied or named in copyDerived. A migration that adds a table or a
// column fails here until Copy carries it (or says why not), instead of a copy silently
// losing it.
func TestStoreCopyCoversTheSchema(t *testing.T) {
	s, err := openTest(t, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	q := `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE 'bodies_fts_%'`
	if s.pg {
		q = `SELECT table_name, column_name FROM information_schema.columns
			WHERE table_schema = current_schema()`
	}
	rows, err := s.readers.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	copied := map[string]bool{}
	for _, ct := range append(slices.Clone(copyTables), chunkTable, sortKeysTable) {
		for _, c := range ct.cols {
			copied[ct.name+"."+c] = true
		}
	}
	seen := map[string]bool{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		seen[table+"."+col] = true
		if !copied[table+"."+col] && !copyDerived[table+"."+col] && !copyDerived[table] {
			t.Errorf("%s.%s is in the schema but neither copied by Copy nor named in copyDerived", table, col)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for c := range copied {
		if !seen[c] {
			t.Errorf("Copy copies %s, which the schema does not have", c)
		}
	}
}
