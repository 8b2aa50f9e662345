package store

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func BenchmarkDeliver(b *testing.B) {
	s := newStore(b)
	a := newAccount(b, s, "alice")
	msg := mixedMessage()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Deliver(ctx, a.ID, strings.NewReader(msg), DeliverOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliverSenders delivers with 1, 4 and 16 concurrent senders (LMTP sessions,
// APPENDs) into one account each: what group commit is for. ns/op is per message, so
// throughput is 1e9/ns/op messages per second; each Deliver returns only once durable.
func BenchmarkDeliverSenders(b *testing.B) {
	for _, senders := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			s := newStore(b)
			msg := mixedMessage()
			accounts := make([]Account, senders)
			for i := range accounts {
				accounts[i] = newAccount(b, s, fmt.Sprintf("user%d", i))
			}
			b.SetBytes(int64(len(msg)))
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for _, a := range accounts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Deliver(ctx, a.ID, strings.NewReader(msg), DeliverOptions{}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// fill gives a mailbox n messages, fast (one transaction), for the read benchmarks.
func fill(b *testing.B, s *Store, accountID int64, n int) Mailbox {
	b.Helper()
	sp, err := s.Spool(strings.NewReader(mixedMessage()), SpoolOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	for i := 0; i < n; i++ {
		if _, err := s.DeliverSpooled(ctx, accountID, sp, DeliverOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return inbox(b, s, accountID)
}

func BenchmarkMessages(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := newStore(b)
			a := newAccount(b, s, "alice")
			in := fill(b, s, a.ID, n)
			b.ReportAllocs()
			for b.Loop() {
				msgs, err := s.Messages(ctx, in.ID)
				if err != nil || len(msgs) != n {
					b.Fatal(err, len(msgs))
				}
			}
		})
	}
}

func BenchmarkMetadata(b *testing.B) {
	s := newStore(b)
	a := newAccount(b, s, "alice")
	in := fill(b, s, a.ID, 100)
	b.ReportAllocs()
	for b.Loop() {
		if md, err := s.Metadata(ctx, in.ID); err != nil || len(md) != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenMessage streams a 1 MiB message (16 chunks) whole.
func BenchmarkOpenMessage(b *testing.B) { benchmarkOpen(b, 1<<20) }

// BenchmarkOpenSmallMessage reads a typical message (about 4 KB, one chunk) whole: the
// path of every POP3 RETR and IMAP BODY[] of ordinary mail.
func BenchmarkOpenSmallMessage(b *testing.B) { benchmarkOpen(b, 4<<10) }

func benchmarkOpen(b *testing.B, size int) {
	s := newStore(b)
	a := newAccount(b, s, "alice")
	raw, _ := bigMessage(size)
	d := deliver(b, s, a.ID, raw, DeliverOptions{})
	b.SetBytes(d.Size)
	for b.Loop() {
		body, err := s.OpenMessage(ctx, d.MailboxID, d.UID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			b.Fatal(err)
		}
		body.Close()
	}
}

func BenchmarkSetFlags(b *testing.B) {
	s := newStore(b)
	a := newAccount(b, s, "alice")
	in := fill(b, s, a.ID, 100)
	ops := []FlagOp{FlagsAdd, FlagsRemove}
	i := 0
	for b.Loop() {
		// Each call really changes ten messages.
		uids := make([]uint32, 10)
		for j := range uids {
			uids[j] = uint32(1 + (i*10+j)%100)
		}
		if up, err := s.SetFlags(ctx, in.ID, uids, ops[(i/10)%2], []string{FlagSeen}); err != nil || len(up) != 10 {
			b.Fatal(err, len(up))
		}
		i++
	}
}

func BenchmarkChanges(b *testing.B) {
	s := newStore(b)
	a := newAccount(b, s, "alice")
	in := fill(b, s, a.ID, 200)
	var all []uint32
	for u := uint32(1); u <= 200; u++ {
		all = append(all, u)
	}
	s.SetFlags(ctx, in.ID, all, FlagsAdd, []string{FlagSeen})
	hi, _ := s.HighestModSeq(ctx, a.ID)
	b.ReportAllocs()
	for b.Loop() {
		// What an IDLE session does on wake-up: the last few changes.
		changes, err := s.Changes(ctx, a.ID, hi-20)
		if err != nil || len(changes) != 20 {
			b.Fatal(err, len(changes))
		}
	}
}

// BenchmarkExpunge: expunging one message, as a POP3 QUIT after one DELE or an IMAP
// EXPUNGE of one: the row, its change-log tombstone, the usage counters and, with its last
// reference gone, the body. Delivering the next victim is not timed.
func BenchmarkExpunge(b *testing.B) {
	s := newStore(b)
	a := newAccount(b, s, "alice")
	in := fill(b, s, a.ID, 100) // a mailbox that is not otherwise empty
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d := deliver(b, s, a.ID, simpleMessage("expunge "+strconv.Itoa(i)), DeliverOptions{})
		b.StartTimer()
		if got, err := s.Expunge(ctx, in.ID, []uint32{d.UID}); err != nil || len(got) != 1 {
			b.Fatal(err, got)
		}
	}
}

// BenchmarkSpool reads, normalises and parses a message without storing it: the small
// mixed message (in memory) and a 4 MiB one (a spool file).
func BenchmarkSpool(b *testing.B) {
	s := newStore(b)
	big := "Subject: big\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("a line of text, long enough to be a line of text\r\n", 4<<20/50)
	for _, c := range []struct{ name, msg string }{{"mixed", mixedMessage()}, {"4MiB", big}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.msg)))
			b.ReportAllocs()
			for b.Loop() {
				sp, err := s.Spool(strings.NewReader(c.msg), SpoolOptions{})
				if err != nil {
					b.Fatal(err)
				}
				sp.Close()
			}
		})
	}
}
