package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Envelopes as the store keeps them: stored by older versions as JSON, and decoded only
// when asked for (the encoding itself is internal/mailmsg's, envelope_test.go there).

func TestMetadataReadsJSONEnvelopes(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	d := deliver(t, s, a.ID, mixedMessage(), DeliverOptions{})
	md, err := s.Metadata(ctx, d.MailboxID)
	if err != nil || len(md) != 1 {
		t.Fatal(len(md), err)
	}
	want := md[0].Envelope
	old, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.Exec(`UPDATE bodies SET envelope = ? WHERE id = ?`, string(old), md[0].BodyID); err != nil {
		t.Fatal(err)
	}
	md, err = s.Metadata(ctx, d.MailboxID)
	if err != nil || len(md) != 1 {
		t.Fatal(len(md), err)
	}
	if got := md[0].Envelope; got.Subject != want.Subject || !got.Date.Equal(want.Date) || !reflect.DeepEqual(got.From, want.From) {
		t.Errorf("JSON envelope read as %+v, want %+v", got, want)
	}
}

func TestMetadataOfDecodesOnlyWhatIsAsked(t *testing.T) {
	s := newStore(t)
	a := newAccount(t, s, "alice")
	d := deliver(t, s, a.ID, mixedMessage(), DeliverOptions{})
	md, err := s.MetadataOf(ctx, d.MailboxID, MetadataParts{Envelope: true})
	if err != nil || len(md) != 1 {
		t.Fatal(len(md), err)
	}
	if md[0].Envelope.Subject != "mixed" || md[0].Structure.Type != "" || md[0].HeaderSize == 0 || md[0].Size != d.Size {
		t.Errorf("MetadataOf(envelope) = %+v", md[0])
	}
	md, err = s.MetadataOf(ctx, d.MailboxID, MetadataParts{Structure: true})
	if err != nil || len(md) != 1 {
		t.Fatal(len(md), err)
	}
	if md[0].Envelope.Subject != "" || md[0].Structure.Type != "multipart" {
		t.Errorf("MetadataOf(structure) = %+v", md[0])
	}
}

// FuzzDecodeEnvelope: no stored value makes the decoder panic or allocate without bound,
// and what decodes encodes back to the same value.
