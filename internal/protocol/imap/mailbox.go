package imap

import (
	"errors"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// specialUses are the special-use attributes a client may give CREATE (RFC 6154 §3).
var specialUses = []string{store.SpecialSent, store.SpecialDrafts, store.SpecialTrash, store.SpecialJunk, store.SpecialArchive}

// checkName refuses names that could not be listed or selected again: empty levels,
// wildcards (RFC 3501 §5.1) and control characters.
func checkName(name string) error {
	bad := name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "//") ||
		strings.ContainsAny(name, "*%") || strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
	if bad {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid mailbox name"}
	}
	return nil
}

func isInbox(name string) bool { return strings.EqualFold(name, "INBOX") }

// parents lists the superior names of a hierarchical name: "a/b/c" -> "a", "a/b".
func parents(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if name[i] == delimiter {
			out = append(out, name[:i])
		}
	}
	return out
}

// createParents creates the superior names a new name needs (RFC 3501 §6.3.3).
func (s *session) createParents(acct *store.Account, name string) error {
	for _, p := range parents(name) {
		if isInbox(p) {
			continue
		}
		if _, err := s.st.CreateMailbox(s.ctx, acct.ID, p, ""); err != nil && !errors.Is(err, store.ErrMailboxExists) {
			return s.storeError(err, "creating a parent mailbox")
		}
	}
	return nil
}

// Create answers CREATE (RFC 3501 §6.3.3), with USE (RFC 6154 §3, CREATE-SPECIAL-USE).
func (s *session) Create(name string, options *imap.CreateOptions) error {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	name = strings.TrimSuffix(name, string(delimiter))
	if isInbox(name) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "INBOX always exists"}
	}
	if err := checkName(name); err != nil {
		return err
	}
	use := ""
	if options != nil && len(options.SpecialUse) > 0 {
		if len(options.SpecialUse) > 1 {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: "Only one special use per mailbox"}
		}
		for _, u := range specialUses {
			if strings.EqualFold(string(options.SpecialUse[0]), u) {
				use = u
			}
		}
		if use == "" {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: "Unsupported special use"}
		}
	}
	if err := s.createParents(acct, name); err != nil {
		return err
	}
	if _, err := s.st.CreateMailbox(s.ctx, acct.ID, name, use); err != nil {
		return s.storeError(err, "creating the mailbox")
	}
	return nil
}

// Delete answers DELETE (RFC 3501 §6.3.4). INBOX cannot be deleted. Sessions that have
// the mailbox selected see all its messages expunged.
func (s *session) Delete(name string) error {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if isInbox(name) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	}
	s.appendedTo = appendTarget{} // the next APPEND looks its mailbox up again
	if err := s.st.DeleteMailbox(s.ctx, acct.ID, name); err != nil {
		return s.storeError(err, "deleting the mailbox")
	}
	return nil
}

// Rename answers RENAME (RFC 3501 §6.3.5): children move along; renaming INBOX moves its
// messages into the new mailbox and leaves INBOX empty (done by the store).
func (s *session) Rename(mailbox, newName string, options *imap.RenameOptions) error {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	newName = strings.TrimSuffix(newName, string(delimiter))
	if isInbox(newName) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "INBOX always exists"}
	}
	if err := checkName(newName); err != nil {
		return err
	}
	if _, err := s.st.MailboxByName(s.ctx, acct.ID, mailbox); err != nil {
		return s.storeError(err, "renaming the mailbox")
	}
	if err := s.createParents(acct, newName); err != nil {
		return err
	}
	s.appendedTo = appendTarget{} // the next APPEND looks its mailbox up again
	if err := s.st.RenameMailbox(s.ctx, acct.ID, mailbox, newName); err != nil {
		return s.storeError(err, "renaming the mailbox")
	}
	return nil
}

// Subscribe answers SUBSCRIBE (RFC 3501 §6.3.6).
func (s *session) Subscribe(name string) error {
	return s.setSubscribed(name, true)
}

// Unsubscribe answers UNSUBSCRIBE (RFC 3501 §6.3.7).
func (s *session) Unsubscribe(name string) error {
	return s.setSubscribed(name, false)
}

func (s *session) setSubscribed(name string, on bool) error {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.st.SetSubscribed(s.ctx, acct.ID, name, on); err != nil {
		return s.storeError(err, "changing the subscription")
	}
	return nil
}

// Status answers STATUS (RFC 3501 §6.3.10), with SIZE (RFC 8438), DELETED (RFC 9051)
// and APPENDLIMIT (RFC 7889).
func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	mbox, err := s.st.MailboxByName(s.ctx, acct.ID, name)
	if err != nil {
		return nil, s.storeError(err, "reading the status")
	}
	return s.status(mbox, options)
}

func (s *session) status(mbox store.Mailbox, options *imap.StatusOptions) (*imap.StatusData, error) {
	st, err := s.st.Status(s.ctx, mbox.ID)
	if err != nil {
		return nil, s.storeError(err, "reading the status")
	}
	u32 := func(n int64) *uint32 { v := uint32(min(max(n, 0), 1<<32-1)); return &v }
	data := &imap.StatusData{Mailbox: mbox.Name, UIDNext: imap.UID(st.UIDNext), UIDValidity: st.UIDValidity}
	if options.NumMessages {
		data.NumMessages = u32(st.Messages)
	}
	if options.NumUnseen {
		data.NumUnseen = u32(st.Unseen)
	}
	if options.NumDeleted {
		data.NumDeleted = u32(st.Deleted)
	}
	if options.NumRecent {
		data.NumRecent = u32(st.Recent) // not yet claimed by any session (store.ClaimRecent)
	}
	if options.Size {
		size := st.Size
		data.Size = &size
	}
	if options.AppendLimit {
		data.AppendLimit = u32(s.srv.opts.AppendLimit)
	}
	if options.HighestModSeq {
		data.HighestModSeq = uint64(st.ModSeq) // RFC 7162 §3.1.2.2
	}
	if options.DeletedStorage {
		// RFC 9208 §4.4: in the STORAGE resource's unit, KiB (as GETQUOTA counts).
		kib := kibibytes(st.DeletedSize)
		data.DeletedStorage = &kib
	}
	return data, nil
}

// listNode is a name LIST may show: a mailbox, a superior name implied by one, or a
// subscribed name (RFC 3501 §6.3.6: a subscription need not name a mailbox).
type listNode struct {
	mbox           *store.Mailbox // nil: no such mailbox
	inTree         bool           // a mailbox, or a superior name of one
	children       bool           // mailboxes below it
	subscribed     bool
	subscribedKids []string // subscribed names below it
}

// canonInbox spells a leading INBOX level in capitals, so that patterns match INBOX in any
// case (RFC 3501 §5.1).
func canonInbox(s string) string {
	if len(s) >= 5 && strings.EqualFold(s[:5], "INBOX") && (len(s) == 5 || s[5] == delimiter) {
		return "INBOX" + s[5:]
	}
	return s
}

// List answers LIST (RFC 3501 §6.3.8, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819) and
// LSUB (RFC 3501 §6.3.9). Every mailbox carries \HasChildren or \HasNoChildren
// (RFC 3348) and its special-use attribute (RFC 6154); superior names without a mailbox
// are shown \Noselect. Subscriptions are names of their own (store.Subscriptions): LIST
// (SUBSCRIBED) shows one whose mailbox does not exist \NonExistent (RFC 5258 §3.4).
//
// A name that is not subscribed but has subscribed names below it that the patterns do
// not match is shown too: by LSUB with \Noselect (RFC 3501 §6.3.9), by LIST (SUBSCRIBED
// RECURSIVEMATCH) with CHILDINFO (RFC 5258 §3.5). handleList gives LSUB as a LIST with
// SelectSubscribed and a listWriter that writes LSUB.
func (s *session) List(w *listWriter, ref string, patterns []string, options *imap.ListOptions) error {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if len(patterns) == 0 {
		// RFC 3501 §6.3.8: an empty pattern asks for the delimiter and the root.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delimiter})
	}
	lsub := w.lsub
	mboxes, err := s.st.Mailboxes(s.ctx, acct.ID)
	if err != nil {
		return s.storeError(err, "listing mailboxes")
	}
	subs, err := s.st.Subscriptions(s.ctx, acct.ID)
	if err != nil {
		return s.storeError(err, "listing subscriptions")
	}
	nodes := make(map[string]*listNode, len(mboxes))
	node := func(name string) *listNode {
		n := nodes[name]
		if n == nil {
			n = &listNode{}
			nodes[name] = n
		}
		return n
	}
	for i := range mboxes {
		m := &mboxes[i]
		n := node(m.Name)
		n.mbox, n.inTree = m, true
		for _, p := range parents(m.Name) {
			pn := node(p)
			pn.children, pn.inTree = true, true
		}
	}
	for _, name := range subs {
		node(name).subscribed = true
		for _, p := range parents(name) {
			pn := node(p)
			pn.subscribedKids = append(pn.subscribedKids, name)
		}
	}
	names := make([]string, 0, len(nodes))
	for name := range nodes {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if isInbox(names[i]) != isInbox(names[j]) {
			return isInbox(names[i])
		}
		return names[i] < names[j]
	})

	if ref != "" {
		ref = canonInbox(ref)
	} else {
		for i := range patterns {
			patterns[i] = canonInbox(patterns[i])
		}
	}
	matches := func(name string) bool {
		for _, p := range patterns {
			if matchList(name, delimiter, ref, p) {
				return true
			}
		}
		return false
	}
	// unmatchedKids: subscribed names below n that the patterns do not match.
	unmatchedKids := func(n *listNode) bool {
		for _, k := range n.subscribedKids {
			if !matches(k) {
				return true
			}
		}
		return false
	}
	for _, name := range names {
		n := nodes[name]
		if !matches(name) {
			continue
		}
		data := imap.ListData{Delim: delimiter, Mailbox: name}
		if options.SelectSubscribed {
			switch {
			case n.subscribed:
			case lsub && unmatchedKids(n):
				data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
				if err := w.WriteList(&data); err != nil {
					return err
				}
				continue
			case !lsub && options.SelectRecursiveMatch && unmatchedKids(n):
				data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
			default:
				continue
			}
		} else if !n.inTree {
			continue // only subscribed: no mailbox to list
		}
		if options.SelectSpecialUse && (n.mbox == nil || n.mbox.SpecialUse == "") {
			continue
		}
		switch {
		case n.mbox == nil && n.inTree:
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		case n.mbox == nil && !lsub:
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		}
		if n.inTree && n.children {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else if n.inTree {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if n.subscribed && (options.SelectSubscribed || options.ReturnSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if n.mbox != nil && n.mbox.SpecialUse != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(n.mbox.SpecialUse))
		}
		if options.ReturnStatus != nil && n.mbox != nil {
			st, err := s.status(*n.mbox, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
			w.objectID = n.mbox.ObjectID()
		}
		if err := w.WriteList(&data); err != nil {
			return err
		}
	}
	return nil
}

// --- the commands of this file (command.go has the table)

// CREATE with USE (RFC 3501 §6.3.3, RFC 6154 §5.2).
func handleCreate(s *session, cmd *command) error {
	a := cmd.args.(*createArgs)
	if err := s.Create(a.mailbox, &imap.CreateOptions{SpecialUse: a.specialUse}); err != nil {
		return err
	}
	return s.createdMailboxID(a.mailbox) // objectid.go
}

// DELETE (RFC 3501 §6.3.4).
func handleDelete(s *session, cmd *command) error {
	return s.Delete(cmd.args.(*mailboxArgs).mailbox)
}

// RENAME (RFC 3501 §6.3.5).
func handleRename(s *session, cmd *command) error {
	a := cmd.args.(*renameArgs)
	return s.Rename(a.from, a.to, &imap.RenameOptions{})
}

// SUBSCRIBE and UNSUBSCRIBE (RFC 3501 §6.3.6, §6.3.7).
func handleSubscribe(s *session, cmd *command) error {
	name := cmd.args.(*mailboxArgs).mailbox
	if cmd.name == "SUBSCRIBE" {
		return s.Subscribe(name)
	}
	return s.Unsubscribe(name)
}

// LIST (RFC 3501 §6.3.8, RFC 5258, RFC 5819) and LSUB (§6.3.9), which is LIST of the
// subscribed mailboxes answered as LSUB.
func handleList(s *session, cmd *command) error {
	a := cmd.args.(*listArgs)
	opts := a.options
	if a.lsub {
		opts.SelectSubscribed = true
	}
	var patterns []string
	for _, p := range a.patterns {
		if p != "" {
			patterns = append(patterns, p)
		}
	}
	if len(patterns) == 0 && len(a.patterns) > 1 {
		return nil // only empty patterns, of LIST-EXTENDED: nothing matches
	}
	return s.List(&listWriter{w: s.out, lsub: a.lsub, status: opts.ReturnStatus, statusMailboxID: a.statusMailboxID}, a.ref, patterns, &opts)
}

// STATUS (RFC 3501 §6.3.10).
func handleStatus(s *session, cmd *command) error {
	a := cmd.args.(*statusArgs)
	if a.items.HighestModSeq { // CONDSTORE-enabling (RFC 7162 §3.1)
		if err := s.enableCondStore(); err != nil {
			return err
		}
	}
	data, err := s.Status(a.mailbox, a.items)
	if err != nil {
		return err
	}
	id := ""
	if a.mailboxID {
		if id, err = s.mailboxObjectID(a.mailbox); err != nil { // objectid.go
			return err
		}
	}
	writeStatus(s.out, data, a.items, id)
	return nil
}
