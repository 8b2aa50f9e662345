package imap

import (
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// delimiter is the hierarchy delimiter of every mailbox name (RFC 3501 §5.1.1).
const delimiter = '/'

// systemFlags are the flags every mailbox accepts, in their canonical case
// (RFC 3501 §2.3.2); \Recent is not stored, so it is not among them.
var systemFlags = []string{store.FlagAnswered, store.FlagFlagged, store.FlagDeleted, store.FlagSeen, store.FlagDraft}

// flagRecent is the session flag of RFC 3501 §2.3.2: never stored with a message, held by
// one session per message (selected.recent, store.ClaimRecent).
const flagRecent = `\Recent`

// canonicalFlags checks flags from a client and spells system flags canonically. \Recent
// cannot be stored and is dropped (RFC 3501 §2.3.2); an unknown system flag is an error.
func canonicalFlags(flags []imap.Flag) ([]string, error) {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		s := string(f)
		if !strings.HasPrefix(s, `\`) {
			out = append(out, s)
			continue
		}
		if strings.EqualFold(s, flagRecent) {
			continue
		}
		found := false
		for _, sys := range systemFlags {
			if strings.EqualFold(s, sys) {
				out = append(out, sys)
				found = true
				break
			}
		}
		if !found {
			return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown system flag " + s}
		}
	}
	return out, nil
}

// imapFlags converts stored flags (already canonical) for the wire.
func imapFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

func hasFlag(flags []string, flag string) bool {
	for _, f := range flags {
		if strings.EqualFold(f, flag) {
			return true
		}
	}
	return false
}

// sameFlags compares two flag lists as sets, case-insensitively.
func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, f := range a {
		if !hasFlag(b, f) {
			return false
		}
	}
	return true
}

// applyFlagOp computes what a client expects flags to be after its STORE.
func applyFlagOp(old []string, op store.FlagOp, flags []string) []string {
	var out []string
	switch op {
	case store.FlagsReplace:
		out = append(out, flags...)
	case store.FlagsAdd:
		out = append(out, old...)
		for _, f := range flags {
			if !hasFlag(out, f) {
				out = append(out, f)
			}
		}
	case store.FlagsRemove:
		for _, f := range old {
			if !hasFlag(flags, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// isKeyword reports whether a flag is a keyword rather than a system flag.
func isKeyword(flag string) bool { return !strings.HasPrefix(flag, `\`) }

// mailboxFlags is the FLAGS response of a mailbox: the system flags, then the keywords
// in use, sorted (RFC 3501 §7.2.6).
func mailboxFlags(keywords map[string]string) []imap.Flag {
	out := imapFlags(systemFlags)
	kw := make([]string, 0, len(keywords))
	for _, k := range keywords {
		kw = append(kw, k)
	}
	sort.Strings(kw)
	for _, k := range kw {
		out = append(out, imap.Flag(k))
	}
	return out
}

// imapEnvelope converts the delivery-time envelope (RFC 3501 §7.4.2). writeEnvelope adds the
// angle brackets around message ids and encodes non-ASCII text (RFC 2047).
func imapEnvelope(e *store.Envelope) *imap.Envelope {
	if e == nil {
		return nil
	}
	env := &imap.Envelope{
		Date:      e.Date,
		Subject:   e.Subject,
		From:      imapAddresses(e.From),
		Sender:    imapAddresses(e.Sender),
		ReplyTo:   imapAddresses(e.ReplyTo),
		To:        imapAddresses(e.To),
		Cc:        imapAddresses(e.Cc),
		Bcc:       imapAddresses(e.Bcc),
		MessageID: trimAngles(e.MessageID),
	}
	for _, id := range e.InReplyTo {
		if id = trimAngles(id); id != "" {
			env.InReplyTo = append(env.InReplyTo, id)
		}
	}
	return env
}

func trimAngles(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	return strings.TrimSuffix(id, ">")
}

func imapAddresses(addrs []store.Address) []imap.Address {
	if len(addrs) == 0 {
		return nil
	}
	out := make([]imap.Address, len(addrs))
	for i, a := range addrs {
		out[i] = imap.Address{Name: a.Name, Mailbox: a.Mailbox, Host: a.Host}
	}
	return out
}

// imapBodyStructure converts the delivery-time MIME tree into BODYSTRUCTURE
// (RFC 3501 §7.4.2), always with the extension data, which writeBodyStructure leaves out for BODY.
func imapBodyStructure(p *store.Part) imap.BodyStructure {
	if strings.EqualFold(p.Type, "multipart") && len(p.Children) > 0 {
		mp := &imap.BodyStructureMultiPart{
			Subtype: p.Subtype,
			Extended: &imap.BodyStructureMultiPartExt{
				Params:      p.Params,
				Disposition: imapDisposition(p),
				Language:    p.Language,
				Location:    p.Location,
			},
		}
		for i := range p.Children {
			mp.Children = append(mp.Children, imapBodyStructure(&p.Children[i]))
		}
		return mp
	}
	typ, subtype := p.Type, p.Subtype
	if typ == "" || strings.EqualFold(typ, "multipart") {
		// A multipart without parts cannot be written as one; show its bytes as text.
		typ, subtype = "text", "plain"
	}
	sp := &imap.BodyStructureSinglePart{
		Type:        typ,
		Subtype:     subtype,
		Params:      p.Params,
		ID:          p.ID,
		Description: p.Description,
		Encoding:    p.Encoding,
		Size:        uint32(min(p.Size, 1<<32-1)),
		Extended: &imap.BodyStructureSinglePartExt{
			Disposition: imapDisposition(p),
			Language:    p.Language,
			Location:    p.Location,
		},
	}
	switch {
	case strings.EqualFold(typ, "message") && strings.EqualFold(subtype, "rfc822"):
		inner := p.Message
		if inner == nil {
			inner = &store.Part{Type: "text", Subtype: "plain"}
		}
		env := p.Envelope
		if env == nil {
			env = &store.Envelope{}
		}
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      imapEnvelope(env),
			BodyStructure: imapBodyStructure(inner),
			NumLines:      p.Lines,
		}
	case strings.EqualFold(typ, "text"):
		sp.Text = &imap.BodyStructureText{NumLines: p.Lines}
	}
	return sp
}

func imapDisposition(p *store.Part) *imap.BodyStructureDisposition {
	if p.Disposition == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: p.Disposition, Params: p.DispositionParams}
}

// uidRanges compresses ascending UIDs into ranges for the store.
func uidRanges(uids []uint32) []store.UIDRange {
	var out []store.UIDRange
	for _, uid := range uids {
		if n := len(out); n > 0 && out[n-1].Stop+1 == uid {
			out[n-1].Stop = uid
			continue
		}
		out = append(out, store.UIDRange{Start: uid, Stop: uid})
	}
	return out
}
