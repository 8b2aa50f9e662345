package imap

import (
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
)

// RFC 2971 §3.3: at most 30 field-value pairs, fields of at most 30 octets, values of at
// most 1024. Longer is a protocol violation; we accept it but keep only the first 30
// pairs and cut what we keep, so a client's ID costs the session a bounded amount.
const (
	idMaxPairs    = 30
	idMaxField    = 30
	idMaxValue    = 1024
	idLoggedValue = 64 // what of a name, version or os goes on the log lines
)

type idArgs struct {
	// params are the client's field-value pairs, fields lower-cased; nil for ID NIL.
	// A NIL value is "" (present: the field was named).
	params map[string]string
}

// ID SP id-params-list; id-params-list = "(" *(string SP nstring) ")" / nil (RFC 2971 §4;
// an empty list is not in the grammar, but Dovecot and others take it, and so do we).
func parseID(r *commandReader) (any, error) {
	if err := r.sp(); err != nil {
		return nil, err
	}
	a := &idArgs{}
	if b, err := r.peek(); err != nil {
		return nil, err
	} else if b != '(' {
		nilAtom, err := r.atom()
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(nilAtom, "NIL") {
			return nil, badSyntax("Expected a list or NIL, got %s", truncate(nilAtom, 32))
		}
		return a, nil
	}
	a.params = map[string]string{}
	err := r.list(true, func() error {
		field, err := r.string()
		if err != nil {
			return err
		}
		if err := r.sp(); err != nil {
			return err
		}
		value, _, err := r.nstring()
		if err != nil {
			return err
		}
		if len(a.params) < idMaxPairs {
			field = strings.ToLower(cut(field, idMaxField))
			if _, dup := a.params[field]; !dup {
				a.params[field] = cut(value, idMaxValue)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// cut shortens s to at most n octets, at a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// clientID is what a client said of itself in ID (RFC 2971 §3.3), for the log lines and
// the letterbox_imap_clients metric.
type clientID struct {
	sent              bool
	name, version, os string // as sent, cut to idLoggedValue
	known             string // the metric's label: knownClient(name)
	countedAs         string // the label the session is counted under while logged in; "" if not
	// originatingIP is the connection's own address once a trusted peer named the
	// client's (session.remote is then the named one); nil otherwise.
	originatingIP net.Addr
}

// knownClients map a fragment of an ID name (lower case) to the metric's label. Only
// these labels, "other" and "none" are ever used: what a client sends cannot make the
// series grow. The first match wins, so the more specific come first.
var knownClients = []struct{ fragment, label string }{
	{"thunderbird for android", "thunderbird-android"},
	{"k-9", "thunderbird-android"},
	{"k9", "thunderbird-android"},
	{"thunderbird", "thunderbird"},
	{"iphone", "apple-ios-mail"},
	{"ipad", "apple-ios-mail"},
	{"ios mail", "apple-ios-mail"},
	{"mac os x mail", "apple-mail"},
	{"macos mail", "apple-mail"},
	{"apple mail", "apple-mail"},
	{"mbsync", "mbsync"},
	{"isync", "mbsync"},
	{"outlook", "outlook"},
	{"microsoft", "outlook"},
	{"evolution", "evolution"},
	{"roundcube", "roundcube"},
	{"snappymail", "snappymail"},
	{"rainloop", "snappymail"},
	{"sogo", "sogo"},
	{"fairemail", "fairemail"},
	{"mutt", "mutt"},
	{"offlineimap", "offlineimap"},
	{"gmail", "gmail"},
	{"imaptest", "imaptest"},
}

// Labels for sessions without a known client name.
const (
	clientOther = "other" // an ID with a name not in knownClients, or without a name
	clientNone  = "none"  // no ID before login
)

// knownClient is the metric label of a client that names itself name in ID.
func knownClient(name string) string {
	n := strings.ToLower(name)
	for _, k := range knownClients {
		if strings.Contains(n, k.fragment) {
			return k.label
		}
	}
	return clientOther
}

// serverVersion is what ID answers as Letterbox's version: Options.Version, else the
// module version the binary was built as, else "dev".
func (s *Server) serverVersion() string {
	if s.opts.Version != "" {
		return s.opts.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// RFC 2971 §3.1, §3.2: any state; the server answers with its own ID and OK.
func handleID(s *session, cmd *command) error {
	a := cmd.args.(*idArgs)
	if len(a.params) > 0 { // NIL and () say nothing, and leave what an earlier ID said
		s.client.sent = true
		s.client.name = cut(a.params["name"], idLoggedValue)
		s.client.version = cut(a.params["version"], idLoggedValue)
		s.client.os = cut(a.params["os"], idLoggedValue)
		s.client.known = clientOther
		if s.client.name != "" {
			s.client.known = knownClient(s.client.name)
		}
		if ip, ok := a.params["x-originating-ip"]; ok {
			s.originatingIP(ip)
		}
		s.rebuildLog()
	}
	s.out.raw(`* ID ("name" "Letterbox" "version" `).quoted(s.srv.serverVersion()).raw(")").crlf()
	return nil
}

// originatingIP takes the client address a webmail names (Dovecot's x-originating-ip),
// from a trusted connection and before login only, as the session's remote address for
// everything after: login penalties and blocks, the per-account-and-address session cap,
// the plaintext policy, logs, the trace and the registry. As a proxy's PROXY header, it
// makes the named address count even if it is loopback (originatingAddr.Proxy). From
// anyone else it is ignored: a client could otherwise name any address to escape a block.
func (s *session) originatingIP(value string) {
	ip, err := netip.ParseAddr(strings.TrimSpace(value))
	switch {
	case err != nil:
		s.log.Debug("ID x-originating-ip is not an address; ignored", "value", cut(value, idLoggedValue))
	case s.acct != nil:
		s.log.Debug("ID x-originating-ip after login; ignored", "value", ip.String())
	case s.client.originatingIP != nil:
		s.log.Debug("ID x-originating-ip a second time; ignored", "value", ip.String())
	case !s.trustedPeer():
		s.log.Debug("ID x-originating-ip from an untrusted address; ignored", "value", ip.String())
	default:
		peer := s.remote
		addr := &originatingAddr{TCPAddr: net.TCPAddr{IP: ip.Unmap().AsSlice()}, peer: peer}
		s.mu.Lock()
		s.remote = addr
		s.client.originatingIP = peer
		s.mu.Unlock()
		s.live.SetRemote(addr.String())
		s.log.Info("client address named by a trusted peer (ID x-originating-ip)", "originating", addr.String())
	}
}

// trustedPeer says whether the connection comes from where a webmail may name its user's
// address: loopback (a process on this host, not a client named by a proxy) or
// auth.trusted_networks, the addresses the plaintext policy treats as loopback too.
func (s *session) trustedPeer() bool {
	if s.srv.opts.Auth == nil || s.remote == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(s.remote.String())
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	if _, named := s.remote.(interface{ Proxy() net.Addr }); addr.IsLoopback() && !named {
		return true
	}
	for _, p := range s.srv.opts.Auth.Plaintext.Trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// originatingAddr is a client address named by ID x-originating-ip. Its port is 0 (the
// webmail does not say it). Like internal/proxyproto.Addr it has Proxy, the address of the
// peer that named it, so that internal/auth and internal/connlimit count it even if it is loopback.
type originatingAddr struct {
	net.TCPAddr
	peer net.Addr
}

// Proxy is the trusted peer (the webmail) that named the address.
func (a *originatingAddr) Proxy() net.Addr { return a.peer }

// addrConn is a connection seen from another remote address: the plaintext policy asks
// the connection for its address.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// policyConn is the connection as the plaintext policy judges it: with the address a
// trusted webmail named, if it named one (a loopback webmail does not make its remote
// user "loopback").
func (s *session) policyConn() net.Conn {
	if s.client.originatingIP != nil {
		return addrConn{s.raw, s.remote}
	}
	return s.raw
}

// rebuildLog makes the session's logger anew from what the session knows now: the
// remote address (and the peer that named it), the client's ID, the user.
func (s *session) rebuildLog() {
	l := s.srv.log.With("remote", remoteString(s.remote))
	if s.client.originatingIP != nil {
		l = l.With("via", remoteString(s.client.originatingIP))
	}
	for _, kv := range [][2]string{{"client", s.client.name}, {"client_version", s.client.version}, {"client_os", s.client.os}} {
		if kv[1] != "" {
			l = l.With(kv[0], kv[1])
		}
	}
	if s.acct != nil {
		l = l.With("user", s.acct.Address)
	}
	s.log = l
}

// countClient counts the session, now logged in, in letterbox_imap_clients under the
// client its ID named ("none" without an ID before login).
func (s *session) countClient() {
	label := clientNone
	if s.client.sent {
		label = s.client.known
	}
	s.client.countedAs = label
	s.srv.opts.Metrics.IMAPClientLoggedIn(label)
}

// uncountClient takes the session out of letterbox_imap_clients (logout, UNAUTHENTICATE).
func (s *session) uncountClient() {
	if s.client.countedAs != "" {
		s.srv.opts.Metrics.IMAPClientLoggedOut(s.client.countedAs)
		s.client.countedAs = ""
	}
}
