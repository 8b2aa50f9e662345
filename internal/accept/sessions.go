package accept

import (
	"context"
	"log/slog"
	"net"
	"sync"
)

// Sessions is the bookkeeping a protocol server keeps between Serve and Shutdown: the
// listeners it serves, its live sessions, the goroutines serving them, and whether it is
// shutting down. The IMAP and POP3 servers share it; the zero value is ready to use.
type Sessions[S comparable] struct {
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	live      map[S]struct{}
	closing   bool
	drained   chan struct{} // closed once closing with no live session
	running   sync.WaitGroup
}

// Serve accepts connections on l (Loop) and hands each to start, until Close; it returns
// nil then. A listener given after Close is not served.
func (g *Sessions[S]) Serve(l net.Listener, protocol string, log *slog.Logger, start func(net.Conn) bool) error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return nil
	}
	if g.listeners == nil {
		g.listeners = make(map[net.Listener]struct{})
	}
	g.listeners[l] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.listeners, l)
		g.mu.Unlock()
	}()
	return Loop(l, protocol, log, start)
}

// Go runs fn on a goroutine of its own that Wait waits for, unless closing (false).
func (g *Sessions[S]) Go(fn func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.running.Add(1)
	go func() {
		defer g.running.Done()
		fn()
	}()
	return true
}

// Handoff runs fn on a goroutine of its own that Wait waits for, even when closing: it is
// for a goroutine started with Go (or Handoff) that hands its session on to another
// before it returns (IMAP's session waiting for its client on a fresh goroutine), so
// that Wait still waits for the session.
func (g *Sessions[S]) Handoff(fn func()) {
	g.running.Add(1) // the caller's goroutine is still counted: Wait cannot be done yet
	go func() {
		defer g.running.Done()
		fn()
	}()
}

// Add registers a live session, or refuses it once closing.
func (g *Sessions[S]) Add(s S) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	if g.live == nil {
		g.live = make(map[S]struct{})
	}
	g.live[s] = struct{}{}
	return true
}

// Remove takes a session out; the last one out after Close ends Drained.
func (g *Sessions[S]) Remove(s S) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.live[s]; !ok {
		return
	}
	delete(g.live, s)
	if g.closing && len(g.live) == 0 {
		close(g.drained)
	}
}

// Closing says whether Close was called.
func (g *Sessions[S]) Closing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

// Close stops accepting: it closes every listener, and no session is added or goroutine
// started after it. It returns the sessions live then; calling it again returns those
// still live.
func (g *Sessions[S]) Close() []S {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closing {
		g.closing = true
		g.drained = make(chan struct{})
		if len(g.live) == 0 {
			close(g.drained)
		}
	}
	for l := range g.listeners {
		l.Close()
	}
	return g.liveLocked()
}

// Live returns the live sessions.
func (g *Sessions[S]) Live() []S {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.liveLocked()
}

func (g *Sessions[S]) liveLocked() []S {
	out := make([]S, 0, len(g.live))
	for s := range g.live {
		out = append(out, s)
	}
	return out
}

// Drain waits, after Close, until every session has been removed, or ctx ends (its error).
func (g *Sessions[S]) Drain(ctx context.Context) error {
	g.mu.Lock()
	drained := g.drained
	g.mu.Unlock()
	if drained == nil {
		panic("accept: Sessions.Drain before Close")
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait waits for every goroutine started with Go to return.
func (g *Sessions[S]) Wait() { g.running.Wait() }
