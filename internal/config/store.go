package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Store is where the mail is kept (store.url, --store, LETTERBOX_STORE_URL).
type Store struct {
	// URL is empty for the SQLite store under Data, or a postgres:// (postgresql://) URL
	// naming a PostgreSQL database. Data stays each node's own directory either way (the
	// spool, the generated certificate).
	URL string
	// MmapSize is store.mmap_size: how much of the SQLite database file is read through a
	// memory map (bytes; 0: none).
	MmapSize int64
}

// StoreMmapSize is MmapSize as store.Options has it (0 there means the default).
func (s Store) StoreMmapSize() int64 {
	if s.MmapSize == 0 {
		return -1
	}
	return s.MmapSize
}

// Postgres reports whether the store is PostgreSQL.
func (s Store) Postgres() bool {
	return strings.HasPrefix(s.URL, "postgres://") || strings.HasPrefix(s.URL, "postgresql://")
}

func (s Store) validate() error {
	if s.URL == "" {
		return nil
	}
	if !s.Postgres() {
		return fmt.Errorf("store.url: want empty (SQLite under data) or postgres://USER:PASS@HOST:PORT/DB, not %q", redactURL(s.URL))
	}
	if _, err := url.Parse(s.URL); err != nil {
		return fmt.Errorf("store.url: %s: not a URL", redactURL(s.URL))
	}
	return nil
}

// redactURL hides a password in a URL, for messages and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.Index(s, "@"); i >= 0 {
			return "…" + s[i:]
		}
		return s
	}
	return u.Redacted()
}

// Redacted is the store URL with any password hidden.
func (s Store) Redacted() string { return redactURL(s.URL) }
