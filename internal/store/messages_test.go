package store

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestUIDsNeverReused(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	for i := 1; i <= 5; i++ {
		if d := deliver(t, s, a.ID, simpleMessage(fmt.Sprint(i)), DeliverOptions{}); d.UID != uint32(i) {
			t.Fatalf("delivery %d got UID %d", i, d.UID)
		}
	}
	if got, err := s.Expunge(ctx, in.ID, []uint32{4, 5, 99}); err != nil || !slices.Equal(got, []uint32{4, 5}) {
		t.Fatalf("Expunge = %v, %v", got, err)
	}
	s.Close()

	s = openStore(t, dir)
	if d := deliver(t, s, a.ID, simpleMessage("6"), DeliverOptions{}); d.UID != 6 {
		t.Errorf("after expunge and reopen: UID %d, want 6", d.UID)
	}
	if m := inbox(t, s, a.ID); m.UIDNext != 7 || m.UIDValidity != in.UIDValidity {
		t.Errorf("mailbox %+v", m)
	}
	if got := uids(mustMessages(t, s, in.ID)); !slices.Equal(got, []uint32{1, 2, 3, 6}) {
		t.Errorf("UIDs %v", got)
	}
	// Ranges: "*" (Stop 0), reversed ranges, several ranges, many ranges.
	for _, c := range []struct {
		ranges []UIDRange
		want   []uint32
	}{
		{[]UIDRange{{3, 0}}, []uint32{3, 6}},
		{[]UIDRange{{6, 2}}, []uint32{2, 3, 6}},
		{[]UIDRange{{1, 1}, {6, 6}}, []uint32{1, 6}},
		{[]UIDRange{{4, 5}}, nil},
	} {
		if got := uids(mustMessages(t, s, in.ID, c.ranges...)); !slices.Equal(got, c.want) {
			t.Errorf("Messages(%v) = %v, want %v", c.ranges, got, c.want)
		}
	}
	var many []UIDRange
	for u := uint32(1); u <= 200; u += 2 {
		many = append(many, UIDRange{u, u})
	}
	if got := uids(mustMessages(t, s, in.ID, many...)); !slices.Equal(got, []uint32{1, 3}) {
		t.Errorf("Messages(100 ranges) = %v", got)
	}
	if md, err := s.Metadata(ctx, in.ID, many...); err != nil || len(md) != 2 {
		t.Errorf("Metadata(100 ranges) = %d, %v", len(md), err)
	}
}

func TestOpenMessageAfterExpunge(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	raw, _ := bigMessage(3 * chunkSize)
	d := deliver(t, s, a.ID, raw, DeliverOptions{})
	b, err := s.OpenMessage(ctx, d.MailboxID, d.UID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := s.Expunge(ctx, d.MailboxID, []uint32{d.UID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenMessage(ctx, d.MailboxID, d.UID); !errors.Is(err, ErrNoSuchMessage) {
		t.Errorf("OpenMessage after expunge: %v", err)
	}
	// A body opened before the expunge still has the first chunk it read when it was
	// opened, and fails cleanly past it, once the rest of its bytes are gone.
	if _, err := b.ReadAt(make([]byte, 10), 0); err != nil {
		t.Errorf("reading the first chunk of an expunged body: %v", err)
	}
	if _, err := b.ReadAt(make([]byte, 10), chunkSize); !errors.Is(err, ErrNoSuchMessage) {
		t.Errorf("reading an expunged body: %v", err)
	}
	if _, err := s.OpenMessage(ctx, d.MailboxID, 12345); !errors.Is(err, ErrNoSuchMessage) {
		t.Errorf("OpenMessage of a UID never used: %v", err)
	}
}

func TestSetFlags(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	for i := 0; i < 3; i++ {
		deliver(t, s, a.ID, simpleMessage(fmt.Sprint(i)), DeliverOptions{})
	}
	before := inbox(t, s, a.ID).ModSeq

	up, err := s.SetFlags(ctx, in.ID, []uint32{1, 2, 77}, FlagsAdd, []string{`\SEEN`, `\flagged`, "Work"})
	if err != nil {
		t.Fatal(err)
	}
	if len(up) != 2 || up[0].UID != 1 || up[1].UID != 2 || fmt.Sprint(up[0].Flags) != `[\Flagged \Seen Work]` {
		t.Fatalf("add: %+v", up)
	}
	if up[0].ModSeq <= before || up[1].ModSeq <= up[0].ModSeq {
		t.Errorf("modseqs %d %d after %d", up[0].ModSeq, up[1].ModSeq, before)
	}
	// Adding what is there changes nothing and reports nothing.
	if up, _ := s.SetFlags(ctx, in.ID, []uint32{1}, FlagsAdd, []string{`\Seen`, "work"}); len(up) != 0 {
		t.Errorf("no-op add reported %+v", up)
	}
	up, _ = s.SetFlags(ctx, in.ID, []uint32{1, 2, 3}, FlagsRemove, []string{"WORK", `\Flagged`})
	if len(up) != 2 || fmt.Sprint(up[0].Flags) != `[\Seen]` {
		t.Errorf("remove: %+v", up)
	}
	// Replace reports every message, changed or not.
	up, _ = s.SetFlags(ctx, in.ID, []uint32{1, 2, 3}, FlagsReplace, []string{`\Seen`})
	if len(up) != 3 {
		t.Errorf("replace: %+v", up)
	}
	msgs := mustMessages(t, s, in.ID)
	if !msgs[2].HasFlag(`\seen`) || msgs[2].ModSeq != up[2].ModSeq || msgs[0].ModSeq != up[0].ModSeq {
		t.Errorf("messages after replace %+v", msgs)
	}
	if m := inbox(t, s, a.ID); m.ModSeq != up[2].ModSeq {
		t.Errorf("mailbox modseq %d, want %d", m.ModSeq, up[2].ModSeq)
	}
	up, _ = s.SetFlags(ctx, in.ID, []uint32{3}, FlagsReplace, []string{"$Label2", `\Deleted`, `\Answered`, `\Draft`, "$label1"})
	if fmt.Sprint(up[0].Flags) != `[\Answered \Deleted \Draft $label1 $Label2]` {
		t.Errorf("sorted flags %q", up[0].Flags)
	}
	if _, err := s.SetFlags(ctx, 9999, []uint32{1}, FlagsAdd, []string{`\Seen`}); !errors.Is(err, ErrNoSuchMailbox) {
		t.Errorf("unknown mailbox: %v", err)
	}

	st, err := s.Status(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 3 || st.Unseen != 1 || st.Deleted != 1 || st.UIDNext != 4 || st.Size != msgs[0].Size+msgs[1].Size+msgs[2].Size {
		t.Errorf("status %+v", st)
	}

	changes, _ := s.Changes(ctx, a.ID, before)
	flagChanges := 0
	for i, c := range changes {
		if c.Kind == ChangeFlags {
			flagChanges++
		}
		if i > 0 && c.ModSeq <= changes[i-1].ModSeq {
			t.Error("changes not ascending")
		}
	}
	if flagChanges != 2+2+1+1 { // add, remove, replace (only 3 changed), replace
		t.Errorf("%d flag changes, want 6", flagChanges)
	}
}

func TestExpungeTombstones(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	for i := 0; i < 4; i++ {
		deliver(t, s, a.ID, simpleMessage(fmt.Sprint(i)), DeliverOptions{})
	}
	s.SetFlags(ctx, in.ID, []uint32{2, 4}, FlagsAdd, []string{`\Deleted`})
	since, _ := s.HighestModSeq(ctx, a.ID)
	got, err := s.Expunge(ctx, in.ID, nil)
	if err != nil || !slices.Equal(got, []uint32{2, 4}) {
		t.Fatalf("Expunge(nil) = %v, %v", got, err)
	}
	if got, _ := s.Expunge(ctx, in.ID, []uint32{}); len(got) != 0 {
		t.Errorf("Expunge(empty) removed %v", got)
	}
	changes, _ := s.Changes(ctx, a.ID, since)
	if len(changes) != 2 || changes[0].Kind != ChangeExpunge || changes[0].UID != 2 || changes[1].UID != 4 || changes[0].MailboxID != in.ID {
		t.Errorf("tombstones %+v", changes)
	}
	if hi, _ := s.HighestModSeq(ctx, a.ID); hi != changes[1].ModSeq {
		t.Errorf("HighestModSeq %d, want %d", hi, changes[1].ModSeq)
	}
	acct, _ := s.LookupAccount(ctx, "alice")
	msgs := mustMessages(t, s, in.ID)
	if acct.Messages != 2 || acct.UsedBytes != msgs[0].Size+msgs[1].Size {
		t.Errorf("counters %+v", acct)
	}
	// Deleting the mailbox leaves tombstones for its messages too.
	s.CreateMailbox(ctx, a.ID, "Box", "")
	box, _ := s.MailboxByName(ctx, a.ID, "Box")
	s.Copy(ctx, in.ID, []uint32{1, 3}, box.ID)
	since, _ = s.HighestModSeq(ctx, a.ID)
	if err := s.DeleteMailbox(ctx, a.ID, "Box"); err != nil {
		t.Fatal(err)
	}
	changes, _ = s.Changes(ctx, a.ID, since)
	if len(changes) != 3 || changes[0].Kind != ChangeExpunge || changes[2].Kind != ChangeMailboxDelete || changes[2].MailboxID != box.ID {
		t.Errorf("delete mailbox changes %+v", changes)
	}
}

// TestExpungeDeleted: of the UIDs named, only those flagged \Deleted go (UID EXPUNGE), and
// Expunge with explicit UIDs removes them whatever their flags (POP3 QUIT).
func TestExpungeDeleted(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	for i := 0; i < 5; i++ {
		deliver(t, s, a.ID, simpleMessage(fmt.Sprint(i)), DeliverOptions{})
	}
	s.SetFlags(ctx, in.ID, []uint32{1, 2, 5}, FlagsAdd, []string{`\Deleted`})
	got, err := s.ExpungeDeleted(ctx, in.ID, []uint32{1, 3, 4})
	if err != nil || !slices.Equal(got, []uint32{1}) {
		t.Fatalf("ExpungeDeleted(1,3,4) = %v, %v; want [1]", got, err)
	}
	if got, _ := s.ExpungeDeleted(ctx, in.ID, []uint32{}); len(got) != 0 {
		t.Errorf("ExpungeDeleted(empty) removed %v", got)
	}
	if got, _ := s.Expunge(ctx, in.ID, []uint32{3}); !slices.Equal(got, []uint32{3}) {
		t.Errorf("Expunge(3) of an unflagged message = %v", got)
	}
	if got, _ := s.ExpungeDeleted(ctx, in.ID, nil); !slices.Equal(got, []uint32{2, 5}) {
		t.Errorf("ExpungeDeleted(nil) = %v, want [2 5]", got)
	}
	var left []uint32
	for _, m := range mustMessages(t, s, in.ID) {
		left = append(left, m.UID)
	}
	if !slices.Equal(left, []uint32{4}) {
		t.Errorf("left %v, want [4]", left)
	}
}

func TestCopyMoveShareBodies(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	archive, _ := s.MailboxByName(ctx, a.ID, "Archives")
	trash, _ := s.MailboxByName(ctx, a.ID, "Trash")
	for i := 0; i < 3; i++ {
		deliver(t, s, a.ID, simpleMessage(fmt.Sprint(i)), DeliverOptions{Flags: []string{"k" + fmt.Sprint(i)}})
	}
	deliver(t, s, a.ID, simpleMessage("to archive"), DeliverOptions{Mailbox: "Archives"})
	src := mustMessages(t, s, in.ID)

	pairs, err := s.Copy(ctx, in.ID, []uint32{3, 1, 42}, archive.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(pairs) != "[{1 2} {3 3}]" {
		t.Errorf("copy pairs %v", pairs)
	}
	copies := mustMessages(t, s, archive.ID, UIDRange{2, 0})
	if copies[0].BodyID != src[0].BodyID || copies[1].BodyID != src[2].BodyID ||
		fmt.Sprint(copies[0].Flags) != "[k0]" || !copies[1].InternalDate.Equal(src[2].InternalDate) {
		t.Errorf("copies %+v", copies)
	}
	if n := countRows(t, s, "bodies"); n != 4 {
		t.Errorf("%d bodies, want 4 (copies share)", n)
	}

	pairs, err = s.Move(ctx, in.ID, []uint32{1, 2}, trash.ID)
	if err != nil || fmt.Sprint(pairs) != "[{1 1} {2 2}]" {
		t.Fatalf("move %v %v", pairs, err)
	}
	if got := uids(mustMessages(t, s, in.ID)); !slices.Equal(got, []uint32{3}) {
		t.Errorf("INBOX after move %v", got)
	}
	if readMessage(t, s, trash.ID, 2) != simpleMessage("1") {
		t.Error("moved content differs")
	}
	acct, _ := s.LookupAccount(ctx, "alice")
	if acct.Messages != 6 { // INBOX 1, Archives 3, Trash 2
		t.Errorf("account messages %d, want 6", acct.Messages)
	}

	// Bodies go with their last reference, and only then.
	s.Expunge(ctx, trash.ID, []uint32{1}) // message "0": still in Archives
	if n := countRows(t, s, "bodies"); n != 4 {
		t.Errorf("%d bodies, want 4", n)
	}
	s.Expunge(ctx, archive.ID, []uint32{2})
	if n := countRows(t, s, "bodies"); n != 3 {
		t.Errorf("%d bodies after last reference went, want 3", n)
	}
	var orphans int
	s.readers.QueryRow(`SELECT count(*) FROM body_chunks WHERE body_id NOT IN (SELECT id FROM bodies)`).Scan(&orphans)
	if orphans != 0 {
		t.Errorf("%d orphan chunks", orphans)
	}

	// Not across accounts.
	b := newAccount(t, s, "bob")
	if _, err := s.Copy(ctx, in.ID, []uint32{3}, inbox(t, s, b.ID).ID); err == nil {
		t.Error("copy to another account's mailbox succeeded")
	}
}

func TestQuota(t *testing.T) {
	s := newStore(t)
	msg := simpleMessage("quota")
	a, err := s.CreateAccount(ctx, NewAccount{Address: "alice", Password: "x", QuotaBytes: int64(2*len(msg) + 10)})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s, a.ID, msg, DeliverOptions{})
	deliver(t, s, a.ID, msg, DeliverOptions{})
	if _, err := s.Deliver(ctx, a.ID, strings.NewReader(msg), DeliverOptions{}); !errors.Is(err, ErrOverQuota) {
		t.Errorf("third delivery: %v, want ErrOverQuota", err)
	}
	in := inbox(t, s, a.ID)
	trash, _ := s.MailboxByName(ctx, a.ID, "Trash")
	if _, err := s.Copy(ctx, in.ID, []uint32{1}, trash.ID); !errors.Is(err, ErrOverQuota) {
		t.Errorf("copy over quota: %v", err)
	}
	if _, err := s.Move(ctx, in.ID, []uint32{1}, trash.ID); err != nil {
		t.Errorf("move within quota: %v", err)
	}
	if err := s.SetQuota(ctx, "alice", 0); err != nil {
		t.Fatal(err)
	}
	deliver(t, s, a.ID, msg, DeliverOptions{})
	if m := inbox(t, s, a.ID); m.UIDNext != 4 {
		t.Errorf("a refused delivery used a UID: uid_next %d", m.UIDNext)
	}
}

// TestQuotaMessages: a quota in messages is enforced like the one in bytes (delivery,
// COPY; MOVE adds nothing), with its own grace for a COPY that crosses it, and what is
// expunged frees room at once.
func TestQuotaMessages(t *testing.T) {
	s, err := openTest(t, Options{Logger: quietLogger(), QuotaMessageGrace: func(q int64) int64 { return q / 2 }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.CreateAccount(ctx, NewAccount{Address: "alice", Password: "x", QuotaMessages: 4})
	if err != nil {
		t.Fatal(err)
	}
	if a.QuotaMessages != 4 || a.AtQuota() {
		t.Fatalf("new account: %+v", a)
	}
	msg := simpleMessage("count")
	for range 3 {
		deliver(t, s, a.ID, msg, DeliverOptions{})
	}
	in := inbox(t, s, a.ID)
	trash, _ := s.MailboxByName(ctx, a.ID, "Trash")
	// 3 of 4: copying 3 more crosses the quota by 2, within the grace (2); once over it,
	// not even one more.
	if _, err := s.Copy(ctx, in.ID, []uint32{1, 2, 3}, trash.ID); err != nil {
		t.Fatalf("copy within the grace: %v", err)
	}
	if _, err := s.Copy(ctx, in.ID, []uint32{1}, trash.ID); !errors.Is(err, ErrOverQuota) {
		t.Errorf("copy over the message quota: %v, want ErrOverQuota", err)
	}
	acct, _ := s.LookupAccount(ctx, "alice")
	if acct.Messages != 6 || !acct.AtQuota() {
		t.Errorf("after the copy: %d messages, at quota %v", acct.Messages, acct.AtQuota())
	}
	if _, err := s.Deliver(ctx, a.ID, strings.NewReader(msg), DeliverOptions{}); !errors.Is(err, ErrOverQuota) {
		t.Errorf("delivery over the message quota: %v, want ErrOverQuota", err)
	}
	if _, err := s.Move(ctx, in.ID, []uint32{1}, trash.ID); err != nil {
		t.Errorf("move over the quota (adds nothing): %v", err)
	}
	if _, err := s.Expunge(ctx, trash.ID, []uint32{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	deliver(t, s, a.ID, msg, DeliverOptions{}) // 2 of 4 left: room again
	if err := s.SetQuotaMessages(ctx, "alice", 0); err != nil {
		t.Fatal(err)
	}
	if acct, _ := s.LookupAccount(ctx, "alice"); acct.QuotaMessages != 0 || acct.Messages != 3 {
		t.Errorf("after SetQuotaMessages(0): %+v", acct)
	}
}

func TestOpenMessages(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	big, bigStored := bigMessage(2*chunkSize + 100)
	raws := []string{simpleMessage("one"), big, simpleMessage("three")}
	var sizes []int64
	for _, raw := range raws {
		sizes = append(sizes, deliver(t, s, a.ID, raw, DeliverOptions{}).Size)
	}
	in := inbox(t, s, a.ID)
	if _, err := s.Expunge(ctx, in.ID, []uint32{3}); err != nil {
		t.Fatal(err)
	}
	got, err := s.OpenMessages(ctx, in.ID, UIDRange{Start: 1, Stop: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].UID != 1 || got[1].UID != 2 {
		t.Fatalf("OpenMessages(1:*) after expunging 3 = %+v", got)
	}
	for i, mb := range got {
		data, err := io.ReadAll(mb.Body)
		mb.Body.Close()
		if err != nil || int64(len(data)) != sizes[i] || mb.Body.Size() != sizes[i] {
			t.Errorf("message %d: read %d octets (%v), want %d", mb.UID, len(data), err, sizes[i])
		}
		if i == 1 && string(data) != bigStored {
			t.Errorf("message %d: the content differs", mb.UID)
		}
	}
	// Past 50 ranges the query covers their span and filters; the bodies still read whole.
	var many []UIDRange
	for u := uint32(2); u < 200; u += 3 {
		many = append(many, UIDRange{Start: u, Stop: u})
	}
	got, err = s.OpenMessages(ctx, in.ID, many...)
	if err != nil || len(got) != 1 || got[0].UID != 2 {
		t.Fatalf("OpenMessages(%d ranges) = %+v, %v", len(many), got, err)
	}
	if data, err := io.ReadAll(got[0].Body); err != nil || string(data) != bigStored {
		t.Errorf("message 2 through many ranges: %d octets, %v", len(data), err)
	}
}

// The first chunks of a batch are kept as the driver handed them out (ownedBlob, no copy):
// every body of a batch must still read as its own message after the whole batch was
// scanned, which would fail if the driver reused one buffer for every row.
func TestOpenMessagesChunksKept(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	var raws []string
	for i := range 100 {
		raw := simpleMessage(fmt.Sprintf("message %d ", i)) + strings.Repeat("x", i*37) + "\r\n"
		deliver(t, s, a.ID, raw, DeliverOptions{})
		raws = append(raws, raw)
	}
	in := inbox(t, s, a.ID)
	got, err := s.OpenMessages(ctx, in.ID, UIDRange{Start: 1, Stop: 0})
	if err != nil || len(got) != len(raws) {
		t.Fatalf("OpenMessages(1:*) = %d messages, %v", len(got), err)
	}
	for i, mb := range got {
		data, err := io.ReadAll(mb.Body)
		mb.Body.Close()
		if err != nil || !strings.Contains(string(data), fmt.Sprintf("message %d ", i)) || int64(len(data)) != mb.Size {
			t.Errorf("message %d: read %q (%v)", mb.UID, data, err)
		}
	}
	b, err := s.OpenMessage(ctx, in.ID, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if data, err := io.ReadAll(b); err != nil || !strings.Contains(string(data), "message 6 ") {
		t.Errorf("OpenMessage(7) read %q, %v", data, err)
	}
}
