package localhttp

import (
	"net/http/httptest"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, remote, host, header string
		ok                         bool
	}{
		{"loopback by IP", "127.0.0.1:5000", "127.0.0.1:8080", "", true},
		{"IPv6 loopback", "[::1]:5000", "[::1]:8080", "", true},
		{"v4-mapped loopback", "[::ffff:127.0.0.1]:5000", "127.0.0.1:8080", "", true},
		{"localhost", "127.0.0.1:5000", "localhost:8080", "", true},
		{"a .localhost name", "127.0.0.1:5000", "inspector.localhost.", "", true},
		{"remote client", "203.0.113.7:5000", "127.0.0.1:8080", "", false},
		{"DNS rebinding", "127.0.0.1:5000", "evil.example:8080", "", false},
		{"relayed by a local proxy", "127.0.0.1:5000", "127.0.0.1:8080", "X-Forwarded-For", false},
		{"Forwarded", "127.0.0.1:5000", "127.0.0.1:8080", "Forwarded", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr, r.Host = tc.remote, tc.host
		if tc.header != "" {
			r.Header.Set(tc.header, "203.0.113.7")
		}
		if err := Check(r); (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
