package store

// anyAccount is the hub key of WatchAll's waiters. No account has ID 0 (SQLite row ids
// start at 1), so it never collides with an account's waiters.
const anyAccount int64 = 0

// WatchAll registers a waiter for changes to any account, including accounts created or
// deleted: a view of every account (the web inspector's overview) watches this. Like
// Watch, the channel receives coalesced wake-ups that never block the writer, from this
// process or another one on the same data directory; cancel unregisters it.
func (s *Store) WatchAll() (ch <-chan struct{}, cancel func()) {
	return s.hub.watch(anyAccount)
}
