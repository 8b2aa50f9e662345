package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"
)

// OBJECTID (RFC 8474): the store names each mailbox (store.Mailbox.ObjectID, "M" and its
// row id, kept across RENAME) and each stored message (store.Message.EmailID, shared by
// its copies) and threads messages when it stores them (store.Message.ThreadID: a reply
// joins the thread of the message its In-Reply-To or References names; internal/store/threads.go),
// so THREADID is NIL only for messages stored before it threaded. The FETCH items are in
// fetchext.go, the SEARCH keys in searchext.go.

// writeSelectMailboxID writes SELECT's and EXAMINE's "* OK [MAILBOXID (id)]" (RFC 8474
// §4.1) for the mailbox just selected.
func writeSelectMailboxID(s *session) {
	if s.sel == nil {
		return
	}
	s.out.raw("* OK [MAILBOXID (").raw(s.sel.mbox.ObjectID()).raw(")] Ok").crlf()
}

// mailboxObjectID is the MAILBOXID of the mailbox named name, for STATUS (RFC 8474 §4.2).
func (s *session) mailboxObjectID(name string) (string, error) {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	mbox, err := s.st.MailboxByName(s.ctx, acct.ID, name)
	if err != nil {
		return "", s.storeError(err, "reading the status")
	}
	return mbox.ObjectID(), nil
}

// createdMailboxID answers a CREATE that succeeded "OK [MAILBOXID (id)]" (RFC 8474 §4.1).
// Should the mailbox be gone already (another session deleted it), the OK has no code.
func (s *session) createdMailboxID(name string) error {
	id, err := s.mailboxObjectID(strings.TrimSuffix(name, string(delimiter)))
	if err != nil {
		return nil
	}
	s.ok(imap.ResponseCode("MAILBOXID ("+id+")"), "CREATE completed")
	return nil
}
