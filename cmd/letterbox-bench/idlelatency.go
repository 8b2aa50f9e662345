package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// idle-latency: how long after a delivery is acknowledged its recipient's IDLE sessions
// hear of it, on the same server or on another node of a cluster. Unlike idle-fanout
// (one delivery, timed from the start of the delivery, idlers on --imap), the clock starts
// at the LMTP 250 reply (RFC 2033 section 4.2): the moment the message is the server's,
// which is what "the other nodes see it within 1 s" is about. The idlers connect to
// IdleIMAP, the deliveries go to LMTP (the first --lmtp node), and each repetition
// delivers IdleRounds messages one after the other, each once every idler has heard of the
// one before, so that a repetition gives Idlers × IdleRounds samples.

// idleLatencyWait bounds the wait for the idlers to hear of one delivery.
const idleLatencyWait = 30 * time.Second

// idleDialers is how many idlers connect and log in at once while a repetition sets up
// (not timed): enough to be quick, few enough not to queue a thousand password checks.
const idleDialers = 8

// idleClock is what one idler saw: the messages in INBOX when it selected it, and for each
// delivery round the UnixNano of the first EXISTS that covered it (0 until one did).
type idleClock struct {
	base atomic.Uint32
	seen []atomic.Int64
}

func newIdleClock(rounds int) *idleClock {
	return &idleClock{seen: make([]atomic.Int64, rounds)}
}

// note records an untagged EXISTS of n messages (RFC 9051 section 7.4.1) that arrived at
// at (UnixNano): round j (from 0) is covered once n reaches base+j+1, and an EXISTS may
// cover several rounds at once. It returns the rounds it covered first, in order. The
// rounds are delivered to the idler's mailbox alone, one at a time, so the count alone says
// which delivery an EXISTS tells of.
func (k *idleClock) note(n uint32, at int64) []int {
	var covered []int
	for j := range k.seen {
		if n < k.base.Load()+uint32(j)+1 {
			break
		}
		if k.seen[j].CompareAndSwap(0, at) {
			covered = append(covered, j)
		}
	}
	return covered
}

// idleLatencies are the samples of a repetition: for each round whose 250 was received
// (acked[j] != 0) and each idler that heard of it, the time from the 250 to its EXISTS. It
// can be negative: a server may send the EXISTS before the 250 it writes on another
// connection. missing counts the (round, idler) pairs that heard nothing.
func idleLatencies(clocks []*idleClock, acked []int64) (samples []time.Duration, missing int) {
	for j, ack := range acked {
		if ack == 0 {
			continue
		}
		for _, k := range clocks {
			if at := k.seen[j].Load(); at != 0 {
				samples = append(samples, time.Duration(at-ack))
			} else {
				missing++
			}
		}
	}
	return samples, missing
}

// summarizeLatencies is the p50, p99 (nearest rank) and max of samples, in seconds; nil
// for none.
func summarizeLatencies(samples []time.Duration) *Latency {
	if len(samples) == 0 {
		return nil
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return &Latency{P50: percentile(s, 50), P99: percentile(s, 99), Max: s[len(s)-1].Seconds()}
}

// idleLatency is the workload: Value is the p99 of the repetition's samples.
func (b *Bench) idleLatency(ctx context.Context, _ int) (Rep, error) {
	cred := b.Users[b.DeliverTo]
	addr := b.IdleIMAP
	if addr == "" {
		addr = b.IMAP
	}
	rounds := max(b.IdleRounds, 1)
	clocks := make([]*idleClock, b.Idlers)
	covered := make(chan int, b.Idlers*rounds) // a round index per (idler, round) covered
	clients := make([]*imapclient.Client, b.Idlers)
	idles := make([]*imapclient.IdleCommand, b.Idlers)
	defer func() {
		for k, c := range clients {
			if idles[k] != nil {
				idles[k].Close()
				idles[k].Wait()
			}
			if c != nil {
				c.Close()
			}
		}
	}()

	// Set up: every idler selects INBOX and enters IDLE, a few at a time.
	var next, ready atomic.Int64
	var stop atomic.Bool // an idler failed: the others stop setting up
	errs := make(chan error, idleDialers)
	var wg sync.WaitGroup
	for range min(idleDialers, b.Idlers) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= b.Idlers || ctx.Err() != nil || stop.Load() {
					return
				}
				fail := func(err error) {
					stop.Store(true)
					errs <- err
				}
				clock := newIdleClock(rounds)
				clocks[k] = clock
				opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
					Mailbox: func(data *imapclient.UnilateralDataMailbox) {
						if data.NumMessages == nil {
							return
						}
						for _, j := range clock.note(*data.NumMessages, time.Now().UnixNano()) {
							covered <- j
						}
					},
				}}
				c, err := b.dialIMAPAt(ctx, addr, cred, opts)
				if err != nil {
					fail(fmt.Errorf("idler %d: %w", k, err))
					return
				}
				clients[k] = c
				sel, err := c.Select("INBOX", nil).Wait()
				if err != nil {
					fail(fmt.Errorf("idler %d: SELECT INBOX: %w", k, err))
					return
				}
				// No delivery runs yet, so no EXISTS arrives before base is set.
				clock.base.Store(sel.NumMessages)
				idle, err := c.Idle()
				if err != nil {
					fail(fmt.Errorf("idler %d: IDLE: %w", k, err))
					return
				}
				idles[k] = idle
				if n := ready.Add(1); n%100 == 0 {
					b.progress("  %d/%d idlers in IDLE at %s", n, b.Idlers, addr)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return Rep{}, err
	}
	if err := ctx.Err(); err != nil {
		return Rep{}, fmt.Errorf("idle-latency: set up: %w", err)
	}

	lc, err := b.lmtpSession(ctx)
	if err != nil {
		return Rep{}, err
	}
	defer lc.Close()
	acked := make([]int64, rounds)
	heard := make([]int, rounds)
	var failed error
deliveries:
	for j := range rounds {
		if err := b.deliver(lc, cred.User, b.nextMessage()); err != nil {
			failed = fmt.Errorf("idle-latency: delivery %d: %w", j+1, err)
			break
		}
		acked[j] = time.Now().UnixNano()
		wait := time.NewTimer(idleLatencyWait)
		for heard[j] < b.Idlers {
			select {
			case r := <-covered:
				heard[r]++
			case <-wait.C:
				failed = fmt.Errorf("idle-latency: delivery %d: %d of %d idlers not told within %s", j+1, b.Idlers-heard[j], b.Idlers, idleLatencyWait)
				break deliveries
			case <-ctx.Done():
				wait.Stop()
				failed = fmt.Errorf("idle-latency: delivery %d: %w", j+1, ctx.Err())
				break deliveries
			}
		}
		wait.Stop()
	}
	lc.Quit()
	samples, missing := idleLatencies(clocks, acked)
	rep := Rep{Count: len(samples), Errors: missing, Latency: summarizeLatencies(samples)}
	if rep.Latency != nil {
		rep.Value, rep.Seconds = rep.Latency.P99, rep.Latency.Max
	}
	return rep, failed
}
