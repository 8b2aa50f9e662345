package threading

import "strings"

// normalizeMessageID returns the form under which two msg-ids are the same Message ID:
// RFC 5256 §4: "Implementations of the REFERENCES threading algorithm MUST normalize any
// msg-id in order to avoid false non-matches due to differences in quoting", so
// <"01KF8JCEOCBS0045PS"@xxx.yyy.com> and <01KF8JCEOCBS0045PS@xxx.yyy.com> are one. The
// angle brackets, surrounding whitespace and the quoting of a quoted-string local part
// are removed; the rest is compared case-sensitively ("Message ID comparisons are
// case-sensitive"). It returns "" for what is not a Message ID (nothing inside the
// brackets), and copies only when it unquotes.
func normalizeMessageID(id string) string {
	id = strings.TrimSpace(id)
	if len(id) >= 2 && id[0] == '<' && id[len(id)-1] == '>' {
		id = strings.TrimSpace(id[1 : len(id)-1])
	}
	if strings.IndexByte(id, '"') < 0 {
		return id
	}
	var b strings.Builder
	b.Grow(len(id))
	quoted := false
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted && i+1 < len(id):
			i++
			b.WriteByte(id[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
