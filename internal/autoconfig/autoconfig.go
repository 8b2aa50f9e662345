// Package autoconfig tells mail clients how to reach Letterbox for the address a user
// typed, on the HTTP listener: Mozilla autoconfig (Thunderbird, K-9/Thunderbird for
// Android, Evolution, KMail), Microsoft Autodiscover "POX" (Outlook) and an Apple
// configuration profile (iOS and macOS Mail).
//
// Implementation notes:
//
//   - What is handed out comes from Settings only (config public.*): the server itself is
//     never probed. IMAP is listed before POP3 everywhere, so a client that takes the first
//     entry prefers IMAP; POP3 is listed too, so a user who wants POP3 can pick it.
//   - An outgoing (SMTP) server is listed only when one is configured: Letterbox has no
//     submission server of its own.
//   - Every address is validated (Address) before use and every document is produced by
//     encoding/xml, so nothing from the request reaches the output unescaped.
//   - Mozilla's format keeps the %EMAILADDRESS% placeholder for the user name (the client
//     substitutes it); Autodiscover and the Apple profile carry the address itself.
//   - Apple profiles are not signed; their UUIDs derive from the address, so downloading the
//     profile again replaces the installed one instead of adding a second account.
//
// Formats: Mozilla "config-v1.1.xml" (https://wiki.mozilla.org/Thunderbird:Autoconfiguration
// :ConfigFileFormat), Microsoft [MS-OXDSCLI] and "POX Autodiscover" for Outlook
// (responseschema/2006a), Apple "Mail" payload com.apple.mail.managed in the Configuration
// Profile Reference.
package autoconfig

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// TLS modes of an Endpoint.
const (
	TLSImplicit = "ssl"
	TLSStartTLS = "starttls"
	TLSNone     = "none"
)

// Endpoint is one server a client connects to; Host "" means not offered.
type Endpoint struct {
	Host string
	Port int
	TLS  string // TLSImplicit, TLSStartTLS or TLSNone
}

func (e Endpoint) offered() bool { return e.Host != "" && e.Port > 0 }

// Settings is what the handlers hand out.
type Settings struct {
	// IMAP, POP3 are the incoming servers; SMTP the outgoing one (Host "" for none).
	IMAP, POP3, SMTP Endpoint
	// DisplayName names the provider in clients; "" means the address's domain.
	DisplayName string
	Logger      *slog.Logger
}

// Handler serves the autoconfiguration documents.
type Handler struct {
	set Settings
	log *slog.Logger
}

// New returns a Handler for s.
func New(s Settings) *Handler {
	h := &Handler{set: s, log: s.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// Register mounts every route on mux:
//
//	GET  /mail/config-v1.1.xml?emailaddress=A                     Mozilla autoconfig
//	GET  /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=A  the same
//	POST /autodiscover/autodiscover.xml (and /Autodiscover/Autodiscover.xml)  Autodiscover
//	GET  /apple/mail.mobileconfig?emailaddress=A                  Apple profile
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /mail/config-v1.1.xml", h.mozilla)
	mux.HandleFunc("GET /.well-known/autoconfig/mail/config-v1.1.xml", h.mozilla)
	mux.HandleFunc("POST /autodiscover/autodiscover.xml", h.autodiscover)
	mux.HandleFunc("POST /Autodiscover/Autodiscover.xml", h.autodiscover)
	mux.HandleFunc("GET /apple/mail.mobileconfig", h.apple)
}

// ErrBadAddress is returned by Address for anything that is not a plain email address.
var ErrBadAddress = errors.New("autoconfig: not an email address")

// Address checks that s is a plain email address, local@domain (RFC 5321 §4.1.2 dot-atom
// local part in ASCII, §4.5.3.1 lengths; a domain of LDH labels, RFC 1123 §2.1), and
// returns it with the domain in lower case. No display names, comments, quoted local parts
// or address literals: a user typing an address into a mail client never needs them.
func Address(s string) (address, domain string, err error) {
	s = strings.TrimSpace(s)
	at := strings.LastIndexByte(s, '@')
	if len(s) > 254 || at < 1 || at == len(s)-1 {
		return "", "", ErrBadAddress
	}
	local, domain := s[:at], strings.ToLower(s[at+1:])
	if len(local) > 64 || !dotAtom(local) || !hostname(domain) {
		return "", "", ErrBadAddress
	}
	return local + "@" + domain, domain, nil
}

// dotAtom reports whether s is an RFC 5322 §3.2.3 dot-atom.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hostname reports whether s is a host name of letter-digit-hyphen labels.
func hostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func (h *Handler) displayName(domain string) string {
	if h.set.DisplayName != "" {
		return h.set.DisplayName
	}
	return domain
}

// incoming lists the offered incoming servers, IMAP first.
func (h *Handler) incoming() []named {
	var out []named
	if h.set.IMAP.offered() {
		out = append(out, named{"imap", h.set.IMAP})
	}
	if h.set.POP3.offered() {
		out = append(out, named{"pop3", h.set.POP3})
	}
	return out
}

type named struct {
	proto string // imap, pop3, smtp
	Endpoint
}

func noStore(w http.ResponseWriter, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}
