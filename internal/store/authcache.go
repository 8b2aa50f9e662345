package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// loginCache remembers recently verified logins so that a client that logs in again and
// again (a POP3 client polling every minute, twenty IMAP connections of one user) does not
// pay for an argon2id hash each time, as Dovecot's auth_cache does.
//
// An entry is keyed by the stored password hash, not by the address: a new password (even
// set by another process) means a new hash and therefore a miss. It holds an HMAC of the
// password under a key that exists only in this process's memory, never the password.
// Failed logins are never cached, so guessing still costs a full hash per try.
type loginCache struct {
	key     [32]byte
	ttl     time.Duration
	max     int
	mu      sync.Mutex
	entries map[string]loginEntry
}

type loginEntry struct {
	mac     [sha256.Size]byte
	expires time.Time
}

const (
	loginCacheTTL = 10 * time.Minute
	loginCacheMax = 100_000
)

func newLoginCache(ttl time.Duration, max int) *loginCache {
	c := &loginCache{ttl: ttl, max: max, entries: make(map[string]loginEntry)}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic("store: no randomness for the login cache: " + err.Error())
	}
	return c
}

func (c *loginCache) mac(hash, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(hash))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// verified reports whether password was verified against hash within the TTL.
func (c *loginCache) verified(hash, password string, now time.Time) bool {
	c.mu.Lock()
	e, ok := c.entries[hash]
	c.mu.Unlock()
	if !ok || now.After(e.expires) {
		return false
	}
	want := c.mac(hash, password)
	return hmac.Equal(e.mac[:], want[:])
}

// remember records a successful verification of password against hash.
func (c *loginCache) remember(hash, password string, now time.Time) {
	e := loginEntry{mac: c.mac(hash, password), expires: now.Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for h, old := range c.entries {
			if now.After(old.expires) {
				delete(c.entries, h)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[hash] = e
}
