// Package localhttp decides whether an HTTP request that carries no token may still be
// served because it comes from this machine: the rule the test API (internal/api) and the web
// inspector (internal/inspector) share when api.token is not set. docs/security.md says what it
// protects against.
package localhttp

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Check reports, as nil, whether a request without a token comes from this machine in
// a way no web page elsewhere can fake: from loopback, not relayed by a proxy on this host
// (Forwarded, X-Forwarded-For, X-Real-IP), and addressed to an IP address or to localhost.
// The last check stops DNS rebinding: a page from a hostile site whose name the attacker
// re-points at 127.0.0.1 reaches the server from loopback, but under that site's name.
func Check(r *http.Request) error {
	for _, proxy := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if r.Header.Get(proxy) != "" {
			return errors.New("not served through a proxy unless api.token is set")
		}
	}
	if !isLoopback(r.RemoteAddr) {
		return errors.New("loopback clients only, unless api.token is set")
	}
	if !localHost(r.Host) {
		return errors.New("address the server as localhost or by IP address (http://127.0.0.1:PORT/)")
	}
	return nil
}

// localHost reports whether a Host header names the server in a way no other site can
// claim: an IP address, or localhost (RFC 6761 §6.3: never resolved by DNS).
func localHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.ToLower(host)
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// isLoopback reports whether a request's RemoteAddr is on loopback.
func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
