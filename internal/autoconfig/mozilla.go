package autoconfig

import (
	"encoding/xml"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Mozilla's config-v1.1.xml (Thunderbird:Autoconfiguration:ConfigFileFormat).

type mozClientConfig struct {
	XMLName  xml.Name    `xml:"clientConfig"`
	Version  string      `xml:"version,attr"`
	Provider mozProvider `xml:"emailProvider"`
}

type mozProvider struct {
	ID               string      `xml:"id,attr"`
	Domain           []string    `xml:"domain"`
	DisplayName      string      `xml:"displayName"`
	DisplayShortName string      `xml:"displayShortName"`
	Incoming         []mozServer `xml:"incomingServer"`
	Outgoing         []mozServer `xml:"outgoingServer"`
}

type mozServer struct {
	Type           string   `xml:"type,attr"`
	Hostname       string   `xml:"hostname"`
	Port           int      `xml:"port"`
	SocketType     string   `xml:"socketType"` // SSL, STARTTLS, plain
	Username       string   `xml:"username"`
	Authentication string   `xml:"authentication"`
	POP3           *mozPOP3 `xml:"pop3,omitempty"`
}

// mozPOP3 is the pop3 element of a POP3 incomingServer: keep mail on the server, as an
// IMAP user of the same mailbox would expect.
type mozPOP3 struct {
	LeaveMessagesOnServer bool `xml:"leaveMessagesOnServer"`
}

func mozSocketType(tls string) string {
	switch tls {
	case TLSImplicit:
		return "SSL"
	case TLSStartTLS:
		return "STARTTLS"
	}
	return "plain"
}

// mozilla serves config-v1.1.xml. The emailaddress parameter is optional in the format;
// without it the domain is the one the client asked (autoconfig.<domain>).
func (h *Handler) mozilla(w http.ResponseWriter, r *http.Request) {
	var domain string
	if raw, ok := r.URL.Query()["emailaddress"]; ok {
		var err error
		if len(raw) != 1 {
			http.Error(w, "one emailaddress, please", http.StatusBadRequest)
			return
		}
		if _, domain, err = Address(raw[0]); err != nil {
			http.Error(w, "emailaddress is not an email address", http.StatusBadRequest)
			return
		}
	} else {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		domain = strings.TrimPrefix(strings.ToLower(host), "autoconfig.")
		if !hostname(domain) {
			http.Error(w, "emailaddress missing", http.StatusBadRequest)
			return
		}
	}
	body, err := h.mozillaXML(domain)
	if err != nil {
		h.log.Error("autoconfig: mozilla", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	noStore(w, "application/xml; charset=utf-8")
	w.Write(body)
}

func (h *Handler) mozillaXML(domain string) ([]byte, error) {
	name := h.displayName(domain)
	cc := mozClientConfig{Version: "1.1", Provider: mozProvider{
		ID: domain, Domain: []string{domain}, DisplayName: name, DisplayShortName: name,
	}}
	server := func(n named) mozServer {
		s := mozServer{
			Type: n.proto, Hostname: n.Host, Port: n.Port, SocketType: mozSocketType(n.TLS),
			Username: "%EMAILADDRESS%", Authentication: "password-cleartext",
		}
		if n.proto == "pop3" {
			s.POP3 = &mozPOP3{LeaveMessagesOnServer: true}
		}
		return s
	}
	for _, n := range h.incoming() {
		cc.Provider.Incoming = append(cc.Provider.Incoming, server(n))
	}
	if h.set.SMTP.offered() {
		cc.Provider.Outgoing = append(cc.Provider.Outgoing, server(named{"smtp", h.set.SMTP}))
	}
	return marshal(cc)
}

// marshal is xml.MarshalIndent with the XML declaration.
func marshal(v any) ([]byte, error) {
	out, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

func itoa(n int) string { return strconv.Itoa(n) }
