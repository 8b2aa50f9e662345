package pop3

import (
	"context"
	"sync"
	"time"
)

// maildrops holds the maildrop locks of the whole process, so that every Server on the
// same store (a POP3 and a POP3S listener, say) honours the same locks.
var maildrops maildropLocks

// lockKey names one account's maildrop in one store.
type lockKey struct {
	st      mailStore
	account int64
}

// maildropLocks gives one POP3 session at a time the maildrop of an account (RFC 2449
// §8.1 [IN-USE], RFC 1939 §4 "exclusive-access lock"). The locks live in this process;
// a session releases its lock however it ends, so a dropped connection frees the
// maildrop as soon as the server notices the drop.
type maildropLocks struct {
	mu   sync.Mutex
	held map[lockKey]chan struct{} // closed when released
}

// acquire takes the lock of account, waiting up to wait for its holder to release it.
func (l *maildropLocks) acquire(ctx context.Context, account lockKey, wait time.Duration) bool {
	var timeout <-chan time.Time
	for {
		l.mu.Lock()
		released, busy := l.held[account]
		if !busy {
			if l.held == nil {
				l.held = make(map[lockKey]chan struct{})
			}
			l.held[account] = make(chan struct{})
			l.mu.Unlock()
			return true
		}
		l.mu.Unlock()

		if timeout == nil {
			if wait <= 0 {
				return false
			}
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-released:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// release frees the lock of account. Only the holder calls it.
func (l *maildropLocks) release(account lockKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.held[account]; ok {
		close(ch)
		delete(l.held, account)
	}
}

// releaseMaildrop releases the session's maildrop lock, if it holds it.
func (s *session) releaseMaildrop() {
	if s.unlockCluster != nil {
		s.unlockCluster()
		s.unlockCluster = nil
	}
	if s.locked {
		s.locked = false
		maildrops.release(s.srv.maildropKey(s.acct.ID))
	}
}

// maildropKey names the maildrop of account in the server's store.
func (srv *Server) maildropKey(account int64) lockKey {
	return lockKey{srv.st, account}
}

// loginDelays remembers when each account last logged in over POP3, for LOGIN-DELAY
// (RFC 2449 §6.5). It is memory only: a restart forgets it, which errs on the side of
// letting a user in.
type loginDelays struct {
	mu   sync.Mutex
	last map[int64]time.Time
}

// wait returns how much longer account must wait before it may log in again, or 0.
func (d *loginDelays) wait(account int64, now time.Time, delay time.Duration) time.Duration {
	if delay <= 0 {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	last, ok := d.last[account]
	if !ok {
		return 0
	}
	if left := delay - now.Sub(last); left > 0 {
		return left
	}
	return 0
}

// record notes a login of account at now. Entries older than delay no longer matter and
// are dropped now and then, so the map stays as small as the set of recent users.
func (d *loginDelays) record(account int64, now time.Time, delay time.Duration) {
	if delay <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		d.last = make(map[int64]time.Time)
	}
	if len(d.last) >= 1024 {
		for id, t := range d.last {
			if now.Sub(t) >= delay {
				delete(d.last, id)
			}
		}
	}
	d.last[account] = now
}
