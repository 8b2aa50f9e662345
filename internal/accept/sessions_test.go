package accept

import (
	"context"
	"net"
	"testing"
)

// TestSessionsShutdown: after Close no session is added and no goroutine started; Close
// closes the listeners and names the live sessions; Drain returns once the last is removed,
// or with ctx's error before.
func TestSessionsShutdown(t *testing.T) {
	var g Sessions[int]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln, "test", quiet, func(c net.Conn) bool { c.Close(); return true }) }()
	g.Add(1)
	g.Add(2)
	release := make(chan struct{})
	if !g.Go(func() { <-release }) {
		t.Fatal("Go refused before Close")
	}
	// Serve registers its listener before accepting: a connection accepted proves it.
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Read(make([]byte, 1))
		c.Close()
	}

	live := g.Close()
	if len(live) != 2 {
		t.Fatalf("Close named %v, want the two live sessions", live)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Close: %v, want nil", err)
	}
	if g.Add(3) || g.Go(func() {}) {
		t.Error("a session or goroutine started after Close")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Drain(ctx); err == nil {
		t.Error("Drain returned with sessions live")
	}
	g.Remove(1)
	g.Remove(1) // again: nothing
	g.Remove(2)
	if err := g.Drain(context.Background()); err != nil {
		t.Errorf("Drain: %v", err)
	}
	close(release)
	g.Wait()
	if err := g.Serve(ln, "test", quiet, nil); err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
}
