package trace

import (
	"strconv"
	"strings"
)

// lmtpFilter follows an LMTP dialogue (RFC 2033 on RFC 5321).
type lmtpFilter struct {
	data     bool // DATA sent: a 354 answer starts the message (RFC 5321 §4.1.1.4)
	starttls bool // STARTTLS sent (RFC 3207)
	sasl     bool // AUTH sent (RFC 4954): client lines are SASL responses until the verdict
}

func (f *lmtpFilter) reset() { *f = lmtpFilter{} }

func (f *lmtpFilter) client(l wireLine, _ bool) verdict {
	if f.sasl {
		if string(l.text) == "*" {
			return show(l.text)
		}
		return show([]byte(masked))
	}
	fields := strings.Fields(string(l.text))
	name := ""
	if len(fields) > 0 {
		name = strings.ToUpper(fields[0])
	}
	f.data = name == "DATA" // any other command means DATA was refused or not sent
	switch name {
	case "STARTTLS":
		f.starttls = true
	case "AUTH": // RFC 4954 §4: AUTH mechanism [initial-response]
		if len(fields) > 1 {
			f.sasl = true
		}
		if len(fields) > 2 || (l.cut > 0 && len(fields) > 1) {
			return show([]byte(fields[0] + " " + fields[1] + " " + masked))
		}
	case "BDAT": // RFC 3030 §2: BDAT size [LAST], then size octets
		if len(fields) > 1 {
			if n, err := strconv.ParseInt(fields[1], 10, 64); err == nil && n >= 0 {
				v := show(l.text)
				v.hasLiteral, v.literal = true, n
				return v
			}
		}
	}
	return show(l.text)
}

func (f *lmtpFilter) server(l wireLine, _ bool) verdict {
	v := show(l.text)
	if len(l.text) < 3 || (len(l.text) > 3 && l.text[3] == '-') {
		return v // not the last line of a reply
	}
	code := string(l.text[:3])
	switch {
	case f.sasl:
		if code != "334" {
			f.sasl = false
		}
	case f.data && code == "354":
		f.data = false
		v.body = fromClient
	case f.starttls:
		f.starttls = false
		v.tls = code == "220"
	}
	return v
}
