package benchmetric

import "testing"

func TestCPUTimeAdvances(t *testing.T) {
	before := CPUTime()
	if before <= 0 {
		t.Fatalf("CPUTime = %v, want the process's CPU time so far", before)
	}
	x := 0
	for i := range 50_000_000 {
		x += i ^ x>>3
	}
	if after := CPUTime(); after <= before {
		t.Errorf("CPUTime went from %v to %v over a busy loop (%d)", before, after, x)
	}
}
