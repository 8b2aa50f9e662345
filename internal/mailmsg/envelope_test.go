package mailmsg

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for name, env := range map[string]Envelope{
		"empty": {},
		"full": {
			Date:      time.Date(2024, 1, 16, 9, 0, 0, 0, time.FixedZone("", -5*3600-30*60)),
			Subject:   "Grüße, \"quoted\" \r\n and long " + strings.Repeat("x", 300),
			From:      []Address{{Name: "Dave", Mailbox: "dave", Host: "example.com"}},
			Sender:    []Address{{Mailbox: "dave", Host: "example.com"}},
			ReplyTo:   []Address{{Name: "A", Mailbox: "a", Host: "x"}, {Name: "B", Mailbox: "b", Host: "y"}},
			To:        []Address{{Mailbox: "group"}, {Name: "", Mailbox: "", Host: ""}},
			InReplyTo: []string{"<one@x>", "<two@y>"},
			MessageID: "<id@example.com>",
		},
	} {
		var got Envelope
		if err := DecodeEnvelope(encodeEnvelope(&env), &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Dates compare by instant and offset: the zone's name is not kept.
		_, wantOff := env.Date.Zone()
		_, gotOff := got.Date.Zone()
		if !got.Date.Equal(env.Date) || gotOff != wantOff {
			t.Errorf("%s: date %v, want %v", name, got.Date, env.Date)
		}
		got.Date, env.Date = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, env) {
			t.Errorf("%s: decoded\n%+v\nwant\n%+v", name, got, env)
		}
	}
}

func TestEnvelopeDecodeRefusesDamage(t *testing.T) {
	env := Envelope{Subject: "s", From: []Address{{Mailbox: "a", Host: "b"}}, MessageID: "<m@x>"}
	enc := encodeEnvelope(&env)
	for i := 0; i < len(enc); i++ {
		var got Envelope
		if err := DecodeEnvelope(enc[:i], &got); err == nil {
			t.Errorf("a truncated envelope of %d of %d octets decoded: %+v", i, len(enc), got)
		}
	}
	var got Envelope
	if err := DecodeEnvelope(append(enc, 0), &got); err == nil {
		t.Error("an envelope with trailing octets decoded")
	}
}

// A store written before the compact form keeps its envelopes as JSON; they still read.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(encodeEnvelope(&Envelope{Subject: "s", To: []Address{{Mailbox: "a"}}, InReplyTo: []string{"<x>"}}))
	f.Add([]byte{envelopeV1, 1, 2, 3})
	f.Add([]byte(`{"Subject":"json"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var env Envelope
		if DecodeEnvelope(data, &env) != nil || data[0] != envelopeV1 {
			return
		}
		var again Envelope
		if err := DecodeEnvelope(encodeEnvelope(&env), &again); err != nil || !reflect.DeepEqual(env, again) {
			t.Errorf("round trip of %+v: %+v, %v", env, again, err)
		}
	})
}

// RFC 3501 §7.4.2 address lists: groups give start and end markers, comments are no part
// of an address (a bare address's comment is its name), and a source route is kept
// (imaptest's fetch-envelope and search-addresses).
func TestParseAddressList(t *testing.T) {
	g := func(name string) Address { return Address{Mailbox: name} }
	end := Address{}
	for _, tt := range []struct {
		in   string
		want []Address
	}{
		{"group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;", []Address{
			g("group"), {Mailbox: "g1", Host: "d1.org"}, {Mailbox: "g2", Host: "d2.org"}, end,
			g("group2"), {Mailbox: "g3", Host: "d3.org"}, end}},
		{"group:;, group2: (foo) ;", []Address{g("group"), end, g("group2"), end}},
		{"<user-from (comment)@ (comment) domain.org>", []Address{{Mailbox: "user-from", Host: "domain.org"}}},
		{"user@domain (Real Name)", []Address{{Name: "Real Name", Mailbox: "user", Host: "domain"}}},
		{"<@route:user@domain>", []Address{{Route: "@route", Mailbox: "user", Host: "domain"}}},
		{`"Bob, Jr." <bob@example.com>, J. Smith <js@x>`, []Address{
			{Name: "Bob, Jr.", Mailbox: "bob", Host: "example.com"}, {Name: "J. Smith", Mailbox: "js", Host: "x"}}},
		{"=?utf-8?q?Ren=C3=A9?= <rene@example.fr>", []Address{{Name: "René", Mailbox: "rene", Host: "example.fr"}}},
		{"undisclosed", []Address{{Mailbox: "undisclosed", Host: missingDomain}}},
		{"Broken <not an address", []Address{{Name: "Broken", Mailbox: "notanaddress", Host: missingDomain}}},
	} {
		if got := parseAddressList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseAddressList(%q) =\n%+v\nwant\n%+v", tt.in, got, tt.want)
		}
	}
}
