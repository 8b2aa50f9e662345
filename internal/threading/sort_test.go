package threading

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// seqs returns the sequence numbers of msgs in the order of indexes.
func seqs(msgs []Message, indexes []int) []uint32 {
	out := make([]uint32, len(indexes))
	for k, i := range indexes {
		out[k] = msgs[i].Seq
	}
	return out
}

func mustSort(t *testing.T, msgs []Message, keys ...SortKey) []uint32 {
	t.Helper()
	order, err := Sort(msgs, keys)
	if err != nil {
		t.Fatalf("Sort(%v): %v", keys, err)
	}
	if len(order) != len(msgs) {
		t.Fatalf("Sort(%v) returned %d indexes for %d messages", keys, len(order), len(msgs))
	}
	return seqs(msgs, order)
}

func numbered(msgs []Message) []Message {
	for i := range msgs {
		msgs[i].Seq = uint32(i + 1)
		msgs[i].UID = uint32(100 + i)
	}
	return msgs
}

var base = time.Date(2008, 2, 22, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

func TestSortTiesBySequenceNumber(t *testing.T) {
	msgs := numbered([]Message{{Size: 20}, {Size: 10}, {Size: 20}, {Size: 10}, {Size: 20}})
	if got, want := mustSort(t, msgs, SortKey{Criterion: Size}), []uint32{2, 4, 1, 3, 5}; !slices.Equal(got, want) {
		t.Errorf("SIZE: %v, want %v", got, want)
	}
	// RFC 5256 §3: REVERSE reverses the criterion, not the sequence order of ties.
	if got, want := mustSort(t, msgs, SortKey{Criterion: Size, Reverse: true}), []uint32{1, 3, 5, 2, 4}; !slices.Equal(got, want) {
		t.Errorf("REVERSE SIZE: %v, want %v", got, want)
	}
	// No key: sequence order.
	if got, want := mustSort(t, msgs), []uint32{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("no key: %v, want %v", got, want)
	}
}

func TestSortInputOrderDoesNotMatter(t *testing.T) {
	msgs := numbered(make([]Message, 200))
	for i := range msgs {
		msgs[i].Size = int64(i % 7)
		msgs[i].Subject = []string{"b", "Re: a", "A", "[x] b"}[i%4]
	}
	keys := []SortKey{{Criterion: Subject}, {Criterion: Size, Reverse: true}}
	want := mustSort(t, msgs, keys...)
	shuffled := slices.Clone(msgs)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if got := mustSort(t, shuffled, keys...); !slices.Equal(got, want) {
		t.Errorf("shuffled input sorts differently:\n got %v\nwant %v", got, want)
	}
}

func TestSortDate(t *testing.T) {
	east := time.FixedZone("+0200", 2*3600)
	west := time.FixedZone("-0500", -5*3600)
	msgs := numbered([]Message{
		// 10:00 UTC written as 12:00 +0200.
		{Date: time.Date(2008, 2, 22, 12, 0, 0, 0, east), InternalDate: at(5 * time.Hour)},
		// 09:00 UTC written as 04:00 -0500: earlier, though its wall clock reads earlier
		// still and its INTERNALDATE is later than everyone's.
		{Date: time.Date(2008, 2, 22, 4, 0, 0, 0, west), InternalDate: at(9 * time.Hour)},
		// No Date header: INTERNALDATE 09:30 UTC.
		{InternalDate: time.Date(2008, 2, 22, 9, 30, 0, 0, time.UTC)},
		// 10:00 UTC again, in UTC: ties with message 1, so sequence order.
		{Date: time.Date(2008, 2, 22, 10, 0, 0, 0, time.UTC), InternalDate: at(-time.Hour)},
	})
	if got, want := mustSort(t, msgs, SortKey{Criterion: Date}), []uint32{2, 3, 1, 4}; !slices.Equal(got, want) {
		t.Errorf("DATE: %v, want %v", got, want)
	}
	if got, want := mustSort(t, msgs, SortKey{Criterion: Date, Reverse: true}), []uint32{1, 4, 3, 2}; !slices.Equal(got, want) {
		t.Errorf("REVERSE DATE: %v, want %v", got, want)
	}
	if got, want := mustSort(t, msgs, SortKey{Criterion: Arrival}), []uint32{3, 4, 1, 2}; !slices.Equal(got, want) {
		t.Errorf("ARRIVAL: %v, want %v", got, want)
	}
}

func TestSortAddresses(t *testing.T) {
	msgs := numbered([]Message{
		{From: Address{Name: "Zed", Mailbox: "bob", Host: "a.example"}},
		{From: Address{Mailbox: "Alice", Host: "z.example"}},
		{}, // no From: the empty string sorts first
		{From: Address{Name: "alice", Mailbox: "alice", Host: "a.example"}},
		{From: Address{Name: "Bob", Mailbox: "carol", Host: "c.example"}},
	})
	// FROM: the mailbox only (not the host, not the name), case-insensitively.
	if got, want := mustSort(t, msgs, SortKey{Criterion: From}), []uint32{3, 2, 4, 1, 5}; !slices.Equal(got, want) {
		t.Errorf("FROM: %v, want %v", got, want)
	}
	// DISPLAYFROM: the name, else mailbox@host.
	if got, want := mustSort(t, msgs, SortKey{Criterion: DisplayFrom}), []uint32{3, 4, 2, 5, 1}; !slices.Equal(got, want) {
		t.Errorf("DISPLAYFROM: %v, want %v", got, want)
	}
	for i := range msgs {
		msgs[i].To, msgs[i].Cc = msgs[i].From, msgs[i].From
		msgs[i].From = Address{}
	}
	if got, want := mustSort(t, msgs, SortKey{Criterion: To}), []uint32{3, 2, 4, 1, 5}; !slices.Equal(got, want) {
		t.Errorf("TO: %v, want %v", got, want)
	}
	if got, want := mustSort(t, msgs, SortKey{Criterion: Cc, Reverse: true}), []uint32{5, 1, 2, 4, 3}; !slices.Equal(got, want) {
		t.Errorf("REVERSE CC: %v, want %v", got, want)
	}
	if got, want := mustSort(t, msgs, SortKey{Criterion: DisplayTo}), []uint32{3, 4, 2, 5, 1}; !slices.Equal(got, want) {
		t.Errorf("DISPLAYTO: %v, want %v", got, want)
	}
	// From is empty everywhere now: all tie, sequence order.
	if got, want := mustSort(t, msgs, SortKey{Criterion: From, Reverse: true}), []uint32{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("REVERSE FROM of empty From: %v, want %v", got, want)
	}
}

func TestSortSubjectAndSeveralKeys(t *testing.T) {
	msgs := numbered([]Message{
		{Subject: "Re: beta", Size: 1},
		{Subject: "alpha", Size: 2},
		{Subject: "[list] BETA", Size: 3},
		{Subject: "Fwd: Alpha (fwd)", Size: 1},
		{Subject: "", Size: 9},
	})
	if got, want := mustSort(t, msgs, SortKey{Criterion: Subject}), []uint32{5, 2, 4, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("SUBJECT: %v, want %v", got, want)
	}
	if got, want := mustSort(t, msgs, SortKey{Criterion: Subject}, SortKey{Criterion: Size, Reverse: true}), []uint32{5, 2, 4, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("SUBJECT REVERSE SIZE: %v, want %v", got, want)
	}
	if got, want := mustSort(t, msgs, SortKey{Criterion: Size}, SortKey{Criterion: Subject, Reverse: true}), []uint32{1, 4, 2, 3, 5}; !slices.Equal(got, want) {
		t.Errorf("SIZE REVERSE SUBJECT: %v, want %v", got, want)
	}
}

func TestSortUnknownCriterion(t *testing.T) {
	if _, err := Sort(numbered(make([]Message, 2)), []SortKey{{Criterion: 0}}); err == nil {
		t.Error("Sort with criterion 0: no error")
	}
}

func TestParseCriterion(t *testing.T) {
	for _, c := range []Criterion{Arrival, Cc, Date, From, Size, Subject, To, DisplayFrom, DisplayTo} {
		got, err := ParseCriterion(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCriterion(%q) = %v, %v", c.String(), got, err)
		}
	}
	if got, err := ParseCriterion("displayfrom"); err != nil || got != DisplayFrom {
		t.Errorf("ParseCriterion(displayfrom) = %v, %v", got, err)
	}
	for _, name := range []string{"REVERSE", "", "DATES"} {
		if _, err := ParseCriterion(name); err == nil {
			t.Errorf("ParseCriterion(%q): no error", name)
		}
	}
}

// Insert, given Sort's answer for a prefix of the messages, gives exactly Sort's answer for
// all of them, for every criterion, REVERSE or not, with many ties (few distinct values),
// and for several keys at once; prev is left as it was.
func TestInsertIsSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	subjects := []string{"", "a", "Re: a", "A (fwd)", "b", "[fwd: b]", "B", "c"}
	names := []string{"", "Ann", "bob", "Bob"}
	boxes := []string{"", "x", "X", "y"}
	msgs := make([]Message, 300)
	for i := range msgs {
		msgs[i] = Message{
			InternalDate: at(time.Duration(r.IntN(20)) * time.Second),
			Size:         int64(r.IntN(5)),
			Subject:      subjects[r.IntN(len(subjects))],
			From:         Address{Name: names[r.IntN(len(names))], Mailbox: boxes[r.IntN(len(boxes))], Host: "h"},
			To:           Address{Mailbox: boxes[r.IntN(len(boxes))]},
			Cc:           Address{Mailbox: boxes[r.IntN(len(boxes))]},
		}
		if r.IntN(3) > 0 {
			msgs[i].Date = at(time.Duration(r.IntN(20))*time.Second + time.Duration(r.IntN(2))*time.Millisecond)
		}
	}
	numbered(msgs)
	var keyss [][]SortKey
	for c := Arrival; c <= DisplayTo; c++ {
		keyss = append(keyss, []SortKey{{Criterion: c}}, []SortKey{{Criterion: c, Reverse: true}})
	}
	keyss = append(keyss, []SortKey{{Criterion: Subject}, {Criterion: Date, Reverse: true}}, []SortKey{{Criterion: Size}, {Criterion: DisplayFrom}}, nil)
	for _, keys := range keyss {
		want, err := Sort(msgs, keys)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 150, 290, 299} {
			prev, err := Sort(msgs[:n], keys)
			if err != nil {
				t.Fatal(err)
			}
			kept := slices.Clone(prev)
			got, err := Insert(prev, len(msgs), func(i int) Message { return msgs[i] }, keys)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("keys %v, %d kept: Insert gave %v, Sort %v", keys, n, seqs(msgs, got), seqs(msgs, want))
			}
			if !slices.Equal(prev, kept) {
				t.Errorf("keys %v, %d kept: Insert changed prev", keys, n)
			}
		}
	}
	if _, err := Insert(nil, 1, func(int) Message { return msgs[0] }, []SortKey{{Criterion: 99}}); err == nil {
		t.Error("Insert with an unknown criterion: no error")
	}
}
