package store

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func spoolAll(t *testing.T, s *Store, uids []uint32, flags ...string) []ImportedMessage {
	t.Helper()
	var out []ImportedMessage
	for _, uid := range uids {
		sp, err := s.Spool(strings.NewReader(simpleMessage("uid "+string(rune('0'+uid%10)))), SpoolOptions{Migrated: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		out = append(out, ImportedMessage{UID: uid, Message: sp, Flags: flags,
			InternalDate: time.Date(2024, 1, 15, 9, 30, 0, 0, time.FixedZone("", 3600))})
	}
	return out
}

func TestImportKeepsUIDs(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	start, err := s.HighestModSeq(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}

	// INBOX exists (every account has one) but never held a message: it takes the
	// imported UIDVALIDITY, even one below what the account handed out.
	m, err := s.ImportMailbox(ctx, a.ID, "inbox", 1000)
	if err != nil || m.Name != "INBOX" || m.UIDValidity != 1000 {
		t.Fatalf("ImportMailbox(INBOX) = %+v, %v", m, err)
	}
	res, err := s.ImportMessages(ctx, m.ID, spoolAll(t, s, []uint32{3, 7, 8}, `\Seen`, "$Label1"))
	if err != nil || res.Imported != 3 || res.Skipped != 0 {
		t.Fatalf("ImportMessages = %+v, %v", res, err)
	}
	if err := s.RaiseUIDNext(ctx, m.ID, 12); err != nil {
		t.Fatal(err)
	}
	if err := s.RaiseUIDNext(ctx, m.ID, 5); err != nil { // never lowers
		t.Fatal(err)
	}
	msgs, err := s.Messages(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := uids(msgs); len(got) != 3 || got[0] != 3 || got[1] != 7 || got[2] != 8 {
		t.Fatalf("UIDs %v, want 3 7 8", got)
	}
	if !msgs[0].HasFlag(`\Seen`) || !msgs[0].HasFlag("$Label1") || msgs[0].InternalDate.Unix() != 1705307400 {
		t.Errorf("message: %+v", msgs[0])
	}
	if _, off := msgs[0].InternalDate.Zone(); off != 3600 {
		t.Errorf("INTERNALDATE zone %d, want +0100 kept", off)
	}
	st, err := s.Status(ctx, m.ID)
	if err != nil || st.UIDNext != 12 || st.UIDValidity != 1000 || st.Messages != 3 {
		t.Fatalf("status %+v, %v", st, err)
	}
	// Counters and the change log move as with any delivery.
	acct, err := s.LookupAccount(ctx, "alice")
	if err != nil || acct.Messages != 3 || acct.UsedBytes != st.Size {
		t.Errorf("account counters %+v, %v (size %d)", acct, err, st.Size)
	}
	changes, err := s.Changes(ctx, a.ID, start)
	if err != nil || len(changes) != 3 || changes[0].Kind != ChangeAppend || changes[2].UID != 8 {
		t.Errorf("changes %+v, %v", changes, err)
	}

	// A delivery after the import continues above the old server's UIDNEXT.
	if d := deliver(t, s, a.ID, simpleMessage("new"), DeliverOptions{}); d.UID != 12 {
		t.Errorf("next delivery got UID %d, want 12", d.UID)
	}

	// Running the import again (same UIDVALIDITY) skips what is there and adds the rest.
	m, err = s.ImportMailbox(ctx, a.ID, "INBOX", 1000)
	if err != nil {
		t.Fatal(err)
	}
	res, err = s.ImportMessages(ctx, m.ID, spoolAll(t, s, []uint32{3, 7, 8, 13}))
	if err != nil || res.Imported != 1 || res.Skipped != 3 {
		t.Errorf("re-import = %+v, %v; want 1 imported, 3 skipped", res, err)
	}

	// Another UIDVALIDITY into a mailbox that has held messages: refused.
	if _, err := s.ImportMailbox(ctx, a.ID, "INBOX", 2000); !errors.Is(err, ErrUIDValidityMismatch) {
		t.Errorf("import under another UIDVALIDITY: %v", err)
	}

	// A new mailbox takes the given UIDVALIDITY; mailboxes created later still get one
	// above every UIDVALIDITY the account has had.
	big := uint32(time.Now().Unix() + 1e6)
	w, err := s.ImportMailbox(ctx, a.ID, "Work/Clients", big)
	if err != nil || w.UIDValidity != big || w.UIDNext != 1 {
		t.Fatalf("ImportMailbox(new) = %+v, %v", w, err)
	}
	later, err := s.CreateMailbox(ctx, a.ID, "Later", "")
	if err != nil || later.UIDValidity <= big {
		t.Errorf("a mailbox created after the import: UIDVALIDITY %d, want above %d (%v)", later.UIDValidity, big, err)
	}
}

func TestImportQuotaAndOrder(t *testing.T) {
	s := newStore(t)
	a, err := s.CreateAccount(ctx, NewAccount{Address: "bob", Password: "pw", QuotaBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.ImportMailbox(ctx, a.ID, "INBOX", 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs := spoolAll(t, s, []uint32{1, 2, 3, 4, 5})
	if _, err := s.ImportMessages(ctx, m.ID, msgs); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("over quota: %v", err)
	}
	// The batch is one transaction: nothing of it stayed.
	if got, _ := s.Messages(ctx, m.ID); len(got) != 0 {
		t.Errorf("%d messages stored by a refused batch", len(got))
	}
}

func TestExportSnapshot(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "carol")
	in := inbox(t, s, a.ID)
	d1 := deliver(t, s, a.ID, simpleMessage("one"), DeliverOptions{Flags: []string{`\Flagged`}})
	deliver(t, s, a.ID, simpleMessage("two"), DeliverOptions{})
	err := s.ExportSnapshot(ctx, a.ID, func(mailboxes []MailboxExport, copyBody func(int64, io.Writer) error) error {
		// Changes made meanwhile are not seen: the export is one snapshot.
		if _, err := s.Expunge(ctx, in.ID, []uint32{d1.UID}); err != nil {
			return err
		}
		deliver(t, s, a.ID, simpleMessage("three"), DeliverOptions{})
		var inboxExport *MailboxExport
		for i := range mailboxes {
			if mailboxes[i].Name == "INBOX" {
				inboxExport = &mailboxes[i]
			}
		}
		if inboxExport == nil || len(inboxExport.Messages) != 2 || !inboxExport.Messages[0].HasFlag(`\Flagged`) {
			t.Fatalf("INBOX in the snapshot: %+v", inboxExport)
		}
		var buf bytes.Buffer
		if err := copyBody(inboxExport.Messages[0].BodyID, &buf); err != nil {
			return err
		}
		if buf.String() != simpleMessage("one") {
			t.Errorf("body of an expunged message read from the snapshot: %q", buf.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A folder the import creates is subscribed, as docs/migration.md promises; subscriptions
// are their own names now (schema 5), so the import adds it.
func TestImportSubscribesNewFolders(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	if _, err := s.ImportMailbox(ctx, a.ID, "Lists/Go", 0); err != nil {
		t.Fatal(err)
	}
	if subs, err := s.Subscriptions(ctx, a.ID); err != nil || !slices.Contains(subs, "Lists/Go") {
		t.Errorf("subscriptions after importing Lists/Go: %q, %v", subs, err)
	}
}
