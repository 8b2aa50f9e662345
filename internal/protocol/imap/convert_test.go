package imap

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

func TestCanonicalFlags(t *testing.T) {
	got, err := canonicalFlags([]imap.Flag{`\SEEN`, `\answered`, `\Recent`, "$Label1", "work"})
	if err != nil || !slices.Equal(got, []string{`\Seen`, `\Answered`, "$Label1", "work"}) {
		t.Errorf("canonicalFlags = %q, %v", got, err)
	}
	if _, err := canonicalFlags([]imap.Flag{`\Bogus`}); err == nil {
		t.Error("an unknown system flag was accepted")
	}
}

func TestApplyFlagOp(t *testing.T) {
	old := []string{`\Seen`, "$Work"}
	for _, tt := range []struct {
		op   store.FlagOp
		in   []string
		want []string
	}{
		{store.FlagsAdd, []string{`\Flagged`, "$work"}, []string{`\Seen`, "$Work", `\Flagged`}},
		{store.FlagsRemove, []string{`\seen`}, []string{"$Work"}},
		{store.FlagsReplace, []string{`\Draft`}, []string{`\Draft`}},
	} {
		if got := applyFlagOp(old, tt.op, tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("applyFlagOp(%v, %q) = %q, want %q", tt.op, tt.in, got, tt.want)
		}
	}
}

func TestImapEnvelope(t *testing.T) {
	env := imapEnvelope(&store.Envelope{
		Subject:   "Grüße",
		From:      []store.Address{{Name: "Dave", Mailbox: "dave", Host: "example.com"}},
		InReplyTo: []string{"<a@x>", "<b@y>"},
		MessageID: "<id@example.com>",
	})
	if env.MessageID != "id@example.com" || !slices.Equal(env.InReplyTo, []string{"a@x", "b@y"}) {
		t.Errorf("message ids: %q %q", env.MessageID, env.InReplyTo)
	}
	if env.Subject != "Grüße" || len(env.From) != 1 || env.From[0].Addr() != "dave@example.com" || env.To != nil {
		t.Errorf("envelope %+v", env)
	}
}

func TestImapBodyStructure(t *testing.T) {
	inner := store.Part{Type: "text", Subtype: "plain", Lines: 1, Size: 5, Encoding: "7BIT"}
	top := store.Part{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "b"}, Children: []store.Part{
		{Type: "text", Subtype: "html", Lines: 3, Size: 40, Encoding: "QUOTED-PRINTABLE", Params: map[string]string{"charset": "utf-8"}},
		{Type: "message", Subtype: "rfc822", Lines: 4, Size: 60, Encoding: "7BIT",
			Envelope: &store.Envelope{Subject: "Inner"}, Message: &inner},
		{Type: "multipart", Subtype: "alternative"}, // no parts: shown as text
	}}
	bs, ok := imapBodyStructure(&top).(*imap.BodyStructureMultiPart)
	if !ok || bs.Subtype != "mixed" || len(bs.Children) != 3 || bs.Extended == nil || bs.Extended.Params["boundary"] != "b" {
		t.Fatalf("multipart %+v", bs)
	}
	html := bs.Children[0].(*imap.BodyStructureSinglePart)
	if html.Text == nil || html.Text.NumLines != 3 || html.Size != 40 || html.Extended == nil {
		t.Errorf("html %+v", html)
	}
	msg := bs.Children[1].(*imap.BodyStructureSinglePart)
	if msg.MessageRFC822 == nil || msg.MessageRFC822.Envelope.Subject != "Inner" || msg.MessageRFC822.NumLines != 4 {
		t.Errorf("message/rfc822 %+v", msg)
	}
	if empty := bs.Children[2].(*imap.BodyStructureSinglePart); empty.MediaType() != "text/plain" {
		t.Errorf("empty multipart shown as %s", empty.MediaType())
	}
}

func TestUIDRanges(t *testing.T) {
	got := uidRanges([]uint32{1, 2, 3, 7, 9, 10})
	want := []store.UIDRange{{Start: 1, Stop: 3}, {Start: 7, Stop: 7}, {Start: 9, Stop: 10}}
	if !slices.Equal(got, want) {
		t.Errorf("uidRanges = %v", got)
	}
}

func TestResolve(t *testing.T) {
	v := &selected{uids: []uint32{3, 5, 8, 9}, gone: map[uint32]struct{}{8: {}}, searchRes: []uint32{9, 3}}
	seqs := func(refs []msgRef) []uint32 {
		var out []uint32
		for _, r := range refs {
			out = append(out, r.seq)
		}
		return out
	}
	for _, tt := range []struct {
		set  imap.NumSet
		want []uint32
	}{
		{imap.SeqSet{{Start: 1, Stop: 0}}, []uint32{1, 2, 4}},                   // 1:*, skipping the expunged one
		{imap.SeqSet{{Start: 0, Stop: 2}}, []uint32{2, 4}},                      // *:2
		{imap.SeqSet{{Start: 2, Stop: 2}, {Start: 1, Stop: 2}}, []uint32{1, 2}}, // overlapping
		{imap.SeqSet{{Start: 7, Stop: 9}}, nil},                                 // beyond the end
		{imap.UIDSet{{Start: 4, Stop: 9}}, []uint32{2, 4}},
		{imap.UIDSet{{Start: 100, Stop: 0}}, []uint32{4}}, // 100:* is the last message
		{imap.UIDSet{{Start: 1, Stop: 2}}, nil},
		{imap.SearchRes(), []uint32{1, 4}},
	} {
		if got := seqs(v.resolve(tt.set)); !slices.Equal(got, tt.want) {
			t.Errorf("resolve(%v) = %v, want %v", tt.set, got, tt.want)
		}
	}
}
