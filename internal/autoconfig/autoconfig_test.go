package autoconfig

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

var full = Settings{
	IMAP: Endpoint{"imap.example.com", 993, TLSImplicit},
	POP3: Endpoint{"pop.example.com", 110, TLSStartTLS},
	SMTP: Endpoint{"smtp.example.com", 587, TLSStartTLS},
}

var noSMTP = Settings{
	IMAP: Endpoint{"mail.example.com", 143, TLSNone},
	POP3: Endpoint{"mail.example.com", 995, TLSImplicit},
}

func serve(t *testing.T, s Settings) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	New(s).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// Mozilla's config-v1.1 schema, as a client reads it.
type clientConfig struct {
	XMLName       xml.Name `xml:"clientConfig"`
	Version       string   `xml:"version,attr"`
	EmailProvider struct {
		ID             string   `xml:"id,attr"`
		Domain         []string `xml:"domain"`
		DisplayName    string   `xml:"displayName"`
		IncomingServer []struct {
			Type           string `xml:"type,attr"`
			Hostname       string `xml:"hostname"`
			Port           int    `xml:"port"`
			SocketType     string `xml:"socketType"`
			Username       string `xml:"username"`
			Authentication string `xml:"authentication"`
		} `xml:"incomingServer"`
		OutgoingServer []struct {
			Type           string `xml:"type,attr"`
			Hostname       string `xml:"hostname"`
			Port           int    `xml:"port"`
			SocketType     string `xml:"socketType"`
			Username       string `xml:"username"`
			Authentication string `xml:"authentication"`
		} `xml:"outgoingServer"`
	} `xml:"emailProvider"`
}

func TestMozillaAutoconfig(t *testing.T) {
	for _, path := range []string{"/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"} {
		t.Run(path, func(t *testing.T) {
			srv := serve(t, full)
			resp, body := get(t, srv.URL+path+"?emailaddress="+url.QueryEscape("Alice@Example.COM"))
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
				t.Fatalf("status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var cc clientConfig
			if err := xml.Unmarshal(body, &cc); err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
			p := cc.EmailProvider
			if cc.Version != "1.1" || p.ID != "example.com" || !reflect.DeepEqual(p.Domain, []string{"example.com"}) {
				t.Errorf("version %q, provider %q, domains %q", cc.Version, p.ID, p.Domain)
			}
			type srvr struct {
				typ, host string
				port      int
				sock      string
			}
			var in []srvr
			for _, s := range p.IncomingServer {
				in = append(in, srvr{s.Type, s.Hostname, s.Port, s.SocketType})
				if s.Username != "%EMAILADDRESS%" || s.Authentication != "password-cleartext" {
					t.Errorf("%s: username %q, authentication %q", s.Type, s.Username, s.Authentication)
				}
			}
			want := []srvr{{"imap", "imap.example.com", 993, "SSL"}, {"pop3", "pop.example.com", 110, "STARTTLS"}}
			if !reflect.DeepEqual(in, want) {
				t.Errorf("incoming = %v, want %v (IMAP first)", in, want)
			}
			if len(p.OutgoingServer) != 1 {
				t.Fatalf("outgoing = %+v, want one", p.OutgoingServer)
			}
			o := p.OutgoingServer[0]
			if o.Type != "smtp" || o.Hostname != "smtp.example.com" || o.Port != 587 || o.SocketType != "STARTTLS" ||
				o.Username != "%EMAILADDRESS%" || o.Authentication != "password-cleartext" {
				t.Errorf("outgoing = %+v", o)
			}
		})
	}
}

func TestMozillaWithoutSMTPOrAddress(t *testing.T) {
	srv := serve(t, noSMTP)
	req, _ := http.NewRequest("GET", srv.URL+"/.well-known/autoconfig/mail/config-v1.1.xml", nil)
	req.Host = "autoconfig.example.org"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var cc clientConfig
	if err := xml.Unmarshal(body, &cc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v\n%s", resp.StatusCode, err, body)
	}
	if cc.EmailProvider.ID != "example.org" {
		t.Errorf("provider id %q, want the domain autoconfig.example.org serves", cc.EmailProvider.ID)
	}
	if len(cc.EmailProvider.OutgoingServer) != 0 || bytes.Contains(body, []byte("outgoingServer")) {
		t.Errorf("outgoingServer listed without public.smtp.host:\n%s", body)
	}
	in := cc.EmailProvider.IncomingServer
	if len(in) != 2 || in[0].Type != "imap" || in[0].SocketType != "plain" || in[1].Type != "pop3" || in[1].SocketType != "SSL" {
		t.Errorf("incoming = %+v", in)
	}
}

func TestBadAddressesAreRefused(t *testing.T) {
	srv := serve(t, full)
	for _, addr := range []string{"", "nobody", "@example.com", "a@", "a@b@c", "<a@example.com>",
		"a b@example.com", "a@exa mple.com", "a@-example.com", "a..b@example.com", "a@example.com\r\nX: y",
		"\"q\"@example.com", strings.Repeat("a", 65) + "@example.com", "a@" + strings.Repeat("x", 64) + ".com"} {
		for _, path := range []string{"/mail/config-v1.1.xml", "/apple/mail.mobileconfig"} {
			resp, body := get(t, srv.URL+path+"?emailaddress="+url.QueryEscape(addr))
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s %q: status %d, want 400: %s", path, addr, resp.StatusCode, body)
			}
		}
		resp, body := postAutodiscover(t, srv, autodiscoverRequest(addr))
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("<ErrorCode>600</ErrorCode>")) {
			t.Errorf("autodiscover %q: status %d: %s", addr, resp.StatusCode, body)
		}
	}
}

func TestAddress(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com":                "alice@example.com",
		" Bob.Smith+tag@Mail.EXAMPLE.org ": "Bob.Smith+tag@mail.example.org",
		"demo@localhost":                   "demo@localhost",
		"o'neil@ex-ample.co.uk":            "o'neil@ex-ample.co.uk",
	} {
		got, _, err := Address(in)
		if err != nil || got != want {
			t.Errorf("Address(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// The Autodiscover POX response schema (responseschema/2006 with outlook 2006a).
type autodiscoverResponse struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName xml.Name `xml:"Response"`
		Account struct {
			AccountType string `xml:"AccountType"`
			Action      string `xml:"Action"`
			Protocol    []struct {
				Type       string `xml:"Type"`
				Server     string `xml:"Server"`
				Port       int    `xml:"Port"`
				SSL        string `xml:"SSL"`
				Encryption string `xml:"Encryption"`
				LoginName  string `xml:"LoginName"`
				SPA        string `xml:"SPA"`
			} `xml:"Protocol"`
		} `xml:"Account"`
	} `xml:"Response"`
}

func autodiscoverRequest(addr string) string {
	var esc bytes.Buffer
	xml.EscapeText(&esc, []byte(addr))
	return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>` + esc.String() + `</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
}

func postAutodiscover(t *testing.T, srv *httptest.Server, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(srv.URL+"/autodiscover/autodiscover.xml", "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func TestAutodiscover(t *testing.T) {
	srv := serve(t, full)
	for _, path := range []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"} {
		resp, err := http.Post(srv.URL+path, "text/xml", strings.NewReader(autodiscoverRequest("carol@example.com")))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", path, resp.StatusCode, body)
		}
		var ad autodiscoverResponse
		if err := xml.Unmarshal(body, &ad); err != nil {
			t.Fatalf("%v\n%s", err, body)
		}
		if !bytes.Contains(body, []byte(`<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">`)) {
			t.Errorf("Response is not in the outlook 2006a namespace:\n%s", body)
		}
		a := ad.Response.Account
		if a.AccountType != "email" || a.Action != "settings" {
			t.Errorf("AccountType %q, Action %q", a.AccountType, a.Action)
		}
		var got []string
		for _, p := range a.Protocol {
			got = append(got, fmt.Sprintf("%s %s:%d SSL=%s Encryption=%s login=%s SPA=%s", p.Type, p.Server, p.Port, p.SSL, p.Encryption, p.LoginName, p.SPA))
		}
		want := []string{
			"IMAP imap.example.com:993 SSL=on Encryption=SSL login=carol@example.com SPA=off",
			"POP3 pop.example.com:110 SSL=on Encryption=TLS login=carol@example.com SPA=off",
			"SMTP smtp.example.com:587 SSL=on Encryption=TLS login=carol@example.com SPA=off",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("protocols:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	// Without SMTP, and a plaintext IMAP: SSL off.
	srv2 := serve(t, noSMTP)
	_, body := postAutodiscover(t, srv2, autodiscoverRequest("d@example.com"))
	var ad autodiscoverResponse
	if err := xml.Unmarshal(body, &ad); err != nil {
		t.Fatal(err)
	}
	p := ad.Response.Account.Protocol
	if len(p) != 2 || p[0].Type != "IMAP" || p[0].SSL != "off" || p[0].Encryption != "None" || p[1].Type != "POP3" {
		t.Errorf("protocols = %+v", p)
	}

	// Not an Outlook request, or a schema we do not serve (ActiveSync).
	for _, bad := range []string{"not xml", `<Autodiscover><Request><EMailAddress>a@example.com</EMailAddress></Request></Autodiscover>`,
		strings.Replace(autodiscoverRequest("a@example.com"), "outlook/responseschema/2006a", "mobilesync/responseschema/2006", 1)} {
		resp, body := postAutodiscover(t, srv, bad)
		if resp.StatusCode != 400 || !bytes.Contains(body, []byte("Invalid Request")) {
			t.Errorf("%q: status %d: %s", bad, resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, srv.URL+"/autodiscover/autodiscover.xml"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET autodiscover: status %d, want 405", resp.StatusCode)
	}
}

// plist is a tiny XML property list reader: dict, array, string, integer, true, false.
func readPlist(t *testing.T, data []byte) any {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var value func(start xml.StartElement) any
	text := func() string {
		var s string
		for {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			switch x := tok.(type) {
			case xml.CharData:
				s += string(x)
			case xml.EndElement:
				return s
			default:
				t.Fatalf("unexpected %T in a plist scalar", tok)
			}
		}
	}
	next := func() (xml.StartElement, bool) {
		for {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			switch x := tok.(type) {
			case xml.StartElement:
				return x, true
			case xml.EndElement:
				return xml.StartElement{}, false
			}
		}
	}
	value = func(start xml.StartElement) any {
		switch start.Name.Local {
		case "string":
			return text()
		case "integer":
			n, err := strconv.Atoi(text())
			if err != nil {
				t.Fatal(err)
			}
			return n
		case "true", "false":
			text()
			return start.Name.Local == "true"
		case "array":
			var out []any
			for {
				el, ok := next()
				if !ok {
					return out
				}
				out = append(out, value(el))
			}
		case "dict":
			out := map[string]any{}
			for {
				el, ok := next()
				if !ok {
					return out
				}
				if el.Name.Local != "key" {
					t.Fatalf("dict: want key, got %s", el.Name.Local)
				}
				k := text()
				v, ok := next()
				if !ok {
					t.Fatalf("dict: key %q without a value", k)
				}
				out[k] = value(v)
			}
		}
		t.Fatalf("plist: unknown element %s", start.Name.Local)
		return nil
	}
	root, ok := next()
	if !ok || root.Name.Local != "plist" {
		t.Fatalf("not a plist: %s", data)
	}
	el, _ := next()
	return value(el)
}

func TestAppleProfile(t *testing.T) {
	srv := serve(t, full)
	resp, body := get(t, srv.URL+"/apple/mail.mobileconfig?emailaddress=erin%40example.com")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if !bytes.Contains(body, []byte(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"`)) {
		t.Errorf("no plist DOCTYPE:\n%s", body)
	}
	profile := readPlist(t, body).(map[string]any)
	if profile["PayloadType"] != "Configuration" || profile["PayloadVersion"] != 1 {
		t.Errorf("profile = %v", profile)
	}
	content := profile["PayloadContent"].([]any)
	if len(content) != 1 {
		t.Fatalf("payloads = %v", content)
	}
	mail := content[0].(map[string]any)
	want := map[string]any{
		"PayloadType":                      "com.apple.mail.managed",
		"EmailAccountType":                 "EmailTypeIMAP",
		"EmailAddress":                     "erin@example.com",
		"IncomingMailServerHostName":       "imap.example.com",
		"IncomingMailServerPortNumber":     993,
		"IncomingMailServerUseSSL":         true,
		"IncomingMailServerUsername":       "erin@example.com",
		"IncomingMailServerAuthentication": "EmailAuthPassword",
		"OutgoingMailServerHostName":       "smtp.example.com",
		"OutgoingMailServerPortNumber":     587,
		"OutgoingMailServerUseSSL":         true,
	}
	for k, v := range want {
		if mail[k] != v {
			t.Errorf("%s = %v, want %v", k, mail[k], v)
		}
	}
	for _, p := range []map[string]any{profile, mail} {
		if u, _ := p["PayloadUUID"].(string); len(u) != 36 || u[14] != '5' {
			t.Errorf("PayloadUUID %q is not a version 5 UUID", u)
		}
	}
	// The same address gets the same profile (re-installing replaces it).
	_, again := get(t, srv.URL+"/apple/mail.mobileconfig?emailaddress=erin%40example.com")
	if !bytes.Equal(body, again) {
		t.Error("two downloads of one address's profile differ")
	}

	// Python's plistlib, an independent reader, agrees where it exists.
	if py, err := exec.LookPath("python3"); err == nil {
		cmd := exec.Command(py, "-c", "import json,plistlib,sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("plistlib: %v", err)
		}
		var fromPy map[string]any
		if err := json.Unmarshal(out, &fromPy); err != nil {
			t.Fatal(err)
		}
		pm := fromPy["PayloadContent"].([]any)[0].(map[string]any)
		if pm["IncomingMailServerHostName"] != "imap.example.com" || pm["IncomingMailServerPortNumber"] != float64(993) {
			t.Errorf("plistlib reads %v", pm)
		}
	}
}

func TestAppleProfileWithoutIMAPOrSMTP(t *testing.T) {
	srv := serve(t, Settings{POP3: Endpoint{"pop.example.com", 995, TLSImplicit}})
	_, body := get(t, srv.URL+"/apple/mail.mobileconfig?emailaddress=f%40example.com")
	mail := readPlist(t, body).(map[string]any)["PayloadContent"].([]any)[0].(map[string]any)
	if mail["EmailAccountType"] != "EmailTypePOP" || mail["IncomingMailServerPortNumber"] != 995 {
		t.Errorf("mail payload = %v", mail)
	}
	if _, ok := mail["OutgoingMailServerHostName"]; ok {
		t.Errorf("outgoing server listed without one configured: %v", mail)
	}

	none := serve(t, Settings{})
	if resp, _ := get(t, none.URL+"/apple/mail.mobileconfig?emailaddress=f%40example.com"); resp.StatusCode != 404 {
		t.Errorf("no incoming server: status %d, want 404", resp.StatusCode)
	}
}

// Markup in what ends up in a document is escaped, never interpreted.
func TestEscaping(t *testing.T) {
	srv := serve(t, Settings{IMAP: Endpoint{"imap.example.com", 993, TLSImplicit}, DisplayName: `A&B <Mail> "Co"`})
	_, body := get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress="+url.QueryEscape("o'k&x@example.com"))
	var cc clientConfig
	if err := xml.Unmarshal(body, &cc); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if cc.EmailProvider.DisplayName != `A&B <Mail> "Co"` {
		t.Errorf("displayName = %q", cc.EmailProvider.DisplayName)
	}
	_, body = get(t, srv.URL+"/apple/mail.mobileconfig?emailaddress="+url.QueryEscape("o'k&x@example.com"))
	mail := readPlist(t, body).(map[string]any)["PayloadContent"].([]any)[0].(map[string]any)
	if mail["EmailAddress"] != "o'k&x@example.com" {
		t.Errorf("EmailAddress = %q", mail["EmailAddress"])
	}
	_, body = postAutodiscover(t, srv, autodiscoverRequest("o'k&x@example.com"))
	var ad autodiscoverResponse
	if err := xml.Unmarshal(body, &ad); err != nil || ad.Response.Account.Protocol[0].LoginName != "o'k&x@example.com" {
		t.Errorf("autodiscover: %v\n%s", err, body)
	}
}
