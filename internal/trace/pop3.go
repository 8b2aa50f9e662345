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
	refused bool          // an AUTH that awaited SASL responses was just refused
}

// pop3Commands are the commands a POP3 client sends (RFC 1939, RFC 2449, RFC 2595,
// RFC 5034, RFC 6856): after a refused AUTH, a line that starts with none of them is taken
// for a SASL response the client sent anyway.
var pop3Commands = map[string]bool{
	"USER": true, "PASS": true, "APOP": true, "AUTH": true, "STAT": true, "LIST": true,
	"RETR": true, "DELE": true, "NOOP": true, "RSET": true, "QUIT": true, "TOP": true,
	"UIDL": true, "CAPA": true, "STLS": true, "UTF8": true, "LANG": true,
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
	if f.refused {
		// A client that did not wait for a challenge (or ignored the refusal) may send
		// its credentials as the next line; the server answers it as an unknown command,
		// but the trace must not show it.
		f.refused = false
		if !pop3Commands[name] {
			f.pending = append(f.pending, pop3Command{name: "", hasArg: false})
			return show([]byte(masked))
		}
	}
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
	inSASL := f.sasl
	f.sasl = false
	if len(f.pending) == 0 {
		return v
	}
	cmd := f.pending[0]
	f.pending = f.pending[1:]
	if !ok {
		f.refused = inSASL && cmd.name == "AUTH"
		return v
	}
	if m := pop3MultiLine[cmd.name]; m.always || (m.withoutArg && !cmd.hasArg) {
		v.body = fromServer
	}
	v.tls = cmd.name == "STLS" // RFC 2595 §4
	return v
}
