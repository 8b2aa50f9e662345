package lmtp

import (
	"context"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// An LMTP delivery is a change an IMAP client sees through CONDSTORE (RFC 7162): the new
// message has a modseq above the mailbox's HIGHESTMODSEQ before it, and raises it.
func TestDeliveryRaisesHighestModSeq(t *testing.T) {
	env := newEnv(t, Options{}, map[string]int64{"bob@example.com": 0})
	ctx := context.Background()
	bob, err := env.st.LookupAccount(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := env.st.MailboxByName(ctx, bob.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	before := inbox.ModSeq

	if _, codes := send(t, env.addr, "bob@example.com"); len(codes) != 1 || codes[0] != 250 {
		t.Fatalf("DATA codes %v, want [250]", codes)
	}

	st, err := env.st.Status(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := env.st.ChangedSince(ctx, inbox.ID, before)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ChangedSince(%d) = %v, %v; want the delivered message", before, msgs, err)
	}
	if msgs[0].ModSeq <= before || st.ModSeq != msgs[0].ModSeq {
		t.Errorf("delivered modseq %d, HIGHESTMODSEQ %d, was %d", msgs[0].ModSeq, st.ModSeq, before)
	}
	if msgs[0].SaveDate.IsZero() {
		t.Error("delivered message has no SAVEDATE")
	}
	md, err := env.st.MetadataOf(ctx, inbox.ID, store.MetadataParts{Preview: true})
	if err != nil || len(md) != 1 || md[0].Preview != "Hello Bob, . ..two dots at the start trailing space -- Alice" {
		t.Errorf("preview of the delivered message: %+v, %v", md, err)
	}
}
