package autoconfig

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"time"
)

// Microsoft Autodiscover "POX" (plain old XML) for Outlook: [MS-OXDSCLI] §2.2.3, with the
// Outlook response schema 2006a carrying POP3/IMAP/SMTP settings (Account/AccountType
// "email", Action "settings", one Protocol per server).

// Namespaces of the request and the response.
const (
	adRequestNS        = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	adResponseNS       = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	adOutlookNS        = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	maxAutodiscoverReq = 64 << 10
)

type adRequest struct {
	XMLName xml.Name `xml:"Autodiscover"`
	Request struct {
		EMailAddress             string `xml:"EMailAddress"`
		AcceptableResponseSchema string `xml:"AcceptableResponseSchema"`
	} `xml:"Request"`
}

type adResponse struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response any
}

type adOutlookResponse struct {
	XMLName xml.Name  `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
	User    adUser    `xml:"User"`
	Account adAccount `xml:"Account"`
}

type adUser struct {
	DisplayName string `xml:"DisplayName"`
}

type adAccount struct {
	AccountType string       `xml:"AccountType"`
	Action      string       `xml:"Action"`
	Protocol    []adProtocol `xml:"Protocol"`
}

type adProtocol struct {
	Type           string `xml:"Type"`
	Server         string `xml:"Server"`
	Port           int    `xml:"Port"`
	LoginName      string `xml:"LoginName"`
	DomainRequired string `xml:"DomainRequired"`
	SPA            string `xml:"SPA"`
	SSL            string `xml:"SSL"`
	// Encryption (None, SSL, TLS) overrides SSL in Outlook 2007 and later: TLS is STARTTLS.
	Encryption   string `xml:"Encryption"`
	AuthRequired string `xml:"AuthRequired"`
}

type adErrorResponse struct {
	XMLName xml.Name `xml:"Response"`
	Error   adError  `xml:"Error"`
}

type adError struct {
	Time      string   `xml:"Time,attr"`
	ID        string   `xml:"Id,attr"`
	ErrorCode int      `xml:"ErrorCode"`
	Message   string   `xml:"Message"`
	DebugData struct{} `xml:"DebugData"`
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// autodiscover answers a POX request. A request that cannot be answered gets the
// protocol's error response (ErrorCode 600 "Invalid Request"), with HTTP 400.
func (h *Handler) autodiscover(w http.ResponseWriter, r *http.Request) {
	var req adRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAutodiscoverReq))
	if err == nil {
		err = xml.Unmarshal(body, &req)
	}
	if err == nil && req.XMLName.Space != adRequestNS {
		err = errors.New("not an Outlook Autodiscover request")
	}
	if s := req.Request.AcceptableResponseSchema; err == nil && s != "" && s != adOutlookNS {
		err = errors.New("response schema not supported: " + s)
	}
	var address string
	if err == nil {
		address, _, err = Address(req.Request.EMailAddress)
	}
	if err != nil {
		h.log.Debug("autodiscover: bad request", "err", err)
		h.autodiscoverError(w)
		return
	}

	acct := adAccount{AccountType: "email", Action: "settings"}
	add := func(typ string, e Endpoint) {
		p := adProtocol{
			Type: typ, Server: e.Host, Port: e.Port, LoginName: address,
			DomainRequired: "off", SPA: "off", SSL: onOff(e.TLS != TLSNone), AuthRequired: "on",
		}
		switch e.TLS {
		case TLSImplicit:
			p.Encryption = "SSL"
		case TLSStartTLS:
			p.Encryption = "TLS"
		default:
			p.Encryption = "None"
		}
		acct.Protocol = append(acct.Protocol, p)
	}
	for _, n := range h.incoming() {
		add(map[string]string{"imap": "IMAP", "pop3": "POP3"}[n.proto], n.Endpoint)
	}
	if h.set.SMTP.offered() {
		add("SMTP", h.set.SMTP)
	}
	out, err := marshal(adResponse{Response: adOutlookResponse{User: adUser{DisplayName: address}, Account: acct}})
	if err != nil {
		h.log.Error("autodiscover", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	noStore(w, "application/xml; charset=utf-8")
	w.Write(out)
}

func (h *Handler) autodiscoverError(w http.ResponseWriter) {
	now := time.Now().UTC()
	out, err := marshal(adResponse{Response: adErrorResponse{Error: adError{
		Time: now.Format("15:04:05.0000000"), ID: itoa(int(now.UnixNano() & 0x7fffffff)),
		ErrorCode: 600, Message: "Invalid Request",
	}}})
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	noStore(w, "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	w.Write(out)
}
