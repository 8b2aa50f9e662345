package imap

import (
	"strings"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// fetchExt are the FETCH items of SAVEDATE (RFC 8514), OBJECTID (RFC 8474) and PREVIEW
// (RFC 8970), which go-imap's FetchOptions has no fields for.
type fetchExt struct {
	saveDate, emailID, threadID bool
	// preview: PREVIEW, with or without (LAZY). The store computes a preview at delivery,
	// and for a message stored before it did, when it is first asked for, so LAZY is
	// answered at once with the text, never NIL (RFC 8970 §3.1 lets the server choose).
	preview bool
}

// fetchAttExt reads the FETCH items above (the name already read); ok is false for a name
// it does not know.
func (r *commandReader) fetchAttExt(a *fetchArgs, name string) (ok bool, err error) {
	switch name {
	case "SAVEDATE": // RFC 8514, formal syntax: fetch-att =/ "SAVEDATE"
		a.ext.saveDate = true
	case "EMAILID": // RFC 8474, formal syntax: fetch-att =/ "EMAILID" / "THREADID"
		a.ext.emailID = true
	case "THREADID":
		a.ext.threadID = true
	case "PREVIEW":
		// RFC 8970, formal syntax: fetch-att =/ "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"];
		// preview-mod = "LAZY". A "(" after the space may also open FETCH's modifiers
		// (CHANGEDSINCE) when PREVIEW is the only item, so only "(LAZY" is taken here.
		a.ext.preview = true
		if r.peekLazy() {
			if err := r.sp(); err != nil {
				return true, err
			}
			return true, r.list(false, func() error {
				m, err := r.keyword()
				if err == nil && m != "LAZY" {
					err = badSyntax("Unknown PREVIEW modifier %s", truncate(m, 32))
				}
				return err
			})
		}
	default:
		return false, nil
	}
	return true, nil
}

// writeFetchExt writes the items of a.ext for message m (after the RFC 3501 items).
func writeFetchExt(rw *fetchResponseWriter, a *fetchArgs, m *store.Metadata) {
	if a == nil {
		return
	}
	if a.ext.saveDate {
		// RFC 8514: NIL when the save date is not known (stored before the store kept it).
		if m.SaveDate.IsZero() {
			rw.item("SAVEDATE NIL")
		} else {
			rw.item("SAVEDATE ").dateTime(m.SaveDate.UTC())
		}
	}
	if a.ext.emailID {
		// RFC 8474 §5.1: EMAILID (objectid)
		rw.item("EMAILID (").raw(m.EmailID()).raw(")")
	}
	if a.ext.threadID {
		// RFC 8474 §5.2: THREADID (id), or NIL for a message the store has no thread of
		// (stored before it threaded).
		if id := m.ThreadID(); id == "" {
			rw.item("THREADID NIL")
		} else {
			rw.item("THREADID (").raw(id).raw(")")
		}
	}
	if a.ext.preview {
		// RFC 8970 §3.1: "" when the message has no text to preview.
		rw.item("PREVIEW ").string(m.Preview)
	}
}

// peekLazy tells whether " (LAZY" and then ")" or a space come next, without taking
// them. It looks one octet further only while what it saw matches, so it never waits for
// octets a complete command need not have: each prefix of " (LAZY)" leaves the command
// unfinished, so the client sends more.
func (r *commandReader) peekLazy() bool {
	const want = " (LAZY"
	for n := 1; n <= len(want)+1; n++ {
		p, err := r.br.Peek(n)
		if err != nil {
			return false
		}
		c := p[n-1]
		if n > len(want) {
			return c == ')' || c == ' '
		}
		if !strings.EqualFold(string(c), want[n-1:n]) {
			return false
		}
	}
	return false
}
