package threading

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchMailbox makes n messages as a busy list mailbox has them: threads of varying
// depth, replies with References chains (sometimes truncated, sometimes to a message
// that is not in the mailbox), "Re:", "Fwd:" and "[list]" subjects, Date headers in
// several zones, a few missing.
func benchMailbox(n int) []Message {
	r := rand.New(rand.NewPCG(14, 6))
	zones := []*time.Location{time.UTC, time.FixedZone("+0200", 7200), time.FixedZone("-0700", -25200)}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	msgs := make([]Message, n)
	topics := make([]string, 0, n/4)
	topicOf := make([]int, n)
	for i := range msgs {
		m := &msgs[i]
		m.Seq, m.UID = uint32(i+1), uint32(i+1)
		m.InternalDate = start.Add(time.Duration(i)*time.Minute + time.Duration(r.IntN(60))*time.Second)
		if r.IntN(20) != 0 {
			m.Date = m.InternalDate.Add(-time.Duration(r.IntN(600)) * time.Second).In(zones[r.IntN(len(zones))])
		}
		m.Size = int64(500 + r.IntN(50000))
		m.MessageID = fmt.Sprintf("<%d.%d@bench.example>", i, r.Uint32())
		m.From = Address{Name: fmt.Sprintf("Person %d", r.IntN(300)), Mailbox: fmt.Sprintf("user%d", r.IntN(300)), Host: "example.org"}
		m.To = Address{Mailbox: "list", Host: "lists.example.org"}
		if i == 0 || r.IntN(4) == 0 {
			// A new thread, sometimes a reply to a message this mailbox never got.
			topicOf[i] = len(topics)
			topics = append(topics, fmt.Sprintf("Topic %d about things", len(topics)))
			m.Subject = "[list] " + topics[topicOf[i]]
			if r.IntN(10) == 0 {
				m.References = []string{fmt.Sprintf("<lost.%d@elsewhere.example>", i)}
				m.Subject = "Re: " + m.Subject
			}
			continue
		}
		// A reply to one of the last 200 messages.
		p := i - 1 - r.IntN(min(i, 200))
		parent := &msgs[p]
		topicOf[i] = topicOf[p]
		refs := make([]string, 0, len(parent.References)+1)
		refs = append(refs, parent.References...)
		refs = append(refs, parent.MessageID)
		if len(refs) > 10 && r.IntN(3) == 0 {
			refs = append(refs[:1:1], refs[len(refs)-5:]...) // truncated, as MUAs do
		}
		m.References = refs
		m.InReplyTo = []string{parent.MessageID}
		switch r.IntN(10) {
		case 0:
			m.Subject = "Fwd: " + topics[topicOf[i]]
		case 1:
			m.Subject = "RE: [list] Re: " + topics[topicOf[i]]
		default:
			m.Subject = "Re: [list] " + topics[topicOf[i]]
		}
	}
	return msgs
}

func BenchmarkSortDate(b *testing.B) {
	msgs := benchMailbox(10000)
	keys := []SortKey{{Criterion: Date}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sort(msgs, keys); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSortSubjectReverseDate(b *testing.B) {
	msgs := benchMailbox(10000)
	keys := []SortKey{{Criterion: Subject}, {Criterion: Date, Reverse: true}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sort(msgs, keys); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReferences(b *testing.B) {
	msgs := benchMailbox(10000)
	b.ReportAllocs()
	for b.Loop() {
		if threads := References(msgs); len(threads) == 0 {
			b.Fatal("no threads")
		}
	}
}

func BenchmarkOrderedSubject(b *testing.B) {
	msgs := benchMailbox(10000)
	b.ReportAllocs()
	for b.Loop() {
		if threads := OrderedSubject(msgs); len(threads) == 0 {
			b.Fatal("no threads")
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	msgs := benchMailbox(10000)
	threads := References(msgs)
	id := func(i int) uint32 { return msgs[i].Seq }
	buf := make([]byte, 0, 128<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFormat(buf[:0], threads, id)
	}
}

// TestBenchMailboxThreads checks that the benchmark's mailbox threads as meant, so that
// the benchmark measures deep threads and not 10,000 singletons.
func TestBenchMailboxThreads(t *testing.T) {
	msgs := benchMailbox(10000)
	threads := References(msgs)
	depth := 0
	var walk func(th *Thread, d int) int
	walk = func(th *Thread, d int) int {
		depth = max(depth, d)
		n := 0
		if !th.Dummy() {
			n = 1
		}
		for _, c := range th.Children {
			n += walk(c, d+1)
		}
		return n
	}
	total := 0
	for _, th := range threads {
		total += walk(th, 1)
	}
	if total != len(msgs) {
		t.Fatalf("%d messages in the threads, want %d", total, len(msgs))
	}
	if len(threads) > len(msgs)/3 || depth < 10 {
		t.Errorf("%d threads, %d deep: the benchmark mailbox is too flat", len(threads), depth)
	}
	t.Logf("%d threads, up to %d deep", len(threads), depth)
}
