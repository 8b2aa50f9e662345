package main

import (
	"slices"
	"testing"
	"time"
)

// An EXISTS covers every round up to its count once, the first time: a later EXISTS with
// the same count (a server repeating itself) or a lower one changes nothing, and one EXISTS
// can cover two rounds whose notifications the server folded.
func TestIdleClockNote(t *testing.T) {
	k := newIdleClock(3)
	k.base.Store(10)
	if got := k.note(10, 5); len(got) != 0 {
		t.Errorf("EXISTS 10 with base 10 covered %v, want nothing", got)
	}
	if got := k.note(11, 100); !slices.Equal(got, []int{0}) {
		t.Errorf("EXISTS 11 covered %v, want round 0", got)
	}
	if got := k.note(11, 150); len(got) != 0 {
		t.Errorf("a repeated EXISTS 11 covered %v again", got)
	}
	if got := k.note(13, 200); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("EXISTS 13 covered %v, want rounds 1 and 2", got)
	}
	if got := k.note(20, 300); len(got) != 0 {
		t.Errorf("EXISTS 20 covered %v beyond the 3 rounds", got)
	}
	for j, want := range []int64{100, 200, 200} {
		if at := k.seen[j].Load(); at != want {
			t.Errorf("round %d seen at %d, want %d (the first EXISTS covering it)", j, at, want)
		}
	}
}

// Samples are measured from each round's 250, may be negative (an EXISTS before the 250),
// skip rounds never acknowledged, and count what no EXISTS covered as missing.
func TestIdleLatencies(t *testing.T) {
	a, b := newIdleClock(3), newIdleClock(3)
	a.note(1, 1_000) // round 0 at 1000
	b.note(1, 900)   // round 0 before its 250
	a.note(2, 5_000) // round 1; b never hears of round 1
	acked := []int64{950, 4_000, 0}
	samples, missing := idleLatencies([]*idleClock{a, b}, acked)
	want := []time.Duration{50, -50, 1_000}
	if !slices.Equal(samples, want) || missing != 1 {
		t.Errorf("samples %v missing %d, want %v and 1 (b, round 1; round 2 never acknowledged)", samples, missing, want)
	}
}

func TestSummarizeLatencies(t *testing.T) {
	if summarizeLatencies(nil) != nil {
		t.Error("no samples: want no summary")
	}
	var s []time.Duration
	for i := 200; i >= 1; i-- { // unsorted on purpose: 200 ms down to 1 ms
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	s = append(s, -3*time.Millisecond)
	l := summarizeLatencies(s)
	// 201 samples: nearest rank p50 is the 101st (100 ms), p99 the 199th (198 ms).
	if l.P50 != 0.100 || l.P99 != 0.198 || l.Max != 0.200 {
		t.Errorf("summary %+v, want p50 100 ms, p99 198 ms, max 200 ms", l)
	}
	if s[0] != 200*time.Millisecond {
		t.Error("summarizeLatencies sorted its argument in place")
	}
}
