package connlimit

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/proxyproto"
)

func tcp(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

// counts reports the connections held in total and from remote's key.
func (l *Limiter) counts(remote net.Addr) (total, perIP int) {
	addr, _, _ := l.key(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.perIP[addr]
}

func TestAcquirePerIPAndTotal(t *testing.T) {
	l := &Limiter{MaxTotal: 5, MaxPerIP: 2}
	a, b := tcp("198.51.100.1:1000"), tcp("198.51.100.2:1000")
	r1, ok1 := l.Acquire(a)
	_, ok2 := l.Acquire(tcp("198.51.100.1:2000")) // same address, another port
	if !ok1 || !ok2 {
		t.Fatal("the first two connections from one address were refused")
	}
	if _, ok := l.Acquire(a); ok {
		t.Fatal("a third connection from one address was accepted (MaxPerIP 2)")
	}
	// Another address is not affected.
	if _, ok := l.Acquire(b); !ok {
		t.Fatal("another address was refused")
	}
	// Releasing (twice: harmless) frees exactly one slot.
	r1()
	r1()
	if total, per := l.counts(a); total != 2 || per != 1 {
		t.Fatalf("after release: total %d, per-IP %d; want 2, 1", total, per)
	}
	if _, ok := l.Acquire(a); !ok {
		t.Fatal("a released slot was not reusable")
	}
	// Loopback is exempt from the per-address cap, not from the total.
	for i := range 2 {
		if _, ok := l.Acquire(tcp("127.0.0.1:9")); !ok {
			t.Fatalf("loopback connection %d refused below the total", i+1)
		}
	}
	if _, ok := l.Acquire(tcp("127.0.0.1:9")); ok {
		t.Fatal("the total cap did not apply to loopback")
	}
}

func TestIPv6PerSlash64AndExempt(t *testing.T) {
	l := &Limiter{MaxPerIP: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if _, ok := l.Acquire(tcp("[2001:db8::1]:1")); !ok {
		t.Fatal("first v6 refused")
	}
	if _, ok := l.Acquire(tcp("[2001:db8::2]:1")); ok {
		t.Fatal("same /64 not counted together")
	}
	if _, ok := l.Acquire(tcp("[2001:db8:0:1::2]:1")); !ok {
		t.Fatal("another /64 refused")
	}
	for range 3 {
		if _, ok := l.Acquire(tcp("10.9.9.9:1")); !ok {
			t.Fatal("exempt network capped")
		}
	}
}

// TestLoopbackNamedByAProxyIsCounted: the per-address cap exempts a process on this host,
// not a client on this host that a trusted proxy names (internal/proxyproto): the proxy knows
// who it is, so it is counted like any client.
func TestLoopbackNamedByAProxyIsCounted(t *testing.T) {
	l := &Limiter{MaxPerIP: 1}
	named := &proxyproto.Addr{TCPAddr: *net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:1"))}
	if _, ok := l.Acquire(named); !ok {
		t.Fatal("the first connection of a named loopback client was refused")
	}
	if _, ok := l.Acquire(named); ok {
		t.Error("a named loopback client was exempt from the per-address cap")
	}
	for range 3 {
		if _, ok := l.Acquire(tcp("127.0.0.2:1")); !ok {
			t.Fatal("a process on this host, connecting over loopback itself, was capped")
		}
	}
}

func TestAcquireUser(t *testing.T) {
	l := &Limiter{MaxUserIP: 2}
	from := tcp("198.51.100.1:1")
	var releases []func()
	for range 2 {
		r, err := l.AcquireUser("imap", "Alice@x", from)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	if _, err := l.AcquireUser("imap", "alice@X", from); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third IMAP session: %v, want ErrTooMany", err)
	}
	// Other protocol, other address, other account: separate counts.
	for _, c := range []struct {
		proto, acct string
		from        net.Addr
	}{{"pop3", "alice@x", from}, {"imap", "alice@x", tcp("198.51.100.2:1")}, {"imap", "bob@x", from},
		{"imap", "alice@x", tcp("127.0.0.1:1")}} {
		if _, err := l.AcquireUser(c.proto, c.acct, c.from); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	releases[0]()
	releases[0]()
	if _, err := l.AcquireUser("imap", "alice@x", from); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, err := l.AcquireUser("imap", "alice@x", from); !errors.Is(err, ErrTooMany) {
		t.Fatalf("a double release freed two slots: %v", err)
	}
	// Loopback and the exempt networks are counted like any address (Dovecot's
	// mail_max_userip_connections): exempt from the per-address cap, not from this one.
	// Behind a proxy that sends the PROXY protocol, each client has its own address; a
	// unix socket has none and is not limited.
	l = &Limiter{MaxUserIP: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	for _, from := range []net.Addr{tcp("127.0.0.1:1"), tcp("[::1]:1"), tcp("10.1.1.1:1")} {
		if _, err := l.AcquireUser("imap", "alice@x", from); err != nil {
			t.Fatalf("first session from %v: %v", from, err)
		}
		if _, err := l.AcquireUser("imap", "alice@x", from); !errors.Is(err, ErrTooMany) {
			t.Errorf("second session from %v: %v, want ErrTooMany (loopback and exempt networks count)", from, err)
		}
	}
	for range 2 {
		if _, err := l.AcquireUser("imap", "alice@x", &net.UnixAddr{Name: "@", Net: "unix"}); err != nil {
			t.Errorf("a unix-socket session: %v", err)
		}
	}
	var nilLimiter *Limiter
	if _, err := nilLimiter.AcquireUser("imap", "a", from); err != nil {
		t.Fatalf("nil limiter: %v", err)
	}
}

// TestListenerRefusesInProtocolWords connects over real TCP (loopback, so only the total
// cap applies): the connection over the cap reads the refusal and then EOF; once a held
// connection closes, a new one is served.
func TestListenerRefusesInProtocolWords(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, &Limiter{MaxTotal: 1}, RefusePOP3, "pop3", nil)
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second)) // only keeps a broken test from hanging
		return c
	}
	first := dial()
	defer first.Close()
	held := <-accepted

	second := dial()
	line, err := bufio.NewReader(second).ReadString('\n')
	if err != nil || line != string(RefusePOP3) {
		t.Fatalf("refused connection read %q, %v; want %q", line, err, RefusePOP3)
	}
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("the refused connection stayed open")
	}
	second.Close()

	held.Close()
	held.Close() // closing twice gives back one slot only
	third := dial()
	defer third.Close()
	if c := <-accepted; c == nil {
		t.Fatal("no connection accepted after the held one closed")
	} else {
		c.Close()
	}
}

func TestConcurrentAcquireRelease(t *testing.T) {
	l := &Limiter{MaxTotal: 50, MaxPerIP: 10}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := tcp(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 4)}), 1).String())
			for range 200 {
				if r, ok := l.Acquire(from); ok {
					r()
				}
			}
		}()
	}
	wg.Wait()
	if total, _ := l.counts(nil); total != 0 || len(l.perIP) != 0 {
		t.Fatalf("after all releases: total %d, %d addresses held", total, len(l.perIP))
	}
}
