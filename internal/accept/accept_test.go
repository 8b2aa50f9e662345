package accept

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "accept: too many open files" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// scriptedListener returns the results of Accept from a script, then net.ErrClosed.
type scriptedListener struct {
	net.Listener
	results []error
	conns   int
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	if len(l.results) == 0 {
		return nil, net.ErrClosed
	}
	err := l.results[0]
	l.results = l.results[1:]
	if err != nil {
		return nil, err
	}
	l.conns++
	c, _ := net.Pipe()
	return c, nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestLoopRetriesTemporaryErrorsAndStopsWhenClosed(t *testing.T) {
	l := &scriptedListener{results: []error{nil, timeoutErr{}, timeoutErr{}, nil}}
	var handled int
	err := Loop(l, "test", quiet, func(c net.Conn) bool { handled++; c.Close(); return true })
	if err != nil {
		t.Fatalf("Loop = %v, want nil once the listener is closed", err)
	}
	if handled != 2 {
		t.Fatalf("handled %d connections, want 2 (temporary errors must not end the loop)", handled)
	}
}

func TestLoopReportsPermanentError(t *testing.T) {
	boom := errors.New("listener broken")
	l := &scriptedListener{results: []error{boom}}
	if err := Loop(l, "test", quiet, func(net.Conn) bool { return true }); !errors.Is(err, boom) {
		t.Fatalf("Loop = %v, want %v", err, boom)
	}
}

func TestLoopStopsWhenHandleRefuses(t *testing.T) {
	l := &scriptedListener{results: []error{nil, nil, nil}}
	var refused net.Conn
	if err := Loop(l, "test", quiet, func(c net.Conn) bool { refused = c; return false }); err != nil {
		t.Fatal(err)
	}
	// On a closed pipe SetDeadline fails; on an open one it succeeds (and nothing blocks).
	if err := refused.SetDeadline(time.Now()); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("the refused connection is still open (SetDeadline = %v)", err)
	}
	if l.conns != 1 {
		t.Fatalf("accepted %d connections after handle refused, want 1", l.conns)
	}
}
