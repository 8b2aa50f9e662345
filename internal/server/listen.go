package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"
)

// unixPrefix marks a unix-socket address: unix:/run/letterbox/lmtp.
const unixPrefix = "unix:"

// Listen opens a listener on addr: host:port for TCP (port 0 picks a free port), or
// unix:/path for a unix socket. A socket file left behind by a process that is gone is
// removed first; one that a live process still answers on is an error, and so is a path
// that exists but is not a socket.
func Listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, unixPrefix)
	if !ok {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return l, nil
	}
	if path == "" {
		return nil, fmt.Errorf("listen on %q: empty socket path", addr)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	// Like Dovecot's lmtp socket: the MTA runs as another user. Restrict access with the
	// permissions of the directory the socket lives in.
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen on unix:%s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("listen on unix:%s: the path exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("listen on unix:%s: another process is listening there", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("listen on unix:%s: removing the stale socket: %w", path, err)
	}
	return nil
}

// displayAddr is how a listener's address appears in logs: host:port, or unix:/path.
func displayAddr(l net.Listener) string {
	a := l.Addr()
	if a.Network() == "unix" {
		return unixPrefix + a.String()
	}
	return a.String()
}
