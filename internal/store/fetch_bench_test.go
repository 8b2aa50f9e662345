package store

import (
	"bytes"
	"io"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/benchcorpus"
	"github.com/letterbox-mail/letterbox/internal/benchmetric"
)

// The store's side of IMAP FETCH over a whole mailbox, at the size `make bench-compare`
// uses: OpenMessages and MetadataOf in the batches internal/protocol/imap reads (64 bodies, 256
// rows), over 10,000 corpus messages of about 4 KB. Run them with
//
//	go test -run '^$' -bench 'FetchStore' -count 6 ./store/
const fetchBenchMessages = 10000

// fetchBenchStore is a store whose INBOX holds fetchBenchMessages corpus messages, stored
// with DeliverAll 500 at a time (as a client's MULTIAPPEND would: the same rows, pages in
// the same order, as one APPEND each).
func fetchBenchStore(b *testing.B) (*Store, Mailbox) {
	b.Helper()
	s := newStore(b)
	a := newAccount(b, s, "alice")
	for i := 0; i < fetchBenchMessages; i += 500 {
		var msgs []SpooledMessage
		for j := i; j < min(i+500, fetchBenchMessages); j++ {
			sp, err := s.Spool(bytes.NewReader(benchcorpus.Corpus{Seed: 1}.Message(j)), SpoolOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			msgs = append(msgs, SpooledMessage{Message: sp})
		}
		if _, err := s.DeliverAll(ctx, a.ID, "INBOX", msgs); err != nil {
			b.Fatal(err)
		}
	}
	return s, inbox(b, s, a.ID)
}

// BenchmarkFetchStoreBodies reads every body of the mailbox whole, 64 messages a query.
func BenchmarkFetchStoreBodies(b *testing.B) {
	s, mbox := fetchBenchStore(b)
	buf := make([]byte, 16<<10)
	var octets int64
	cpu0 := benchmetric.CPUTime()
	for b.Loop() {
		octets = 0
		for lo := uint32(1); lo <= fetchBenchMessages; lo += 64 {
			list, err := s.OpenMessages(ctx, mbox.ID, UIDRange{Start: lo, Stop: lo + 63})
			if err != nil {
				b.Fatal(err)
			}
			for _, mb := range list {
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{mb.Body}, buf)
				if err != nil || n != mb.Size {
					b.Fatal(err, n, mb.Size)
				}
				octets += n
				mb.Body.Close()
			}
		}
	}
	b.SetBytes(octets)
	benchmetric.ReportPerMessage(b, b.N*fetchBenchMessages, cpu0)
}

// BenchmarkFetchStoreEnvelopes reads the rows and envelopes, 256 messages a query.
func BenchmarkFetchStoreEnvelopes(b *testing.B) {
	s, mbox := fetchBenchStore(b)
	cpu0 := benchmetric.CPUTime()
	for b.Loop() {
		for lo := uint32(1); lo <= fetchBenchMessages; lo += 256 {
			list, err := s.MetadataOf(ctx, mbox.ID, MetadataParts{Envelope: true}, UIDRange{Start: lo, Stop: lo + 255})
			if err != nil || len(list) == 0 {
				b.Fatal(err)
			}
		}
	}
	benchmetric.ReportPerMessage(b, b.N*fetchBenchMessages, cpu0)
}
