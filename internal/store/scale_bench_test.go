package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/benchcorpus"
	"github.com/letterbox-mail/letterbox/internal/benchmetric"
)

// APPEND and FETCH should cost the same per message in a mailbox of 1,000 and of 100,000
// messages (docs/performance.md, "Go benchmarks"). These benchmarks measure both at the two sizes; compare the
// ns/msg of the two sub-benchmarks (the ratio is what matters, not the absolute time):
//
//	go test -run '^$' -bench 'PerMessageAt' -benchtime 2s ./store/
//
// Filling 100,000 messages one delivery (one durable commit) each would take minutes, so
// the mailbox is filled with 100 distinct messages and then doubled with Copy, which adds
// the same message and change-log rows a delivery does but shares the bodies.

var scaleSizes = []int{1000, 100000}

// fillByCopy gives the INBOX of a new account n messages.
func fillByCopy(b *testing.B, n int) (*Store, Account, Mailbox) {
	b.Helper()
	s := newStore(b)
	a := newAccount(b, s, "alice")
	distinct := min(n, 100)
	for i := range distinct {
		deliver(b, s, a.ID, string(benchcorpus.Corpus{Seed: 1}.Message(i)), DeliverOptions{})
	}
	in := inbox(b, s, a.ID)
	for have := distinct; have < n; {
		uids := make([]uint32, min(have, n-have))
		for i := range uids {
			uids[i] = uint32(i + 1)
		}
		if _, err := s.Copy(ctx, in.ID, uids, in.ID); err != nil {
			b.Fatal(err)
		}
		have += len(uids)
	}
	// The fill's pages are still in the WAL; the first commits of the measurement would
	// copy them into the database. Do it now, outside the measurement.
	if _, err := s.writer.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	return s, a, inbox(b, s, a.ID)
}

// BenchmarkAppendPerMessageAt: one delivery into a mailbox of n messages (and growing by
// one per iteration, which is little beside n).
func BenchmarkAppendPerMessageAt(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, a, _ := fillByCopy(b, n)
			msg := string(benchcorpus.Corpus{Seed: 1}.Message(7))
			cpu0 := benchmetric.CPUTime()
			for b.Loop() {
				if _, err := s.Deliver(ctx, a.ID, strings.NewReader(msg), DeliverOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			benchmetric.ReportPerMessage(b, b.N, cpu0)
		})
	}
}

// BenchmarkFetchPerMessageAt: what IMAP `UID FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)`
// and `(BODY.PEEK[])` read from the store, in the batches internal/protocol/imap reads them in,
// over a whole mailbox of n messages; ns/msg is per message.
func BenchmarkFetchPerMessageAt(b *testing.B) {
	for _, what := range []string{"metadata", "bodies"} {
		for _, n := range scaleSizes {
			b.Run(fmt.Sprintf("%s/%d", what, n), func(b *testing.B) {
				s, _, in := fillByCopy(b, n)
				batch := map[string]int{"metadata": 256, "bodies": 64}[what]
				buf := make([]byte, 64<<10)
				cpu0 := benchmetric.CPUTime()
				for b.Loop() {
					read := 0
					for lo := 1; lo <= n; lo += batch {
						r := UIDRange{Start: uint32(lo), Stop: uint32(min(lo+batch-1, n))}
						if what == "metadata" {
							md, err := s.MetadataOf(ctx, in.ID, MetadataParts{Envelope: true}, r)
							if err != nil {
								b.Fatal(err)
							}
							read += len(md)
							continue
						}
						mbs, err := s.OpenMessages(ctx, in.ID, r)
						if err != nil {
							b.Fatal(err)
						}
						for _, mb := range mbs {
							if _, err := mb.Body.ReadAt(buf[:mb.Size], 0); err != nil {
								b.Fatal(err)
							}
							mb.Body.Close()
						}
						read += len(mbs)
					}
					if read != n {
						b.Fatalf("read %d messages of %d", read, n)
					}
				}
				benchmetric.ReportPerMessage(b, b.N*n, cpu0)
			})
		}
	}
}
