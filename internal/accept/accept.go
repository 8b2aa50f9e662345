// Package accept runs the accept loop every Letterbox protocol server shares.
//
// Implementation notes:
//
//   - A temporary accept failure (too many open files, a timeout) is logged and retried
//     after a delay that doubles from 5 ms up to 1 s, so a server under fd pressure neither
//     spins nor gives up; the delay resets after the next success.
//   - A closed listener (the server shutting down) ends the loop without an error.
package accept

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Loop accepts connections on l and hands each to handle until l is closed, or handle
// returns false (the server is shutting down: Loop closes that connection). It returns nil
// then, and an error only when accepting fails for good. protocol names the server in logs
// and errors.
func Loop(l net.Listener, protocol string, log *slog.Logger, handle func(net.Conn) bool) error {
	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				log.Warn("accept failed, retrying", "protocol", protocol, "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("%s: accept: %w", protocol, err)
		}
		delay = 0
		if !handle(conn) {
			conn.Close()
			return nil
		}
	}
}
