package pop3

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/auth"
)

// remoteConn is a scriptConn that seems to come from addr.
type remoteConn struct {
	*scriptConn
	addr net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.addr }

// TestBlockedAddressGetsSysTemp checks the answer to a login from an address that the
// authenticator blocked after repeated failures: -ERR [SYS/TEMP] (RFC 3206 §4: the
// trouble is not the credentials, which may be right, so a client must not ask for
// another password, only try later), even with the right password.
func TestBlockedAddressGetsSysTemp(t *testing.T) {
	opts := DefaultOptions()
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.Auth = &auth.Authenticator{
		Store:     memAccounts{},
		Penalty:   auth.Penalty{MaxFailures: 2},
		Plaintext: auth.PlaintextPolicy{Always: true},
	}
	srv := newServer(&memStore{msgs: []string{"Subject: x\r\n\r\ny\r\n"}}, opts)
	srv.lockWait = 0
	attacker := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 5555}
	script := "USER u\r\nPASS wrong1\r\nUSER u\r\nPASS wrong2\r\nUSER u\r\nPASS p\r\nAUTH PLAIN AHUAcA==\r\nQUIT\r\n"
	conn := remoteConn{&scriptConn{in: bytes.NewReader([]byte(script))}, attacker}
	newSession(srv, conn).serve()
	got := replies(conn.out.String())
	want := []string{
		"+OK", "+OK", "-ERR [AUTH]", "+OK", "-ERR [AUTH]", "+OK",
		"-ERR [SYS/TEMP] too many failed logins", "-ERR [SYS/TEMP] too many failed logins", "+OK",
	}
	if len(got) != len(want) {
		t.Fatalf("replies %q, want %d lines", got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("reply %d = %q, want %q...", i, got[i], w)
		}
	}

	// Another address logs in with the right password at once.
	clean := remoteConn{&scriptConn{in: bytes.NewReader([]byte("USER u\r\nPASS p\r\nQUIT\r\n"))},
		&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5555}}
	newSession(srv, clean).serve()
	if r := replies(clean.out.String()); len(r) < 3 || !strings.HasPrefix(r[2], "+OK maildrop") {
		t.Fatalf("clean address: %q", r)
	}
}
