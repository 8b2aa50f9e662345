package imap

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// appendMessages answers APPEND (RFC 3501 §6.3.11) and MULTIAPPEND (RFC 3502) with the
// UIDs for APPENDUID (RFC 4315 §3). Each literal is streamed into a spool as it arrives
// (store.Spool) and stored exactly as given, with the flags and INTERNALDATE the client
// named; then all the messages are stored in one store transaction, so that either all
// are stored or none (RFC 3502 §6.3.11). Literals above the append limit never get
// here: the parser refuses them with NO [TOOBIG] before inviting the data. If the target
// is the selected mailbox, the poll that follows announces the messages with EXISTS. An
// appended message is new mail: a header section or MIME nesting beyond the store's
// content limits is refused with NO [LIMIT]. After a refusal the reader skips the rest
// of the command, literals included, and nothing of it is stored.
func (s *session) appendMessages(a *appendArgs) (uidValidity uint32, uids []uint32, err error) {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return 0, nil, err
	}
	defer s.mu.Unlock()
	target, err := s.appendTarget(acct, a.mailbox)
	if err != nil {
		return 0, nil, err
	}
	var msgs []store.SpooledMessage
	defer func() {
		for _, m := range msgs {
			m.Message.Close()
		}
	}()
	for m := a.first; m != nil; {
		if s.overLimit(len(msgs) + 1) {
			return 0, nil, s.errAppendOverLimit() // RFC 9738 §3.1: MULTIAPPEND is atomic
		}
		if m.body.Size() > s.srv.opts.AppendLimit {
			return 0, nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message too big"}
		}
		flags, err := canonicalFlags(m.flags)
		if err != nil {
			return 0, nil, err
		}
		// Any octets are stored: the parse describes the message, it is no gate (Dovecot
		// stores "\r\n1\r\n" too). A literal8 (RFC 3516 §4.2) is kept octet for octet.
		sp, err := s.st.Spool(m.body, store.SpoolOptions{AnyOctets: true, Binary: m.body.binary})
		if err != nil {
			s.srv.opts.Metrics.Delivery(metrics.ViaAppend, store.DeliveryOutcome(err))
			return 0, nil, s.appendError(err, target)
		}
		msgs = append(msgs, store.SpooledMessage{Message: sp, Flags: flags, InternalDate: m.date})
		if m, err = a.next(); err != nil {
			return 0, nil, err
		}
	}
	var delivered []store.Delivered
	if len(msgs) == 1 {
		var d store.Delivered
		d, err = s.st.DeliverSpooled(s.ctx, acct.ID, msgs[0].Message, store.DeliverOptions{
			Mailbox: target, Flags: msgs[0].Flags, InternalDate: msgs[0].InternalDate,
		})
		delivered = []store.Delivered{d}
	} else {
		delivered, err = s.st.DeliverAll(s.ctx, acct.ID, target, msgs)
	}
	for range msgs {
		s.srv.opts.Metrics.Delivery(metrics.ViaAppend, store.DeliveryOutcome(err))
	}
	if err != nil {
		s.appendedTo = appendTarget{}
		return 0, nil, s.appendError(err, target)
	}
	s.appendedTo = appendTarget{account: acct.ID, asked: a.mailbox, name: target}
	for _, d := range delivered {
		s.stats.appended++
		s.log.Debug("appended", "mailbox", target, "uid", d.UID, "size", d.Size)
		uids = append(uids, d.UID)
	}
	return delivered[0].UIDValidity, uids, nil
}

// appendTarget is the mailbox an APPEND stored into: the name the client gave and the
// store's name for it (INBOX for "inbox").
type appendTarget struct {
	account     int64
	asked, name string
}

// appendTarget finds the mailbox an APPEND names, before the first literal is asked for,
// so that a client appending to a mailbox that does not exist sends no message for
// nothing (RFC 3501 §6.3.11: NO [TRYCREATE]). A client importing mail appends to the
// same mailbox again and again: if it is the one the last APPEND stored into, the lookup
// is skipped. The store finds the mailbox again anyway, in the write that stores the
// message, and if another session has deleted or renamed it meanwhile the answer is the
// same NO [TRYCREATE], after the message (appendError). Skipping the lookup saves more
// than a query: in SQLite it is a reader's first look at a database the last APPEND
// changed, which costs it its memory map of the file, unmapped and mapped again.
func (s *session) appendTarget(acct *store.Account, name string) (string, error) {
	if t := s.appendedTo; t.account == acct.ID && t.asked == name {
		return t.name, nil
	}
	mbox, err := s.st.MailboxByName(s.ctx, acct.ID, name)
	if err != nil {
		if isNoSuchMailbox(err) {
			return "", errTryCreate
		}
		return "", s.storeError(err, "finding the mailbox")
	}
	return mbox.Name, nil
}

// appendError words a refusal of APPEND by the store.
func (s *session) appendError(err error, mailbox string) error {
	if isNoSuchMailbox(err) {
		// Deleted or renamed since appendTarget found it: RFC 3501 §6.3.11 still says
		// TRYCREATE, if after the message.
		return errTryCreate
	}
	if errors.Is(err, store.ErrStorageFull) {
		// RFC 5530 has no code for a full server disk: [OVERQUOTA] would tell the user to
		// delete mail, [LIMIT] names a fixed limit, [SERVERBUG] a bug. [UNAVAILABLE]
		// ("temporary failure because a subsystem is down") says to try again later,
		// which is right: nothing was stored and space may return.
		s.log.Warn("append failed: mail storage full or read-only", "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Mail storage is full, try again later"}
	}
	if cle := (*store.ContentLimitError)(nil); errors.As(err, &cle) {
		// New mail beyond limits.header_size or limits.mime_depth, refused as it streamed
		// in (the reader skips the rest of the literal, and the session goes on). RFC 5530
		// §3: [LIMIT] is an operation that "ran up against an implementation limit", which
		// this is. Not [TOOBIG] (RFC 4469, used by RFC 7889 APPENDLIMIT): that says the message is too
		// big, and a client comparing its size with APPENDLIMIT would find it is not.
		s.log.Info("append refused", "mailbox", mailbox, "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: appendLimitText(cle)}
	}
	// ErrOverQuota is NO [OVERQUOTA] (RFC 9208 §4.3), ErrTooBig NO [TOOBIG].
	return s.storeError(err, "appending")
}

// appendLimitText words the refusal of a message for its shape.
func appendLimitText(cle *store.ContentLimitError) string {
	if errors.Is(cle, store.ErrNestingTooDeep) {
		return fmt.Sprintf("MIME nesting deeper than %d levels", cle.Limit)
	}
	return fmt.Sprintf("Message header section larger than %d octets", cle.Limit)
}

// --- the commands of this file (command.go has the table)

// APPEND (RFC 3501 §6.3.11) and MULTIAPPEND (RFC 3502): each message literal streams
// from the connection into a spool, asked for ("+") only when the store starts reading
// it, so that a refusal before (no such mailbox) costs the client nothing. APPENDUID
// (RFC 4315 §3) gives the UIDs of all, consecutive: one uid-range.
func handleAppend(s *session, cmd *command) error {
	uidValidity, uids, err := s.appendMessages(cmd.args.(*appendArgs))
	if err != nil {
		return err
	}
	set := strconv.FormatUint(uint64(uids[0]), 10)
	if last := uids[len(uids)-1]; last != uids[0] {
		set += ":" + strconv.FormatUint(uint64(last), 10)
	}
	s.ok(imap.ResponseCode(fmt.Sprintf("APPENDUID %d %s", uidValidity, set)), "APPEND completed")
	return nil
}
