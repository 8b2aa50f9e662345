// Package connlimit caps how many connections Letterbox serves at once: in total, from one
// address, and per account from one address (Dovecot's mail_max_userip_connections).
//
// Implementation notes:
//
//   - Limiter counts; Listener applies the total and per-address caps at accept time,
//     before a protocol server sees the connection. A connection over a cap is answered
//     with the protocol's own refusal (POP3 "-ERR [SYS/TEMP]", IMAP "* BYE", LMTP "421
//     4.7.0") and closed; nothing of what the client sent is read. Behind implicit TLS
//     there is no session to answer in yet, so there the connection is only closed.
//   - A slot is held from Accept until the connection is closed, however often Close is
//     called, so the counts cannot drift: every protocol closes its connections when the
//     session ends (a STARTTLS session closes the TLS connection, which closes this one).
//   - The address counted is the client's: behind a proxy that sends the PROXY protocol
//     header (internal/proxyproto, beneath this Listener), RemoteAddr is already the client's
//     own, not the proxy's. IPv6 addresses are counted per /64, the block a single host
//     usually controls.
//   - Loopback and the trusted networks (auth.trusted_networks) are exempt from the
//     per-address cap, not from the total: the local MTA delivers many messages at once
//     over LMTP, and a webmail or tool on this host (or on a trusted network) that cannot
//     send a PROXY header speaks for all its users from one address. A proxy was the other
//     reason for the exemption; it no longer is one, as the proxy now names each client:
//     a loopback address that a proxy names (a client on this host behind it) is counted.
//   - The per-account cap is asked for at login by the protocols through AcquireUser, and
//     released when the session ends; it counts per protocol, as Dovecot does. It counts
//     every address, loopback and the trusted networks included, as Dovecot's
//     mail_max_userip_connections does: many users behind one address each have their own
//     count, so only one account's own sessions are limited.
//   - Refusals are logged at most once every 10 s with the number refused since, so a
//     flood does not flood the log.
package connlimit

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// The refusals, each a complete reply line in its protocol's words.
var (
	// RefusePOP3 is RFC 2449 §8.1's SYS/TEMP response code (RFC 3206): try again later.
	RefusePOP3 = []byte("-ERR [SYS/TEMP] too many connections, try again later\r\n")
	// RefuseIMAP is an untagged BYE in place of the greeting (RFC 3501 §7.1.5).
	RefuseIMAP = []byte("* BYE Too many connections, try again later\r\n")
	// RefuseLMTP is a 421 greeting (RFC 5321 §3.1, §4.2.5; RFC 3463 4.7.0: temporary
	// security or policy refusal): the MTA keeps the message queued and retries.
	RefuseLMTP = []byte("421 4.7.0 Too many connections, try again later\r\n")
)

// ErrTooMany is AcquireUser's refusal.
var ErrTooMany = errors.New("connlimit: too many connections")

// Limiter counts connections. Zero caps mean no limit; the zero Limiter limits nothing.
// It is safe for concurrent use.
type Limiter struct {
	// MaxTotal caps all connections (limits.max_connections).
	MaxTotal int
	// MaxPerIP caps connections from one address (limits.max_connections_per_ip).
	MaxPerIP int
	// MaxUserIP caps one account's sessions from one address, per protocol
	// (limits.max_userip_connections).
	MaxUserIP int
	// Exempt are networks free of the per-address cap MaxPerIP besides loopback
	// (auth.trusted_networks); MaxUserIP counts them too.
	Exempt []netip.Prefix

	mu     sync.Mutex
	total  int
	perIP  map[netip.Addr]int
	userIP map[userIPKey]int
}

type userIPKey struct {
	protocol, account string
	addr              netip.Addr
}

// key is the address a connection from remote is counted against (IPv6: its /64), and
// whether it is exempt from the per-address cap (loopback not named by a proxy, Exempt). ok is false when
// there is no address to count (a unix socket: the local MTA; an unknown peer).
func (l *Limiter) key(remote net.Addr) (addr netip.Addr, exempt, ok bool) {
	if remote == nil {
		return netip.Addr{}, false, false
	}
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return netip.Addr{}, false, false
	}
	addr = ap.Addr().Unmap()
	_, named := remote.(proxied)
	exempt = addr.IsLoopback() && !named
	for _, p := range l.Exempt {
		if p.Contains(addr) {
			exempt = true
		}
	}
	if addr.Is6() {
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return addr, exempt, true
}

// proxied is implemented by an address that a trusted proxy named (internal/proxyproto.Addr).
type proxied interface{ Proxy() net.Addr }

// Acquire takes a connection slot for a client at remote; ok is false if a cap is reached.
// release gives the slot back; it may be called any number of times.
func (l *Limiter) Acquire(remote net.Addr) (release func(), ok bool) {
	addr, exempt, ok := l.key(remote)
	perIP := ok && !exempt
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.MaxTotal > 0 && l.total >= l.MaxTotal {
		return nil, false
	}
	if perIP && l.MaxPerIP > 0 && l.perIP[addr] >= l.MaxPerIP {
		return nil, false
	}
	l.total++
	if perIP {
		if l.perIP == nil {
			l.perIP = make(map[netip.Addr]int)
		}
		l.perIP[addr]++
	}
	return sync.OnceFunc(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.total--
		if perIP {
			if l.perIP[addr]--; l.perIP[addr] <= 0 {
				delete(l.perIP, addr)
			}
		}
	}), true
}

// AcquireUser takes a session slot for account (compared case-insensitively) logged in
// over protocol from remote; ErrTooMany if the account already has MaxUserIP sessions of
// that protocol from that address. release gives the slot back; it may be called any
// number of times. Every address counts, loopback and Exempt included; a client without
// one (a unix socket) is not limited.
func (l *Limiter) AcquireUser(protocol, account string, remote net.Addr) (release func(), err error) {
	if l == nil || l.MaxUserIP <= 0 {
		return func() {}, nil
	}
	addr, _, ok := l.key(remote)
	if !ok {
		return func() {}, nil
	}
	k := userIPKey{protocol, strings.ToLower(account), addr}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.userIP[k] >= l.MaxUserIP {
		return nil, ErrTooMany
	}
	if l.userIP == nil {
		l.userIP = make(map[userIPKey]int)
	}
	l.userIP[k]++
	return sync.OnceFunc(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.userIP[k]--; l.userIP[k] <= 0 {
			delete(l.userIP, k)
		}
	}), nil
}

// Listener applies a Limiter's total and per-address caps to the connections it accepts.
type Listener struct {
	net.Listener
	lim     *Limiter
	refusal []byte // written to a refused connection; nil closes it silently
	log     *slog.Logger
	name    string

	logMu   sync.Mutex
	lastLog time.Time
	refused int // since lastLog
}

// NewListener wraps inner: connections over lim's caps are answered with refusal (nil
// for none: implicit TLS) and closed, and Accept goes on to the next. protocol names the
// listener in the log.
func NewListener(inner net.Listener, lim *Limiter, refusal []byte, protocol string, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: inner, lim: lim, refusal: refusal, log: log, name: protocol}
}

// refuseWriteTimeout bounds the write of a refusal; it fits in any socket buffer, so it
// only matters for a peer that is gone.
const refuseWriteTimeout = time.Second

// Accept returns the next connection within the caps.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, ok := l.lim.Acquire(c.RemoteAddr())
		if ok {
			return &conn{Conn: c, release: release}, nil
		}
		if l.refusal != nil {
			c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
			c.Write(l.refusal)
		}
		c.Close()
		l.logRefusal(c.RemoteAddr())
	}
}

func (l *Listener) logRefusal(remote net.Addr) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	l.refused++
	now := time.Now()
	if now.Sub(l.lastLog) < 10*time.Second {
		return
	}
	ip := ""
	if remote != nil {
		ip = remote.String()
	}
	l.log.Warn("connection refused: too many connections", "protocol", l.name, "ip", ip,
		"refused", l.refused, "max_total", l.lim.MaxTotal, "max_per_ip", l.lim.MaxPerIP)
	l.lastLog, l.refused = now, 0
}

// conn gives its slot back when it is closed.
type conn struct {
	net.Conn
	release func()
}

// NetConn is the connection beneath, for what looks through wrappers (TCP options, the
// metrics' byte counts).
func (c *conn) NetConn() net.Conn { return c.Conn }

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
