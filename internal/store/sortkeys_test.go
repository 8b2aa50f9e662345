package store

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

const sortKeysMessage = "Date: Tue, 03 Feb 2026 10:00:00 +0100\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n" +
	"From: Ann <ann@example.com>\r\nMessage-ID: <m2@x>\r\nIn-Reply-To: <m1@x>\r\n" +
	"References: <m0@x>\r\n <m1@x>\r\n\r\nbody\r\n"

// checkSortKeys asserts what SortData returns of one message delivered as sortKeysMessage
// and one without a Date (its sent date unknown).
func checkSortKeys(t *testing.T, s *Store, mailboxID int64) {
	t.Helper()
	rows, err := s.SortData(ctx, mailboxID, SortThreading|SortAddresses)
	if err != nil || len(rows) != 2 {
		t.Fatalf("SortData: %+v, %v", rows, err)
	}
	r := rows[0]
	want := time.Date(2026, 2, 3, 9, 0, 0, 0, time.UTC)
	if !r.SentDate.Equal(want) || r.Subject != "café" || r.MessageID != "<m2@x>" || r.InReplyTo != "<m1@x>" ||
		r.References != "<m0@x> <m1@x>" || r.Envelope == nil || len(r.Envelope.From) != 1 || r.Envelope.From[0].Mailbox != "ann" {
		t.Errorf("first row %+v, want sent %v and its keys", r, want)
	}
	if r := rows[1]; !r.SentDate.IsZero() || r.Subject != "no date" || r.MessageID != "" || r.References != "" {
		t.Errorf("second row %+v, want no sent date and only a subject", r)
	}
	if rows, err := s.SortData(ctx, mailboxID, 0); err != nil || rows[0].Subject != "" || rows[0].Envelope != nil || !rows[0].SentDate.Equal(want) {
		t.Errorf("SortData without fields: %+v, %v; want the sent date only", rows, err)
	}
}

// Delivery stores the sort keys; a COPY shares them (one row per body), and they go with
// the last message of the body.
func TestSortKeysAtDelivery(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	deliver(t, s, a.ID, sortKeysMessage, DeliverOptions{})
	deliver(t, s, a.ID, "Subject: no date\r\n\r\nx\r\n", DeliverOptions{})
	checkSortKeys(t, s, in.ID)
	var n int
	if err := s.readers.QueryRow(`SELECT count(*) FROM sort_keys`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d sort_keys rows, %v; want 2", n, err)
	}
	uids := []uint32{1, 2}
	if _, err := s.Expunge(ctx, in.ID, uids); err != nil {
		t.Fatal(err)
	}
	if err := s.readers.QueryRow(`SELECT count(*) FROM sort_keys`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d sort_keys rows after the bodies went, %v; want 0", n, err)
	}
}

// The migration fills the keys of the bodies stored before it; a body without keys (a
// path that forgot them) is read from its envelope and header.
func TestSortKeysMigration(t *testing.T) {
	sqliteOnly(t, "SQLite migration 8")
	dir := t.TempDir()
	s := openStore(t, dir)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	deliver(t, s, a.ID, sortKeysMessage, DeliverOptions{})
	deliver(t, s, a.ID, "Subject: no date\r\n\r\nx\r\n", DeliverOptions{})
	if _, err := s.writer.Exec(`DELETE FROM sort_keys WHERE body_id = (SELECT body_id FROM messages WHERE uid = 2)`); err != nil {
		t.Fatal(err)
	}
	checkSortKeys(t, s, in.ID) // uid 2 from its body

	// Back to the schema before it: no sort_keys, and the bodies columns that
	// sqlite.MigrationThreadKeys, after it, dropped.
	for _, q := range []string{`DROP TABLE sort_keys`, `ALTER TABLE bodies ADD COLUMN message_id TEXT`,
		`ALTER TABLE bodies ADD COLUMN parent_ids TEXT`,
		`CREATE INDEX bodies_message_id ON bodies (message_id) WHERE message_id IS NOT NULL`,
		`PRAGMA user_version = ` + strconv.Itoa(sortKeysVersion()-1)} {
		if _, err := s.writer.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	s = openStore(t, dir)
	var n int
	if err := s.readers.QueryRow(`SELECT count(*) FROM sort_keys`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d sort_keys rows after the migration, %v; want 2", n, err)
	}
	checkSortKeys(t, s, in.ID)
}

func sortKeysVersion() int {
	for i, m := range migrations {
		if m == sqlite.MigrationSortKeys {
			return i + 1
		}
	}
	return 0
}

// The sort cache answers as the query would: arrivals and expunges since it was filled
// show, ranges select, and what was not asked for is not handed out.
func TestSortCacheFollowsTheMailbox(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	msg := func(i int) string {
		return "Subject: m" + strconv.Itoa(i) + "\r\nMessage-ID: <" + strconv.Itoa(i) + "@x>\r\n\r\nx\r\n"
	}
	uidsOf := func(fields SortFields, ranges ...UIDRange) []uint32 {
		t.Helper()
		rows, err := s.SortData(ctx, in.ID, fields, ranges...)
		if err != nil {
			t.Fatal(err)
		}
		var uids []uint32
		for _, r := range rows {
			uids = append(uids, r.UID)
			if want := "<" + strconv.Itoa(int(r.UID)) + "@x>"; fields&SortThreading != 0 && r.MessageID != want {
				t.Errorf("uid %d: Message-ID %q, want %q", r.UID, r.MessageID, want)
			}
			if fields == 0 && (r.MessageID != "" || r.Subject != "") {
				t.Errorf("uid %d: %+v without fields asked for", r.UID, r)
			}
		}
		return uids
	}
	for i := 1; i <= 3; i++ {
		deliver(t, s, a.ID, msg(i), DeliverOptions{})
	}
	if got := uidsOf(SortThreading); !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Fatalf("first read: %v", got)
	}
	deliver(t, s, a.ID, msg(4), DeliverOptions{})
	if got := uidsOf(0); !slices.Equal(got, []uint32{1, 2, 3, 4}) {
		t.Errorf("after an arrival: %v, want 1-4", got)
	}
	if _, err := s.Expunge(ctx, in.ID, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	deliver(t, s, a.ID, msg(5), DeliverOptions{})
	if got := uidsOf(SortThreading); !slices.Equal(got, []uint32{1, 3, 4, 5}) {
		t.Errorf("after an expunge and an arrival: %v, want 1 3 4 5", got)
	}
	if got := uidsOf(SortThreading, UIDRange{4, 0}, UIDRange{1, 3}, UIDRange{3, 3}); !slices.Equal(got, []uint32{1, 3, 4, 5}) {
		t.Errorf("ranges 4:*,1:3,3: %v, want 1 3 4 5", got)
	}
	if got := uidsOf(0, UIDRange{2, 3}); !slices.Equal(got, []uint32{3}) {
		t.Errorf("range 2:3: %v, want 3", got)
	}
}

// MessageFlags is what Messages says of each message's UID and flags, in UID order.
func TestMessageFlags(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	for range 3 {
		deliver(t, s, a.ID, "Subject: x\r\n\r\nx\r\n", DeliverOptions{})
	}
	if _, err := s.SetFlags(ctx, in.ID, []uint32{1, 3}, FlagsAdd, []string{FlagSeen, "$Work"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.MessageFlags(ctx, in.ID)
	if err != nil || len(got) != 3 {
		t.Fatalf("MessageFlags: %+v, %v", got, err)
	}
	want, _ := s.Messages(ctx, in.ID)
	for i, m := range want {
		if got[i].UID != m.UID || !slices.Equal(got[i].Flags, m.Flags) {
			t.Errorf("message %d: %+v, want UID %d flags %v", i, got[i], m.UID, m.Flags)
		}
	}
	// Shared slices are clipped: appending to one leaves the others alone.
	_ = append(got[0].Flags, "$Other")
	if !slices.Equal(got[2].Flags, want[2].Flags) {
		t.Errorf("an append to one message's flags changed another's: %v", got[2].Flags)
	}
}

// The flags cache follows flag changes, arrivals and expunges since it was filled, and a
// deleted mailbox has no messages.
func TestMessageFlagsCacheFollowsChanges(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	for range 4 {
		deliver(t, s, a.ID, "Subject: x\r\n\r\nx\r\n", DeliverOptions{})
	}
	same := func(when string) {
		t.Helper()
		got, err := s.MessageFlags(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := s.Messages(ctx, in.ID)
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages, want %d", when, len(got), len(want))
		}
		for i, m := range want {
			if got[i].UID != m.UID || !slices.Equal(got[i].Flags, m.Flags) {
				t.Errorf("%s: message %d is %+v, want UID %d flags %v", when, i, got[i], m.UID, m.Flags)
			}
		}
	}
	same("first read")
	same("unchanged")
	if _, err := s.SetFlags(ctx, in.ID, []uint32{2}, FlagsAdd, []string{FlagFlagged, "$Work"}); err != nil {
		t.Fatal(err)
	}
	same("after a flag change")
	deliver(t, s, a.ID, "Subject: y\r\n\r\ny\r\n", DeliverOptions{})
	if _, err := s.Expunge(ctx, in.ID, []uint32{1, 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetFlags(ctx, in.ID, []uint32{5}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	same("after an arrival, expunges and a flag change")
	box, err := s.CreateMailbox(ctx, a.ID, "Other", "")
	if err != nil {
		t.Fatal(err)
	}
	deliverTo := func() {
		t.Helper()
		if _, err := s.Deliver(ctx, a.ID, strings.NewReader("Subject: z\r\n\r\nz\r\n"), DeliverOptions{Mailbox: "Other"}); err != nil {
			t.Fatal(err)
		}
	}
	deliverTo()
	if got, err := s.MessageFlags(ctx, box.ID); err != nil || len(got) != 1 {
		t.Fatalf("Other: %+v, %v", got, err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "Other"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.MessageFlags(ctx, box.ID); err != nil || len(got) != 0 {
		t.Errorf("a deleted mailbox: %+v, %v; want nothing", got, err)
	}
}
