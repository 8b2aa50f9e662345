package inspector

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// headerField is one field of a message's header, in the order it was sent.
type headerField struct {
	Name    string // as spelt in the message
	Value   string // unfolded, still encoded
	Decoded string // the RFC 2047 decoded value when it differs from Value
}

// partNode is one node of a message's MIME tree.
type partNode struct {
	// Section is the IMAP section number (RFC 3501 §6.4.5: "1", "2.1"); "" for a multipart
	// that is a whole message (the top level, or enclosed in a message/rfc822 part).
	Section  string
	Type     string // "text/plain"
	Params   string // Content-Type parameters: charset=utf-8; name=x.pdf
	Encoding string
	Size     int64
	Lines    int64
	// Disposition, with its file name if any: "attachment; filename=x.pdf".
	Disposition string
	ID          string
	Description string
	Children    []partNode
}

type messageView struct {
	Account store.Account
	Folder  store.Mailbox
	messageRow
	To, Cc    string
	Header    []headerField
	Structure partNode
	RawURL    string
}

func (in *Inspector) lookupMessage(r *http.Request) (store.Account, store.Mailbox, store.Metadata, error) {
	a, mb, err := in.lookupFolder(r)
	if err != nil {
		return a, mb, store.Metadata{}, err
	}
	uid, err := strconv.ParseUint(r.PathValue("uid"), 10, 32)
	if err != nil || uid == 0 {
		return a, mb, store.Metadata{}, errNotFound(fmt.Sprintf("no message with UID %q", r.PathValue("uid")))
	}
	mds, err := in.opts.Store.Metadata(r.Context(), mb.ID, store.UIDRange{Start: uint32(uid), Stop: uint32(uid)})
	if err != nil {
		return a, mb, store.Metadata{}, err
	}
	if len(mds) == 0 {
		return a, mb, store.Metadata{}, errNotFound(fmt.Sprintf("no message with UID %d in %s (expunged?)", uid, mb.Name))
	}
	return a, mb, mds[0], nil
}

func (in *Inspector) message(w http.ResponseWriter, r *http.Request) error {
	a, mb, md, err := in.lookupMessage(r)
	if err != nil {
		return err
	}
	// The UIDL and POP3 number depend on the messages before this one in INBOX.
	msgs, err := in.opts.Store.Messages(r.Context(), mb.ID, store.UIDRange{Start: 1, Stop: md.UID})
	if err != nil {
		return err
	}
	row := in.pop3View(mb, msgs)[md.UID]
	row.Metadata = md
	row.From = mailmsg.FormatAddresses(md.Envelope.From)
	header, err := in.readHeader(r, mb.ID, md)
	if err != nil {
		return err
	}
	v := messageView{Account: a, Folder: mb, messageRow: row,
		To: mailmsg.FormatAddresses(md.Envelope.To), Cc: mailmsg.FormatAddresses(md.Envelope.Cc),
		Header: header, Structure: partTree(md.Structure, ""),
		RawURL: messageURL(a.Address, mb.Name, md.UID) + "/raw"}
	title := fmt.Sprintf("UID %d", md.UID)
	in.render(w, http.StatusOK, "message", page{Title: title + " · " + mb.Name + " · " + a.Address, Nav: "accounts",
		Crumbs: []crumb{{"Accounts", "/"}, {a.Address, accountURL(a.Address)},
			{mb.Name, folderURL(a.Address, mb.Name)}, {title, messageURL(a.Address, mb.Name, md.UID)}},
		Events: eventsURL(a.Address), Refresh: refreshSeconds}, v)
	return nil
}

// readHeader reads the message's top-level header: its first HeaderSize octets, as the
// store's parse at delivery measured them (a malformed line ends the header there, and
// what follows is body). A parse error is no error here: the fields read are shown.
func (in *Inspector) readHeader(r *http.Request, mailboxID int64, md store.Metadata) ([]headerField, error) {
	body, err := in.opts.Store.OpenMessage(r.Context(), mailboxID, md.UID)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	h, _ := textproto.ReadHeader(bufio.NewReader(io.LimitReader(body, md.HeaderSize)))
	var fields []headerField
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	for f := h.Fields(); f.Next(); {
		name := f.Key()
		if raw, err := f.Raw(); err == nil {
			if n, _, ok := strings.Cut(string(raw), ":"); ok {
				name = n
			}
		}
		hf := headerField{Name: name, Value: f.Value()}
		if d, err := dec.DecodeHeader(hf.Value); err == nil && d != hf.Value {
			hf.Decoded = d
		}
		fields = append(fields, hf)
	}
	return fields, nil
}

// partTree turns the stored structure into the tree the page shows, numbering parts as
// IMAP does (RFC 3501 §6.4.5): the parts of a multipart are 1, 2, ... under their
// parent's number; a single-part message is part 1; the message inside a message/rfc822
// part has that part's number, and its own parts are numbered beneath it.
func partTree(p store.Part, section string) partNode {
	n := partNode{Section: section, Type: p.Type + "/" + p.Subtype, Params: formatParams(p.Params),
		Encoding: p.Encoding, Size: p.Size, Lines: p.Lines, ID: p.ID, Description: p.Description}
	if p.Disposition != "" {
		n.Disposition = strings.TrimSuffix(p.Disposition+"; "+formatParams(p.DispositionParams), "; ")
	}
	child := func(i int) string {
		if section == "" {
			return strconv.Itoa(i)
		}
		return section + "." + strconv.Itoa(i)
	}
	switch {
	case p.Type == "multipart":
		for i, c := range p.Children {
			n.Children = append(n.Children, partTree(c, child(i+1)))
		}
	case section == "":
		n.Section = "1"
	case p.Message != nil && p.Message.Type == "multipart":
		inner := partTree(*p.Message, section)
		inner.Section = "" // the enclosed multipart has no number of its own (it is section.TEXT)
		n.Children = []partNode{inner}
	case p.Message != nil:
		n.Children = []partNode{partTree(*p.Message, child(1))}
	}
	return n
}

// formatParams writes MIME parameters in name order: "charset=utf-8; format=flowed".
func formatParams(params map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		parts = append(parts, k+"="+strconv.Quote(params[k]))
	}
	return strings.Join(parts, "; ")
}

// rawMessage shows the stored message as plain text: never as HTML or as mail the browser
// might hand to a mail program, and in a sandbox should a browser sniff anyway.
func (in *Inspector) rawMessage(w http.ResponseWriter, r *http.Request) error {
	_, mb, md, err := in.lookupMessage(r)
	if err != nil {
		return err
	}
	body, err := in.opts.Store.OpenMessage(r.Context(), mb.ID, md.UID)
	if err != nil {
		return err
	}
	defer body.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
	w.Header().Set("Content-Length", strconv.FormatInt(body.Size(), 10))
	if _, err := io.Copy(w, body); err != nil {
		in.log.Warn("inspector: sending a message failed", "err", err)
	}
	return nil
}
