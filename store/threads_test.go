package store

import (
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
