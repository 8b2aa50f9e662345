package autoconfig

import (
	"bytes"
	"crypto/sha1"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
)

// Apple configuration profile (Configuration Profile Reference, "Mail" payload,
// PayloadType com.apple.mail.managed): an XML property list, unsigned. One mail payload,
// IMAP when offered (else POP3). The profile asks for no password: the device prompts.

const appleProfileType = "application/x-apple-aspen-config"

// plist values: the types a property list needs here.
type (
	plDict  []plEntry // in order
	plEntry struct {
		Key   string
		Value any // string, int, bool, plDict, []any
	}
)

func (h *Handler) apple(w http.ResponseWriter, r *http.Request) {
	address, domain, err := Address(r.URL.Query().Get("emailaddress"))
	if err != nil {
		http.Error(w, "emailaddress is missing or not an email address", http.StatusBadRequest)
		return
	}
	in := h.incoming()
	if len(in) == 0 {
		http.Error(w, "no incoming mail server is configured", http.StatusNotFound)
		return
	}
	body, err := h.appleProfile(address, domain, in[0])
	if err != nil {
		h.log.Error("autoconfig: apple profile", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	noStore(w, appleProfileType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+domain+`.mobileconfig"`)
	w.Write(body)
}

// appleProfile builds the profile for address with incoming server in.
func (h *Handler) appleProfile(address, domain string, in named) ([]byte, error) {
	// Reverse-DNS identifiers: the domain reversed, then the local part in letters and digits.
	ident := reverseDomain(domain) + ".letterbox.mail." + strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '-'
	}, address[:strings.LastIndexByte(address, '@')])
	accountType := "EmailTypeIMAP"
	if in.proto == "pop3" {
		accountType = "EmailTypePOP"
	}
	mail := plDict{
		{"EmailAccountDescription", address},
		{"EmailAccountName", address},
		{"EmailAccountType", accountType},
		{"EmailAddress", address},
		{"IncomingMailServerAuthentication", "EmailAuthPassword"},
		{"IncomingMailServerHostName", in.Host},
		{"IncomingMailServerPortNumber", in.Port},
		{"IncomingMailServerUseSSL", in.TLS != TLSNone},
		{"IncomingMailServerUsername", address},
	}
	if h.set.SMTP.offered() {
		mail = append(mail,
			plEntry{"OutgoingMailServerAuthentication", "EmailAuthPassword"},
			plEntry{"OutgoingMailServerHostName", h.set.SMTP.Host},
			plEntry{"OutgoingMailServerPortNumber", h.set.SMTP.Port},
			plEntry{"OutgoingMailServerUseSSL", h.set.SMTP.TLS != TLSNone},
			plEntry{"OutgoingMailServerUsername", address},
			plEntry{"OutgoingPasswordSameAsIncomingPassword", true},
		)
	}
	mail = append(mail,
		plEntry{"PayloadDescription", "Mail account " + address},
		plEntry{"PayloadDisplayName", address},
		plEntry{"PayloadIdentifier", ident + ".account"},
		plEntry{"PayloadType", "com.apple.mail.managed"},
		plEntry{"PayloadUUID", uuidFor("account:" + address)},
		plEntry{"PayloadVersion", 1},
	)
	profile := plDict{
		{"PayloadContent", []any{mail}},
		{"PayloadDescription", "Sets up " + address + " in Mail."},
		{"PayloadDisplayName", "Mail: " + address},
		{"PayloadIdentifier", ident},
		{"PayloadOrganization", h.displayName(domain)},
		{"PayloadRemovalDisallowed", false},
		{"PayloadType", "Configuration"},
		{"PayloadUUID", uuidFor("profile:" + address)},
		{"PayloadVersion", 1},
	}
	return encodePlist(profile)
}

// reverseDomain turns mail.example.com into com.example.mail.
func reverseDomain(d string) string {
	parts := strings.Split(d, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}

// uuidFor is a name-based UUID (RFC 9562 §5.5, version 5, SHA-1) in a namespace of our
// own: the same address always gets the same profile UUIDs.
func uuidFor(name string) string {
	ns := []byte("letterbox.autoconfig.apple/")
	sum := sha1.Sum(append(ns, name...))
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]))
}

// encodePlist writes an XML property list (Apple's PropertyList-1.0 DTD).
func encodePlist(root plDict) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	buf.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "\t")
	start := xml.StartElement{Name: xml.Name{Local: "plist"}, Attr: []xml.Attr{{Name: xml.Name{Local: "version"}, Value: "1.0"}}}
	if err := enc.EncodeToken(start); err != nil {
		return nil, err
	}
	if err := encodeValue(enc, root); err != nil {
		return nil, err
	}
	if err := enc.EncodeToken(start.End()); err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func encodeValue(enc *xml.Encoder, v any) error {
	el := func(name string, text string) error {
		return enc.EncodeElement(text, xml.StartElement{Name: xml.Name{Local: name}})
	}
	switch x := v.(type) {
	case string:
		return el("string", x)
	case int:
		return el("integer", itoa(x))
	case bool:
		name := "false"
		if x {
			name = "true"
		}
		s := xml.StartElement{Name: xml.Name{Local: name}}
		if err := enc.EncodeToken(s); err != nil {
			return err
		}
		return enc.EncodeToken(s.End())
	case plDict:
		s := xml.StartElement{Name: xml.Name{Local: "dict"}}
		if err := enc.EncodeToken(s); err != nil {
			return err
		}
		for _, e := range x {
			if err := el("key", e.Key); err != nil {
				return err
			}
			if err := encodeValue(enc, e.Value); err != nil {
				return err
			}
		}
		return enc.EncodeToken(s.End())
	case []any:
		s := xml.StartElement{Name: xml.Name{Local: "array"}}
		if err := enc.EncodeToken(s); err != nil {
			return err
		}
		for _, e := range x {
			if err := encodeValue(enc, e); err != nil {
				return err
			}
		}
		return enc.EncodeToken(s.End())
	}
	return fmt.Errorf("plist: cannot encode %T", v)
}
