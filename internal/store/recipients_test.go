package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

// TestMigrateFromVersion1 opens a database written by a program that knew only the first
// schema version: the later migrations run in order, and what was there survives.
func TestMigrateFromVersion1(t *testing.T) {
	sqliteOnly(t, "SQLite migrations")
	dir := t.TempDir()
	db, err := sqlite.Open(filepath.Join(dir, DBFile), sqlite.Writer, busyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(migrations[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	hash, err := hashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO accounts (address, password_hash, created) VALUES ('old@example.com', ?, 0)`, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO mailboxes (account_id, name, uidvalidity) VALUES (1, 'INBOX', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := openStore(t, dir)
	var version int
	if err := s.readers.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != len(migrations) || version < 2 {
		t.Fatalf("user_version %d after Open, want %d", version, len(migrations))
	}
	if _, err := s.Authenticate(ctx, "old@example.com", "secret"); err != nil {
		t.Fatalf("the version-1 account does not survive the migration: %v", err)
	}
	if err := s.AddAlias(ctx, "info@example.com", "old@example.com"); err != nil {
		t.Fatalf("AddAlias after migration: %v", err)
	}
	a, _, err := s.ResolveRecipient(ctx, "info@example.com", "+")
	if err != nil || a.Address != "old@example.com" {
		t.Fatalf("ResolveRecipient(alias) = %q, %v", a.Address, err)
	}
}

func TestAliases(t *testing.T) {
	s := newStore(t)
	bob := newAccount(t, s, "bob@example.com")
	newAccount(t, s, "carol@example.com")

	if err := s.AddAlias(ctx, "Info@Example.com", "BOB@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAlias(ctx, "sales@example.com", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		alias, account string
		want           error
	}{
		{"info@example.com", "carol@example.com", ErrAliasExists},
		{"carol@example.com", "bob@example.com", ErrAccountExists}, // an account's address
		{"new@example.com", "nobody@example.com", ErrNoSuchAccount},
		{"new@example.com", "info@example.com", ErrNoSuchAccount}, // an alias is no account
	} {
		if err := s.AddAlias(ctx, c.alias, c.account); !errors.Is(err, c.want) {
			t.Errorf("AddAlias(%s, %s) = %v, want %v", c.alias, c.account, err, c.want)
		}
	}
	if err := s.AddAlias(ctx, "two words@example.com", "bob@example.com"); err == nil {
		t.Error("AddAlias accepted an address with a space")
	}
	// An account may not take an alias's address either.
	if _, err := s.CreateAccount(ctx, NewAccount{Address: "INFO@example.com", Password: "x"}); !errors.Is(err, ErrAliasExists) {
		t.Errorf("CreateAccount(alias address) = %v, want ErrAliasExists", err)
	}

	list, err := s.Aliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0] != (Alias{"info@example.com", bob.ID, "bob@example.com"}) ||
		list[1] != (Alias{"sales@example.com", bob.ID, "bob@example.com"}) {
		t.Fatalf("Aliases = %+v", list)
	}

	// An alias is no login name and no account.
	if _, err := s.Authenticate(ctx, "info@example.com", "secret"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("Authenticate(alias) = %v, want ErrAuthFailed", err)
	}
	if _, err := s.LookupAccount(ctx, "info@example.com"); !errors.Is(err, ErrNoSuchAccount) {
		t.Errorf("LookupAccount(alias) = %v, want ErrNoSuchAccount", err)
	}

	if err := s.DeleteAlias(ctx, "sales@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAlias(ctx, "sales@example.com"); !errors.Is(err, ErrNoSuchAlias) {
		t.Errorf("second DeleteAlias = %v, want ErrNoSuchAlias", err)
	}
	if _, _, err := s.ResolveRecipient(ctx, "sales@example.com", "+"); !errors.Is(err, ErrNoSuchAccount) {
		t.Errorf("deleted alias still resolves: %v", err)
	}
	// The address is free again for an account.
	newAccount(t, s, "sales@example.com")

	// Aliases go with their account.
	if err := s.DeleteAccount(ctx, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "aliases"); n != 0 {
		t.Errorf("%d aliases left after deleting their account", n)
	}
}

func TestResolveRecipient(t *testing.T) {
	s := newStore(t)
	bob := newAccount(t, s, "bob@example.com")
	for _, name := range []string{"Work", "work", "Lists/Go", "Reports"} {
		if _, err := s.CreateMailbox(ctx, bob.ID, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	plus := newAccount(t, s, "a+b@example.com") // an account whose address has a "+"
	demo := newAccount(t, s, "demo")            // a bare-name account
	if err := s.AddAlias(ctx, "info@example.com", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	// A bare-name account "info" takes info@any.domain, but not the alias's address.
	info := newAccount(t, s, "info")

	cases := []struct {
		address, delim string
		account        int64 // 0: ErrNoSuchAccount
		mailbox        string
	}{
		{"bob@example.com", "+", bob.ID, ""},
		{"BOB@Example.COM", "+", bob.ID, ""},
		{"bob+work@example.com", "+", bob.ID, "work"}, // exact match first
		{"bob+Work@example.com", "+", bob.ID, "Work"}, // exact match first
		{"bob+WORK@example.com", "+", bob.ID, "Work"}, // then case-insensitive, first by name
		{"bob+reports@example.com", "+", bob.ID, "Reports"},
		{"bob+lists/go@example.com", "+", bob.ID, "Lists/Go"},
		{"bob+inbox@example.com", "+", bob.ID, "INBOX"},
		{"bob+nosuch@example.com", "+", bob.ID, ""},    // missing folder: INBOX, not created
		{"bob+@example.com", "+", bob.ID, ""},          // empty detail
		{"bob+a+b@example.com", "+", bob.ID, ""},       // detail "a+b": no such folder
		{"bob-work@example.com", "+-", bob.ID, "work"}, // each character delimits
		{"bob+work@example.com", "-", 0, ""},           // not this delimiter
		{"bob+work@example.com", "", 0, ""},            // no delimiter: no detail
		{"+work@example.com", "+", 0, ""},              // nothing before the detail
		{"a+b@example.com", "+", plus.ID, ""},          // an exact account wins
		{"a+work@example.com", "+", 0, ""},             // a@example.com does not exist
		{"info@example.com", "+", bob.ID, ""},          // alias
		{"info+reports@example.com", "+", bob.ID, "Reports"},
		{"info+reports@example.com", "", 0, ""},
		{"demo@anywhere.example", "+", demo.ID, ""},    // bare-name fallback
		{"demo+x@anywhere.example", "+", demo.ID, ""},  // ... also after the detail goes
		{"info@example.org", "+", info.ID, ""},         // bare-name fallback
		{"info+reports@example.org", "+", info.ID, ""}, // no folder Reports there
		{"nobody@example.com", "+", 0, ""},
		{"nobody+work@example.com", "+", 0, ""},
	}
	for _, c := range cases {
		a, mailbox, err := s.ResolveRecipient(ctx, c.address, c.delim)
		if c.account == 0 {
			if !errors.Is(err, ErrNoSuchAccount) {
				t.Errorf("ResolveRecipient(%q, %q) = %q, %q, %v; want ErrNoSuchAccount", c.address, c.delim, a.Address, mailbox, err)
			}
			continue
		}
		if err != nil || a.ID != c.account || mailbox != c.mailbox {
			t.Errorf("ResolveRecipient(%q, %q) = %q, %q, %v; want account %d, mailbox %q",
				c.address, c.delim, a.Address, mailbox, err, c.account, c.mailbox)
		}
	}
	// A detail never creates a folder.
	boxes, err := s.Mailboxes(ctx, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range boxes {
		if strings.EqualFold(m.Name, "nosuch") {
			t.Errorf("a folder %q was created for a detail", m.Name)
		}
	}
}

// TestQuotaGrace checks the boundaries of quota grace for Deliver, DeliverSpooled and Copy:
// usage must be below the quota before the addition, and within quota+grace after it.
func TestQuotaGrace(t *testing.T) {
	const grace = 100
	s, err := openTest(t, Options{Logger: quietLogger(), QuotaGrace: func(int64) int64 { return grace }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := newAccount(t, s, "q@example.com")
	in := inbox(t, s, a.ID)

	// message returns a message of exactly n octets (CRLF-normalised).
	message := func(n int) string {
		head := "Subject: grace\r\n\r\n"
		return head + strings.Repeat("x", n-len(head)-2) + "\r\n"
	}
	used := func() int64 {
		t.Helper()
		acct, err := s.LookupAccount(ctx, "q@example.com")
		if err != nil {
			t.Fatal(err)
		}
		return acct.UsedBytes
	}
	setQuota := func(q int64) {
		t.Helper()
		if err := s.SetQuota(ctx, "q@example.com", q); err != nil {
			t.Fatal(err)
		}
	}
	first := deliver(t, s, a.ID, message(500), DeliverOptions{})
	u := used() // 500

	try := func(name string, size int, wantOK bool) {
		t.Helper()
		_, err := s.Deliver(ctx, a.ID, strings.NewReader(message(size)), DeliverOptions{})
		if wantOK && err != nil {
			t.Errorf("%s: Deliver of %d octets: %v, want accepted", name, size, err)
		}
		if !wantOK && !errors.Is(err, ErrOverQuota) {
			t.Errorf("%s: Deliver of %d octets: %v, want ErrOverQuota", name, size, err)
		}
	}

	// One byte under the quota: a message crossing it by the whole grace fits ...
	setQuota(u + 1)
	try("inside grace", 1+grace, true)
	// ... and now the account is over its quota: nothing more, however small.
	try("over quota", 30, false)

	// One byte under the quota, a message one byte beyond the grace: refused.
	setQuota(used() + 1)
	try("outside grace", 1+grace+1, false)

	// Exactly at the quota: refused, even within the grace.
	setQuota(used())
	try("at quota", 30, false)

	// Within the quota without grace: accepted as always.
	setQuota(used() + 40)
	try("within quota", 40, true)

	// DeliverSpooled applies the same rule.
	setQuota(used() + 1)
	sp, err := s.Spool(strings.NewReader(message(1+grace+1)), SpoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeliverSpooled(ctx, a.ID, sp, DeliverOptions{}); !errors.Is(err, ErrOverQuota) {
		t.Errorf("DeliverSpooled outside grace: %v, want ErrOverQuota", err)
	}
	sp.Close()

	// Copy: the 500-octet message crosses a quota one byte away by 499 octets.
	setQuota(used() + 1)
	if _, err := s.Copy(ctx, in.ID, []uint32{first.UID}, in.ID); !errors.Is(err, ErrOverQuota) {
		t.Errorf("Copy outside grace: %v, want ErrOverQuota", err)
	}
	setQuota(used() + 500 - grace) // crossing by exactly the grace
	if _, err := s.Copy(ctx, in.ID, []uint32{first.UID}, in.ID); err != nil {
		t.Errorf("Copy inside grace: %v", err)
	}

	// No grace (nil): crossing the quota by one byte is refused.
	s2 := newStore(t)
	b := newAccount(t, s2, "n@example.com")
	deliver(t, s2, b.ID, message(500), DeliverOptions{})
	if err := s2.SetQuota(ctx, "n@example.com", 501); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Deliver(ctx, b.ID, strings.NewReader(message(30)), DeliverOptions{}); !errors.Is(err, ErrOverQuota) {
		t.Errorf("without grace: %v, want ErrOverQuota", err)
	}
	if err := s2.SetQuota(ctx, "n@example.com", 530); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Deliver(ctx, b.ID, strings.NewReader(message(30)), DeliverOptions{}); err != nil {
		t.Errorf("without grace, filling the quota exactly: %v", err)
	}
}
