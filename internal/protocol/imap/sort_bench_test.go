package imap

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/benchcorpus"
	"github.com/letterbox-mail/letterbox/internal/benchmetric"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// The SORT and THREAD benchmarks: 10,000 messages in INBOX, as docs/performance.md ("SORT,
// THREAD and QRESYNC at 10,000 messages") measures against Dovecot. Run them with
//
//	go test -tags sqlite_fts5 -run '^$' -bench 'Sort|Thread' -count 6 ./protocol/imap/

const sortBenchMessages = 10000

func BenchmarkSortDate(b *testing.B) {
	benchmarkSort(b, "SORT (DATE) UTF-8 ALL", "* SORT ")
}

func BenchmarkThreadReferences(b *testing.B) {
	benchmarkSort(b, "THREAD REFERENCES UTF-8 ALL", "* THREAD ")
}

func benchmarkSort(b *testing.B, command, response string) {
	addr := sortBenchServer(b, sortBenchMessages)
	c := selectedBenchClient(b, addr)
	cpu0 := benchmetric.CPUTime()
	for b.Loop() {
		c.read = 0
		c.run(b, command)
	}
	// The one response line is the most of what was read; a wrong answer would be short.
	if c.read < int64(sortBenchMessages)*2 {
		b.Fatalf("%s: %d octets of answer for %d messages", command, c.read, sortBenchMessages)
	}
	benchmetric.ReportPerMessage(b, b.N*sortBenchMessages, cpu0)
}

// sortBenchServer is benchServer's store with threads: two messages in three reply to
// the one before them (References with the thread's earlier ids, "Re:" subjects), and
// the messages are stored 500 to a transaction (store.DeliverAll) to keep the set-up short.
func sortBenchServer(b *testing.B, n int) string {
	b.Helper()
	st, _ := sortBenchStore(b, n)
	return serveBench(b, st)
}

// sortBenchStore is sortBenchServer's store and account.
func sortBenchStore(b *testing.B, n int) (*store.Store, store.Account) {
	b.Helper()
	ctx := context.Background()
	st, acct := benchStore(b)
	var batch []store.SpooledMessage
	flush := func() {
		if _, err := st.DeliverAll(ctx, acct.ID, "INBOX", batch); err != nil {
			b.Fatal(err)
		}
		for _, m := range batch {
			m.Message.Close()
		}
		batch = batch[:0]
	}
	for i := range n {
		msg := string(benchcorpus.Corpus{Seed: 1}.Message(i))
		if k := i % 3; k > 0 {
			var refs []string
			for j := i - k; j < i; j++ {
				refs = append(refs, fmt.Sprintf("<%d.1@bench.example>", j))
			}
			msg = "References: " + strings.Join(refs, "\r\n ") + "\r\n" + strings.Replace(msg, "Subject: ", "Subject: Re: ", 1)
		}
		sp, err := st.Spool(strings.NewReader(msg), store.SpoolOptions{})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, store.SpooledMessage{Message: sp})
		if len(batch) == 500 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return st, acct
}

// BenchmarkSortDateKeptOrNot is SORT (DATE) over 10,000 messages in one session, with the
// answer kept from the last SORT (nothing changed: "kept"), and after one arrival each
// time, which the session has been told of (NOOP) before the timed SORT ("arrival": the
// rows come from the sort cache, brought up to date with one row, and are sorted again).
func BenchmarkSortDateKeptOrNot(b *testing.B) {
	st, acct := sortBenchStore(b, sortBenchMessages)
	addr := serveBench(b, st)
	c := selectedBenchClient(b, addr)
	const cmd = "SORT (DATE) UTF-8 ALL"
	c.run(b, cmd)
	b.Run("kept", func(b *testing.B) {
		for b.Loop() {
			c.run(b, cmd)
		}
	})
	b.Run("arrival", func(b *testing.B) {
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			msg := fmt.Sprintf("Subject: new %d\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n\r\nx\r\n", i)
			if _, err := st.Deliver(context.Background(), acct.ID, strings.NewReader(msg), store.DeliverOptions{}); err != nil {
				b.Fatal(err)
			}
			c.run(b, "NOOP")
			b.StartTimer()
			c.read = 0
			c.run(b, cmd)
		}
		if c.read < int64(sortBenchMessages)*2 {
			b.Fatalf("%s: %d octets of answer", cmd, c.read)
		}
	})
}
