package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// QUOTA (RFC 9208) with the STORAGE and MESSAGE resources (§5.1, §5.2). Every mailbox
// of an account is under one quota root, the account's: its usage and limits are the
// account's (store.Account's UsedBytes, Messages, QuotaBytes, QuotaMessages), set by the
// administrator (letterbox user mod --quota), so SETQUOTA is refused (§4.1.3 lets a server
// refuse it; QUOTASET is not announced). Refusals for quota are NO [OVERQUOTA] (§4.3),
// from storeError for APPEND, COPY and MOVE alike.

const (
	capQuota        imap.Cap = "QUOTA"
	capQuotaStorage imap.Cap = "QUOTA=RES-STORAGE"
	capQuotaMessage imap.Cap = "QUOTA=RES-MESSAGE"
)

// quotaRoot is the name of the one quota root of an account. Not empty: Apple Mail shows
// no quota for the empty root name.
const quotaRoot = "User quota"

// kibibytes is n octets in the STORAGE resource's unit, 1024 octets (RFC 9208 §5.1),
// rounded up so that a little mail is not shown as none.
func kibibytes(n int64) int64 { return (n + 1023) / 1024 }

type getQuotaArgs struct{ root string }

// GETQUOTA SP quota-root (RFC 9208 §4.1.1, quota-root = astring).
func parseGetQuota(r *commandReader) (any, error) {
	if err := r.sp(); err != nil {
		return nil, err
	}
	root, err := r.astring()
	if err != nil {
		return nil, err
	}
	return &getQuotaArgs{root: root}, nil
}

// SETQUOTA SP quota-root SP setquota-list (RFC 9208 §4.1.3): read, then refused.
func parseSetQuota(r *commandReader) (any, error) {
	if err := r.sp(); err != nil {
		return nil, err
	}
	if _, err := r.astring(); err != nil {
		return nil, err
	}
	if err := r.sp(); err != nil {
		return nil, err
	}
	// setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"
	// setquota-resource = resource-name SP resource-limit
	err := r.list(true, func() error {
		if _, err := r.atom(); err != nil {
			return err
		}
		if err := r.sp(); err != nil {
			return err
		}
		_, err := r.number64()
		return err
	})
	return nil, err
}

// quotaAccount reads the session's account afresh: its usage changes with every delivery.
func (s *session) quotaAccount() (store.Account, error) {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return store.Account{}, err
	}
	defer s.mu.Unlock()
	a, err := s.st.LookupAccount(s.ctx, acct.Address)
	if err != nil {
		return store.Account{}, s.storeError(err, "reading the quota")
	}
	return a, nil
}

// writeQuota writes "* QUOTA root (...)" with the resources that have a limit (RFC 9208
// §4.2.1: a resource without one is not listed): STORAGE in KiB, MESSAGE in messages.
func (s *session) writeQuota(a store.Account) {
	w := s.out
	w.raw("* QUOTA ").astring(quotaRoot).raw(" (")
	sep := ""
	if a.QuotaBytes > 0 {
		w.raw("STORAGE ").number64(kibibytes(a.UsedBytes)).sp().number64(a.QuotaBytes / 1024)
		sep = " "
	}
	if a.QuotaMessages > 0 {
		w.raw(sep + "MESSAGE ").number64(a.Messages).sp().number64(a.QuotaMessages)
	}
	w.raw(")").crlf()
}

// --- the commands of this file (command.go has the table)

// GETQUOTA (RFC 9208 §4.2): the account's one root; any other name is no root.
func handleGetQuota(s *session, cmd *command) error {
	root := cmd.args.(*getQuotaArgs).root
	a, err := s.quotaAccount()
	if err != nil {
		return err
	}
	if !strings.EqualFold(root, quotaRoot) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such quota root"}
	}
	s.writeQuota(a)
	return nil
}

// GETQUOTAROOT (RFC 9208 §4.3): "* QUOTAROOT mailbox root", then the root's QUOTA. The
// mailbox must exist.
func handleGetQuotaRoot(s *session, cmd *command) error {
	name := cmd.args.(*mailboxArgs).mailbox
	acct, err := s.lockAuthenticated()
	if err != nil {
		return err
	}
	mbox, err := s.st.MailboxByName(s.ctx, acct.ID, name)
	s.mu.Unlock()
	if err != nil {
		return s.storeError(err, "finding the mailbox")
	}
	a, err := s.quotaAccount()
	if err != nil {
		return err
	}
	s.out.raw("* QUOTAROOT ").mailbox(mbox.Name).sp().astring(quotaRoot).crlf()
	s.writeQuota(a)
	return nil
}

// SETQUOTA (RFC 9208 §4.1.3): quotas are the administrator's to set.
func handleSetQuota(s *session, cmd *command) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm, Text: "Quotas are set by the administrator"}
}
