package trace

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// literalAtEnd is a literal announced at the end of a line: {n} (RFC 3501 §4.3), {n+}
// (RFC 7888 LITERAL+/-) or ~{n} (RFC 3516 BINARY).
var literalAtEnd = regexp.MustCompile(`~?\{([0-9]{1,18})(\+?)\}$`)

// literalSize reads the literal announced at the end of b: its size and whether it is
// synchronizing (the client waits for "+" before sending it).
func literalSize(b []byte) (n int64, sync, ok bool) {
	m := literalAtEnd.FindSubmatch(b)
	if m == nil {
		return 0, false, false
	}
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	return n, len(m[2]) == 0, err == nil
}

// imapFilter follows an IMAP dialogue (RFC 3501, RFC 9051).
type imapFilter struct {
	// The client command being read, across its literals.
	tag, cmd string
	tok      int  // its tokens so far
	cmdAt    int  // the index of its name: 1, or 0 when the client forgot the tag
	syncLit  bool // it announced a synchronizing literal, no "+" came yet

	sasl     string // tag of the AUTHENTICATE in progress: client lines are SASL responses
	starttls string // tag of the STARTTLS awaiting its answer
}

func (f *imapFilter) reset() { *f = imapFilter{} }

// secret reports whether token i of the current command is a credential: LOGIN's
// password (RFC 3501 §6.2.3) and AUTHENTICATE's initial response (RFC 4959).
func (f *imapFilter) secret(i int) bool {
	return i >= f.cmdAt+2 && isAuthCommand(f.cmd)
}

func isAuthCommand(name string) bool { return name == "LOGIN" || name == "AUTHENTICATE" }

func (f *imapFilter) client(l wireLine, cont bool) verdict {
	if !cont {
		f.tag, f.cmd, f.tok, f.cmdAt, f.syncLit = "", "", 0, 1, false
		if f.sasl != "" {
			// RFC 3501 §6.2.2: a line of the SASL exchange, or "*" cancelling it.
			if string(l.text) == "*" {
				return show(l.text)
			}
			return show([]byte(masked))
		}
	}
	n, sync, hasLit := literalSize(l.end())
	text := l.text
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); {
		if text[i] == ' ' {
			out = append(out, ' ')
			i++
			continue
		}
		j := tokenEnd(text, i)
		tok := text[i:j]
		switch f.tok {
		case 0:
			f.tag = string(tok)
			if name := strings.ToUpper(f.tag); isAuthCommand(name) {
				// No tag: imapserver will refuse the line, but its password is still one.
				f.cmd, f.cmdAt = name, 0
			}
		case 1:
			if f.cmdAt == 1 {
				f.cmd = strings.ToUpper(string(tok))
			}
		}
		isMarker := hasLit && l.cut == 0 && j == len(text)
		if f.secret(f.tok) && !isMarker {
			out = append(out, masked...)
		} else {
			out = append(out, tok...)
		}
		f.tok++
		i = j
	}
	v := show(out)
	if hasLit {
		// The literal is the last token (or lies beyond a cut line: then it is masked
		// whenever the command carries credentials at all).
		v.hasLiteral, v.literal = true, n
		v.mask = f.secret(f.tok-1) || (l.cut > 0 && isAuthCommand(f.cmd))
		f.syncLit = sync
		return v
	}
	switch f.cmd { // the command is complete
	case "AUTHENTICATE":
		if f.cmdAt == 1 { // an untagged one is refused at once
			f.sasl = f.tag
		}
	case "STARTTLS":
		f.starttls = f.tag
	}
	return v
}

// tokenEnd finds the end of the token starting at text[i]: a quoted string (RFC 3501
// §4.3, with its backslash escapes) or anything up to the next space.
func tokenEnd(text []byte, i int) int {
	if text[i] != '"' {
		if k := bytes.IndexByte(text[i:], ' '); k >= 0 {
			return i + k
		}
		return len(text)
	}
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(text)
}

func (f *imapFilter) server(l wireLine, cont bool) verdict {
	v := show(l.text)
	if !cont {
		tag, rest, _ := bytes.Cut(l.text, []byte(" "))
		switch t := string(tag); {
		case t == "+":
			f.syncLit = false // the client may send its literal now
		case t == "*" || t == "":
		case t == f.sasl:
			f.sasl = "" // the tagged answer ends the SASL exchange
		case t == f.starttls:
			f.starttls = ""
			v.tls = len(rest) >= 2 && strings.EqualFold(string(rest[:2]), "OK")
		case t == f.tag && f.syncLit:
			// RFC 3501 §7.5: the server refused the command instead of inviting its
			// literal, so the client will not send it.
			f.syncLit = false
			v.cancelClientLiteral = true
		}
	}
	if n, _, ok := literalSize(l.end()); ok {
		v.hasLiteral, v.literal = true, n
	}
	return v
}
