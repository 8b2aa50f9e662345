package auth

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }

func tcpConn(addr string) net.Conn {
	return fakeConn{remote: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr))}
}

func TestPlaintextPolicy(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	tests := []struct {
		name   string
		policy PlaintextPolicy
		conn   net.Conn
		tls    bool
		want   bool
	}{
		{"loopback v4", PlaintextPolicy{}, tcpConn("127.0.0.1:5000"), false, true},
		{"loopback v6", PlaintextPolicy{}, tcpConn("[::1]:5000"), false, true},
		{"v4-mapped loopback", PlaintextPolicy{}, tcpConn("[::ffff:127.0.0.1]:5000"), false, true},
		{"remote without TLS", PlaintextPolicy{}, tcpConn("198.51.100.7:5000"), false, false},
		{"remote with TLS", PlaintextPolicy{}, tcpConn("198.51.100.7:5000"), true, true},
		{"trusted network", PlaintextPolicy{Trusted: trusted}, tcpConn("192.0.2.9:5000"), false, true},
		{"outside trusted network", PlaintextPolicy{Trusted: trusted}, tcpConn("192.0.3.9:5000"), false, false},
		{"always", PlaintextPolicy{Always: true}, tcpConn("198.51.100.7:5000"), false, true},
		{"never, even loopback", PlaintextPolicy{Never: true}, tcpConn("127.0.0.1:5000"), false, false},
		{"never, but TLS", PlaintextPolicy{Never: true}, tcpConn("127.0.0.1:5000"), true, true},
	}
	for _, tt := range tests {
		if got := tt.policy.Allowed(tt.conn, tt.tls); got != tt.want {
			t.Errorf("%s: Allowed = %v, want %v", tt.name, got, tt.want)
		}
	}
}

type fakeStore map[string]store.Account

func (f fakeStore) Authenticate(_ context.Context, address, password string) (store.Account, error) {
	acct, ok := f[address]
	switch {
	case !ok || password != "right":
		return store.Account{}, store.ErrAuthFailed
	case acct.Disabled:
		return store.Account{}, store.ErrAccountDisabled
	}
	return acct, nil
}

func TestLogin(t *testing.T) {
	a := &Authenticator{Store: fakeStore{
		"both@x":     {ID: 1},
		"pop3only@x": {ID: 2, Protocols: []string{store.ProtocolPOP3}},
		"off@x":      {ID: 3, Disabled: true},
	}}
	ctx := context.Background()
	if acct, err := a.Login(ctx, store.ProtocolIMAP, "both@x", "right"); err != nil || acct.ID != 1 {
		t.Fatalf("Login both@x = %v, %v", acct, err)
	}
	for _, tt := range []struct {
		proto, user, pass string
		want              error
	}{
		{store.ProtocolIMAP, "both@x", "wrong", ErrFailed},
		{store.ProtocolIMAP, "nobody@x", "right", ErrFailed},
		{store.ProtocolIMAP, "pop3only@x", "right", ErrProtocolNotAllowed},
		{store.ProtocolPOP3, "off@x", "right", ErrDisabled},
	} {
		if _, err := a.Login(ctx, tt.proto, tt.user, tt.pass); !errors.Is(err, tt.want) {
			t.Errorf("Login(%s, %s) = %v, want %v", tt.proto, tt.user, err, tt.want)
		}
	}
	if _, err := a.Login(ctx, store.ProtocolPOP3, "pop3only@x", "right"); err != nil {
		t.Errorf("pop3only over POP3: %v", err)
	}
}

func TestLoginFailureDelay(t *testing.T) {
	a := &Authenticator{Store: fakeStore{"u@x": {ID: 1}}, FailureDelay: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a cancelled context ends the delay: the session is going away
	if _, err := a.Login(ctx, store.ProtocolIMAP, "u@x", "wrong"); !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v", err)
	}
	// A correct login is never delayed, even with a huge delay configured.
	done := make(chan error, 1)
	go func() { _, err := a.Login(context.Background(), store.ProtocolIMAP, "u@x", "right"); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a correct login was delayed")
	}
}

func TestLoginServer(t *testing.T) {
	var gotUser, gotPass string
	srv := NewLoginServer(func(u, p string) error { gotUser, gotPass = u, p; return nil })
	ch, done, err := srv.Next(nil)
	if string(ch) != "Username:" || done || err != nil {
		t.Fatalf("first challenge %q %v %v", ch, done, err)
	}
	ch, done, err = srv.Next([]byte("alice"))
	if string(ch) != "Password:" || done || err != nil {
		t.Fatalf("second challenge %q %v %v", ch, done, err)
	}
	if _, done, err = srv.Next([]byte("s3cret")); !done || err != nil {
		t.Fatalf("final %v %v", done, err)
	}
	if gotUser != "alice" || gotPass != "s3cret" {
		t.Fatalf("got %q/%q", gotUser, gotPass)
	}
	if _, _, err := srv.Next([]byte("more")); err == nil {
		t.Fatal("a response after completion was accepted")
	}

	// With an initial response the user name comes at once.
	bad := NewLoginServer(func(u, p string) error { return ErrFailed })
	if ch, _, _ := bad.Next([]byte("bob")); string(ch) != "Password:" {
		t.Fatalf("after initial response: %q", ch)
	}
	if _, done, err := bad.Next([]byte("x")); !done || !errors.Is(err, ErrFailed) {
		t.Fatalf("failing authenticate: %v %v", done, err)
	}
}
