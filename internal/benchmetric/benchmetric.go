// Package benchmetric holds what the Go benchmarks of the store and the protocols report
// beside Go's own numbers: the time and the process's CPU time per message. It is imported
// only by _test.go files.
package benchmetric

import (
	"syscall"
	"testing"
	"time"
)

// CPUTime is the process's CPU time, user and system (client and server, when both run in
// the benchmark's process). Per message it leaves out waiting for the disk, and moves less
// than the wall clock when other work shares the machine.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportPerMessage reports, for a benchmark that has handled msgs messages in all its
// iterations, the time per message (ns/msg) and the CPU time per message since cpu0, a
// CPUTime taken before the loop (cpu-ns/msg).
func ReportPerMessage(b *testing.B, msgs int, cpu0 time.Duration) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(msgs), "ns/msg")
	b.ReportMetric(float64((CPUTime()-cpu0).Nanoseconds())/float64(msgs), "cpu-ns/msg")
}
