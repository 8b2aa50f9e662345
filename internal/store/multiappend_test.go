package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func spoolMessages(t *testing.T, s *Store, raws ...string) []SpooledMessage {
	t.Helper()
	var out []SpooledMessage
	for _, raw := range raws {
		sp, err := s.Spool(strings.NewReader(raw), SpoolOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		out = append(out, SpooledMessage{Message: sp})
	}
	return out
}

// DeliverAll stores all the messages with consecutive UIDs, or none of them.
func TestDeliverAll(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	msgs := spoolMessages(t, s, "Subject: one\r\n\r\n1\r\n", "Subject: two\r\n\r\n22\r\n", "Subject: three\r\n\r\n333\r\n")
	date := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	msgs[1].Flags, msgs[1].InternalDate = []string{FlagSeen, "$Work"}, date
	ds, err := s.DeliverAll(ctx, a.ID, "", msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 || ds[0].UID != 1 || ds[1].UID != 2 || ds[2].UID != 3 {
		t.Fatalf("delivered %+v, want UIDs 1, 2, 3", ds)
	}
	list, err := s.Messages(ctx, in.ID)
	if err != nil || len(list) != 3 {
		t.Fatalf("messages %+v, %v", list, err)
	}
	if m := list[1]; !m.InternalDate.Equal(date) || strings.Join(m.Flags, " ") != `\Seen $Work` || m.Size != ds[1].Size {
		t.Errorf("second message %+v", m)
	}
	if got := readMessage(t, s, in.ID, 3); got != "Subject: three\r\n\r\n333\r\n" {
		t.Errorf("third message %q", got)
	}

	// Over quota with the last of two: neither is stored, and UIDNEXT has not moved.
	acct, _ := s.LookupAccount(ctx, "alice")
	if err := s.SetQuota(ctx, "alice", acct.UsedBytes+30); err != nil {
		t.Fatal(err)
	}
	_, err = s.DeliverAll(ctx, a.ID, "INBOX", spoolMessages(t, s, "Subject: a\r\n\r\nx\r\n", "Subject: b\r\n\r\n"+strings.Repeat("y", 100)+"\r\n"))
	if !errors.Is(err, ErrOverQuota) {
		t.Fatalf("over quota: %v, want ErrOverQuota", err)
	}
	st, err := s.Status(ctx, in.ID)
	if err != nil || st.Messages != 3 || st.UIDNext != 4 {
		t.Errorf("after a refused batch: %d messages, UIDNEXT %d, %v; want 3 and 4", st.Messages, st.UIDNext, err)
	}
	if _, err := s.DeliverAll(ctx, a.ID, "Nowhere", spoolMessages(t, s, "Subject: a\r\n\r\n")); !errors.Is(err, ErrNoSuchMailbox) {
		t.Errorf("unknown mailbox: %v", err)
	}
}

// SortData reads the References field from the stored header, unfolded, only when asked.
func TestSortDataReferences(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	in := inbox(t, s, a.ID)
	for _, raw := range []string{
		"Subject: a\r\nMessage-ID: <a@x>\r\n\r\nreferences: <not@header>\r\n",
		"Subject: b\r\nX-References: <no@x>\r\nreferences: <a@x>\r\n\t<b@x>\r\nIn-Reply-To: <b@x> <c@x>\r\n\r\nbody\r\n",
	} {
		if _, err := s.Deliver(ctx, a.ID, strings.NewReader(raw), DeliverOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.SortData(ctx, in.ID, SortThreading)
	if err != nil || len(rows) != 2 {
		t.Fatalf("SortData: %+v, %v", rows, err)
	}
	if rows[0].References != "" || rows[0].MessageID != "<a@x>" || rows[0].Subject != "a" {
		t.Errorf("first row %+v", rows[0])
	}
	if rows[1].References != "<a@x>\t<b@x>" || rows[1].InReplyTo != "<b@x>" || rows[1].Size == 0 || rows[1].InternalDate.IsZero() {
		t.Errorf("second row %+v", rows[1])
	}
	rows, err = s.SortData(ctx, in.ID, 0, UIDRange{2, 2})
	if err != nil || len(rows) != 1 || rows[0].UID != 2 || rows[0].References != "" || rows[0].Subject != "" {
		t.Errorf("SortData without references, UID 2: %+v, %v", rows, err)
	}
}
