package server

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// Two servers (nodes) over one PostgreSQL store: failed logins from one address spread
// over both add up to auth.max_failures, and then both refuse that address, right
// password included, while a clean address still logs in. PostgreSQL only
// (LETTERBOX_TEST_STORE=postgres under scripts/pg-test-cluster; make unit-pg).
func TestLoginBlockAppliesOnEveryNode(t *testing.T) {
	if !storetest.OnPostgres() {
		t.Skip("PostgreSQL only: LETTERBOX_TEST_STORE=postgres scripts/pg-test-cluster go test ./internal/server")
	}
	url := storetest.Database(t)
	node := func() *Server {
		cfg := untrustedConfig(t)
		cfg.Auth.MaxFailures = 3
		st, err := store.Open(cfg.Data, store.Options{Logger: slog.New(slog.DiscardHandler), URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return startOn(t, cfg, st, slog.New(slog.DiscardHandler))
	}
	a, b := node(), node()
	const user, password = "ann@mail.test", "the right one"
	createAccount(t, a, user, password)
	pass := func(srv *Server, ip netip.Addr, pw string) string {
		c := dialFrom(t, ip, srv.Addr(POP3S), true)
		c.line()
		c.pop3("USER " + user)
		got := c.pop3("PASS " + pw)
		c.pop3("QUIT")
		return got
	}
	for i, srv := range []*Server{a, b, a} {
		if got := pass(srv, untrustedIP, fmt.Sprint("guess-", i)); !strings.HasPrefix(got, "-ERR [AUTH] ") {
			t.Fatalf("wrong password %d: %q", i+1, got)
		}
	}
	for name, srv := range map[string]*Server{"a": a, "b": b} {
		if got := pass(srv, untrustedIP, password); !strings.HasPrefix(got, "-ERR [SYS/TEMP] ") {
			t.Errorf("node %s, the right password from the blocked address: %q, want -ERR [SYS/TEMP]", name, got)
		}
	}
	if got := pass(b, cleanIP, password); !strings.HasPrefix(got, "+OK") {
		t.Errorf("node b, a clean address: %q", got)
	}
}
