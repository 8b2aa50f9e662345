package inspector

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/letterbox-mail/letterbox/internal/datasize"
	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/mailmsg"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// pageSize is how many messages one page of a folder lists.
const pageSize = 250

// refreshSeconds is the meta refresh of a page without JavaScript.
const refreshSeconds = 5

var templateFuncs = template.FuncMap{
	"accountURL": accountURL,
	"folderURL":  folderURL,
	"messageURL": messageURL,
	"traceURL":   traceURL,
	"bytes":      datasize.Format, // as `letterbox user show` writes sizes
	"time":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"isSystemFlag": func(flag string) bool {
		return strings.HasPrefix(flag, `\`)
	},
}

// URLs of the pages. A folder name travels escaped in one path segment (Work%2F2024).
func accountURL(address string) string { return "/accounts/" + url.PathEscape(address) }

func folderURL(address, folder string) string {
	return accountURL(address) + "/folders/" + url.PathEscape(folder)
}

func messageURL(address, folder string, uid uint32) string {
	return folderURL(address, folder) + "/" + strconv.FormatUint(uint64(uid), 10)
}

func traceURL(name string) string { return "/traces/" + url.PathEscape(name) }

func eventsURL(address string) string {
	if address == "" {
		return "/events"
	}
	return "/events?account=" + url.QueryEscape(address)
}

// --- accounts ---

type accountRow struct {
	store.Account
	QuotaPercent float64 // of QuotaBytes; 0 when unlimited
}

func (in *Inspector) accounts(w http.ResponseWriter, r *http.Request) error {
	accts, err := in.opts.Store.Accounts(r.Context())
	if err != nil {
		return err
	}
	rows := make([]accountRow, len(accts))
	for i, a := range accts {
		rows[i] = accountRow{Account: a}
		if a.QuotaBytes > 0 {
			rows[i].QuotaPercent = 100 * float64(a.UsedBytes) / float64(a.QuotaBytes)
		}
	}
	in.render(w, http.StatusOK, "accounts", page{Title: "Accounts", Nav: "accounts",
		Crumbs: []crumb{{"Accounts", "/"}}, Events: eventsURL(""), Refresh: refreshSeconds}, rows)
	return nil
}

// --- an account's folders ---

type accountView struct {
	Account store.Account
	Folders []store.MailboxStatus
}

func (in *Inspector) account(w http.ResponseWriter, r *http.Request) error {
	a, err := in.opts.Store.LookupAccount(r.Context(), r.PathValue("address"))
	if err != nil {
		return err
	}
	mbs, err := in.opts.Store.Mailboxes(r.Context(), a.ID)
	if err != nil {
		return err
	}
	store.InboxFirst(mbs)
	v := accountView{Account: a}
	for _, mb := range mbs {
		st, err := in.opts.Store.Status(r.Context(), mb.ID)
		if errors.Is(err, store.ErrNoSuchMailbox) {
			continue // deleted meanwhile
		} else if err != nil {
			return err
		}
		v.Folders = append(v.Folders, st)
	}
	in.render(w, http.StatusOK, "account", page{Title: a.Address, Nav: "accounts",
		Crumbs: []crumb{{"Accounts", "/"}, {a.Address, accountURL(a.Address)}},
		Events: eventsURL(a.Address), Refresh: refreshSeconds}, v)
	return nil
}

// --- a folder's messages ---

// messageRow is one message as both protocols list it.
type messageRow struct {
	store.Metadata
	// POP3 is the message's number and UIDL in the maildrop of a POP3 session that logs in
	// now (0 and "" outside it); NotInPOP3 says why a message has none.
	POP3      int
	UIDL      string
	NotInPOP3 string
	From      string
}

type folderView struct {
	Account  store.Account
	Folder   store.MailboxStatus
	Messages []messageRow
	// Pages of pageSize messages, in UID order; Page is the one shown (1-based).
	Page, Pages int
}

func (v folderView) PageURL(n int) string {
	return folderURL(v.Account.Address, v.Folder.Name) + "?page=" + strconv.Itoa(n)
}

func (v folderView) PageNumbers() []int {
	out := make([]int, v.Pages)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// Why a message has no UIDL; the folder page shows them as tooltips.
const (
	notInboxReason  = "POP3 sees only INBOX (RFC 1939 has one maildrop per user): messages in other folders have no UIDL"
	notInDropReason = "not in a POP3 session's maildrop: a POP3 DELE hid it (pop3.delete)"
)

// lookupFolder finds the account and folder named in the request's path.
func (in *Inspector) lookupFolder(r *http.Request) (store.Account, store.Mailbox, error) {
	a, err := in.opts.Store.LookupAccount(r.Context(), r.PathValue("address"))
	if err != nil {
		return a, store.Mailbox{}, err
	}
	mb, err := in.opts.Store.MailboxByName(r.Context(), a.ID, r.PathValue("folder"))
	return a, mb, err
}

func (in *Inspector) folder(w http.ResponseWriter, r *http.Request) error {
	a, mb, err := in.lookupFolder(r)
	if err != nil {
		return err
	}
	st, err := in.opts.Store.Status(r.Context(), mb.ID)
	if err != nil {
		return err
	}
	// Every row, cheaply, for the POP3 numbering; metadata only for the page shown.
	msgs, err := in.opts.Store.Messages(r.Context(), mb.ID)
	if err != nil {
		return err
	}
	v := folderView{Account: a, Folder: st, Page: 1, Pages: max(1, (len(msgs)+pageSize-1)/pageSize)}
	if p, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && p >= 1 && p <= v.Pages {
		v.Page = p
	}
	first, last := (v.Page-1)*pageSize, min(v.Page*pageSize, len(msgs))
	pop3 := in.pop3View(mb, msgs)
	if first < last {
		mds, err := in.opts.Store.Metadata(r.Context(), mb.ID,
			store.UIDRange{Start: msgs[first].UID, Stop: msgs[last-1].UID})
		if err != nil {
			return err
		}
		for _, md := range mds {
			row := pop3[md.UID]
			row.Metadata = md
			row.From = mailmsg.FormatAddresses(md.Envelope.From)
			v.Messages = append(v.Messages, row)
		}
	}
	in.render(w, http.StatusOK, "folder", page{Title: mb.Name + " · " + a.Address, Nav: "accounts",
		Crumbs: []crumb{{"Accounts", "/"}, {a.Address, accountURL(a.Address)},
			{mb.Name, folderURL(a.Address, mb.Name)}},
		Events: eventsURL(a.Address), Refresh: refreshSeconds}, v)
	return nil
}

// pop3View numbers a folder's messages as a POP3 session logging in now would (RFC 1939
// §4: the maildrop in UID order, numbered from 1), with their UIDLs; every message of
// another folder gets only the reason why it has none.
func (in *Inspector) pop3View(mb store.Mailbox, msgs []store.Message) map[uint32]messageRow {
	out := make(map[uint32]messageRow, len(msgs))
	n := 0
	for _, m := range msgs {
		switch {
		case mb.Name != "INBOX":
			out[m.UID] = messageRow{NotInPOP3: notInboxReason}
		case !maildrop.InMaildrop(m, in.opts.DeleteMode):
			out[m.UID] = messageRow{NotInPOP3: notInDropReason}
		default:
			n++
			uidl, _ := maildrop.FormatUIDL(in.opts.UIDLFormat, m.UID, mb.UIDValidity) // checked by New
			out[m.UID] = messageRow{POP3: n, UIDL: uidl}
		}
	}
	return out
}
