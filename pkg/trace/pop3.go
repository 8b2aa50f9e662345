package trace

import (
	"bytes"
	"strings"
)

// pop3Filter follows a POP3 dialogue (RFC 1939, RFC 2449, RFC 5034).
type pop3Filter struct {
	greeted bool
	pending []pop3Command // commands awaiting their status line (RFC 2449 PIPELINING)
	sasl    bool          // an AUTH exchange is running: client lines are SASL responses
}

type pop3Command struct {
	name   string // upper case
	hasArg bool
}

// reset forgets the dialogue after STLS (RFC 2595 §4); there is no new greeting.
func (f *pop3Filter) reset() { f.pending, f.sasl = nil, false }

func (f *pop3Filter) client(l wireLine, _ bool) verdict {
	if f.sasl {
		// RFC 5034 §4: a base64 SASL response, or "*" cancelling the exchange.
		if string(l.text) == "*" {
			return show(l.text)
		}
		return show([]byte(masked))
	}
	kw, arg, hasArg := bytes.Cut(l.text, []byte(" "))
	name := strings.ToUpper(string(kw))
	f.pending = append(f.pending, pop3Command{name, hasArg && len(arg) > 0})
	switch name {
	case "PASS": // RFC 1939 §7
		return show(append(kw, " "+masked...))
	case "APOP": // RFC 1939 §7: APOP name digest
		user, _, _ := bytes.Cut(arg, []byte(" "))
		return show(append(append(kw, ' '), append(user, " "+masked...)...))
	case "AUTH": // RFC 5034 §4: AUTH mechanism [initial-response]
		mech, _, hasIR := bytes.Cut(arg, []byte(" "))
		if len(mech) == 0 {
			break // the list of mechanisms
		}
		f.sasl = true
		if hasIR || l.cut > 0 {
			return show(append(append(kw, ' '), append(mech, " "+masked...)...))
		}
	}
	return show(l.text)
}

// pop3MultiLine says whether a positive answer to a command is multi-line: always, or only
// without an argument (RFC 1939 §5, §7; RFC 2449 §5; RFC 5034 §4).
var pop3MultiLine = map[string]struct{ always, withoutArg bool }{
	"CAPA": {always: true}, "RETR": {always: true}, "TOP": {always: true},
	"LIST": {withoutArg: true}, "UIDL": {withoutArg: true}, "AUTH": {withoutArg: true},
}

func (f *pop3Filter) server(l wireLine, _ bool) verdict {
	v := show(l.text)
	if f.sasl && (bytes.HasPrefix(l.text, []byte("+ ")) || string(l.text) == "+") {
		return v // a SASL challenge
	}
	ok := bytes.HasPrefix(l.text, []byte("+OK"))
	if !ok && !bytes.HasPrefix(l.text, []byte("-ERR")) {
		return v
	}
	if !f.greeted {
		f.greeted = true // RFC 1939 §4: the greeting answers no command
		return v
	}
	f.sasl = false
	if len(f.pending) == 0 {
		return v
	}
	cmd := f.pending[0]
	f.pending = f.pending[1:]
	if !ok {
		return v
	}
	if m := pop3MultiLine[cmd.name]; m.always || (m.withoutArg && !cmd.hasArg) {
		v.body = fromServer
	}
	v.tls = cmd.name == "STLS" // RFC 2595 §4
	return v
}
