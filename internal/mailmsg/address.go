package mailmsg

import "strings"

// Address lists for the ENVELOPE (RFC 3501 §7.4.2), parsed as RFC 5322 §3.4 writes them
// (and RFC 822's obsolete source routes, RFC 5322 §4.4), without giving up on what is
// malformed:
//
//   - A group ("name: a@x, b@y;") becomes its start marker, an Address with only Mailbox
//     (the group's name: NIL host on the wire), its members, and an end marker, the zero
//     Address (all NIL), as RFC 3501 §7.4.2 asks. "name:;" gives the two markers alone.
//   - Comments are not part of an address: "user (c) @ (c) domain" is user@domain. The
//     comment after a bare addr-spec ("user@domain (Real Name)") is its display name, as
//     Dovecot and most clients take it.
//   - A source route ("<@route1,@route2:user@domain>") is kept in Address.Route.
//   - A mailbox without a domain gets MISSING_DOMAIN, one without a local part
//     MISSING_MAILBOX (as Dovecot spells them).

// addrToken is one lexical item of an address list.
type addrToken struct {
	kind byte   // 'a' atom (or domain literal), 'q' quoted string, 'c' comment, or the special itself
	text string // atom, quoted or comment text (unescaped)
}

// addressSpecials are RFC 5322 §3.2.3 specials the parser acts on.
const addressSpecials = "<>@,;:."

// tokenizeAddresses splits a header value into atoms, quoted strings, comments and
// specials. It never fails: an unterminated quote or comment runs to the end.
func tokenizeAddresses(v string) []addrToken {
	var out []addrToken
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '"':
			var b strings.Builder
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				if v[i] != '\r' && v[i] != '\n' {
					b.WriteByte(v[i])
				}
			}
			i++
			out = append(out, addrToken{kind: 'q', text: b.String()})
		case c == '(':
			var b strings.Builder
			depth := 1
			for i++; i < len(v) && depth > 0; i++ {
				switch v[i] {
				case '\\':
					if i+1 < len(v) {
						i++
						b.WriteByte(v[i])
					}
					continue
				case '(':
					depth++
				case ')':
					depth--
					if depth == 0 {
						continue
					}
				}
				b.WriteByte(v[i])
			}
			out = append(out, addrToken{kind: 'c', text: strings.TrimSpace(b.String())})
		case c == '[':
			j := strings.IndexByte(v[i:], ']')
			if j < 0 {
				j = len(v) - i - 1
			}
			out = append(out, addrToken{kind: 'a', text: v[i : i+j+1]})
			i += j + 1
		case strings.IndexByte(addressSpecials, c) >= 0:
			out = append(out, addrToken{kind: c})
			i++
		default:
			j := i
			for j < len(v) && !strings.ContainsRune(" \t\r\n\"()[]"+addressSpecials, rune(v[j])) {
				j++
			}
			if j == i { // a stray special such as "\" or "]"
				j++
			}
			out = append(out, addrToken{kind: 'a', text: v[i:j]})
			i = j
		}
	}
	return out
}

// parseAddressList parses an address list (RFC 5322 §3.4) into envelope addresses, group
// markers included.
func parseAddressList(v string) []Address {
	toks := tokenizeAddresses(v)
	var out []Address
	var words []addrToken // the phrase or bare addr-spec since the last boundary
	comment := ""         // the last comment outside angle brackets, a bare address's name
	inGroup := false
	// bare ends a mailbox written without angle brackets: words are its addr-spec.
	bare := func() {
		if len(words) > 0 {
			local, host := splitAddrSpec(words)
			out = append(out, mailboxAddress(decodeText(comment), "", local, host))
		}
		words, comment = nil, ""
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case 'c':
			comment = t.text
		case '<':
			// name-addr: [display-name] "<" [route ":"] addr-spec ">"
			var route, spec []addrToken
			j := i + 1
			if j < len(toks) && toks[j].kind == '@' {
				k := j
				for k < len(toks) && toks[k].kind != ':' && toks[k].kind != '>' {
					k++
				}
				if k < len(toks) && toks[k].kind == ':' {
					route, j = toks[j:k], k+1
				}
			}
			for ; j < len(toks) && toks[j].kind != '>'; j++ {
				if toks[j].kind != 'c' {
					spec = append(spec, toks[j])
				}
			}
			i = j
			local, host := splitAddrSpec(spec)
			out = append(out, mailboxAddress(decodeText(phrase(words)), joinTokens(route), local, host))
			words, comment = nil, ""
		case ':':
			if inGroup { // not a group in a group: part of the address
				words = append(words, addrToken{kind: 'a', text: ":"})
				continue
			}
			// RFC 5322 §3.4: group = display-name ":" [group-list] ";"
			out = append(out, Address{Mailbox: decodeText(phrase(words))})
			words, comment, inGroup = nil, "", true
		case ';':
			bare()
			if inGroup {
				out = append(out, Address{})
				inGroup = false
			}
		case ',':
			bare()
		default:
			words = append(words, t)
		}
	}
	bare()
	if inGroup { // an unterminated group still ends
		out = append(out, Address{})
	}
	return out
}

// mailboxAddress is one mailbox's envelope address, with the placeholders for a missing
// local part or domain.
func mailboxAddress(name, route, local, host string) Address {
	if host == "" {
		host = missingDomain
	}
	if local == "" {
		local = missingMailbox
	}
	return Address{Name: strings.ToValidUTF8(name, "\uFFFD"), Route: route,
		Mailbox: strings.ToValidUTF8(local, "\uFFFD"), Host: strings.ToValidUTF8(host, "\uFFFD")}
}

// splitAddrSpec splits addr-spec tokens at their last "@" into local part and domain.
func splitAddrSpec(toks []addrToken) (local, host string) {
	at := -1
	for i, t := range toks {
		if t.kind == '@' {
			at = i
		}
	}
	if at < 0 {
		return joinTokens(toks), ""
	}
	return joinTokens(toks[:at]), joinTokens(toks[at+1:])
}

// joinTokens writes tokens back without the spaces between them (a local part, a domain,
// a route).
func joinTokens(toks []addrToken) string {
	var b strings.Builder
	for _, t := range toks {
		switch t.kind {
		case 'a', 'q':
			b.WriteString(t.text)
		case 'c':
		default:
			b.WriteByte(t.kind)
		}
	}
	return b.String()
}

// phrase writes a display name's words with single spaces ("J. Smith" stays so).
func phrase(toks []addrToken) string {
	var b strings.Builder
	for _, t := range toks {
		switch t.kind {
		case 'a', 'q':
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(t.text)
		case 'c':
		default:
			b.WriteByte(t.kind)
		}
	}
	return b.String()
}

// FormatAddresses writes an address list for people: "Alice <alice@example.org>, bob@x".
// A group (RFC 5322 §3.4) shows as its start marker, the group's name, its members and an
// empty entry for its end marker.
func FormatAddresses(list []Address) string {
	parts := make([]string, 0, len(list))
	for _, a := range list {
		addr := a.Mailbox
		if a.Host != "" {
			addr += "@" + a.Host
		}
		if a.Name != "" {
			addr = a.Name + " <" + addr + ">"
		}
		parts = append(parts, addr)
	}
	return strings.Join(parts, ", ")
}
