package imap

import (
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/pkg/metrics"
	"github.com/letterbox-mail/letterbox/store"
)

// Append answers APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315 §3). The literal is
// streamed into the store as it arrives and stored exactly as given, with the flags and
// INTERNALDATE the client named. Literals above the append limit never get here:
// imapserver refuses them with NO [TOOBIG] before inviting the data. If the target is the
// selected mailbox, the poll that follows announces the message with EXISTS. An appended
// message is new mail: a header section or MIME nesting beyond the store's content limits
// is refused with NO [LIMIT].
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	acct, err := s.lockAuthenticated()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if r.Size() > s.srv.opts.AppendLimit {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message too big"}
	}
	flags, err := canonicalFlags(options.Flags)
	if err != nil {
		return nil, err
	}
	mbox, err := s.st.MailboxByName(s.ctx, acct.ID, mailbox)
	if err != nil {
		if isNoSuchMailbox(err) {
			return nil, errTryCreate // RFC 3501 §6.3.11
		}
		return nil, s.storeError(err, "finding the mailbox")
	}
	d, err := s.st.Deliver(s.ctx, acct.ID, r, store.DeliverOptions{
		Mailbox:      mbox.Name,
		Flags:        flags,
		InternalDate: options.Time,
		// Any octets are stored: the parse describes the message, it is no gate (Dovecot
		// stores "\r\n1\r\n" too). A literal8 (RFC 3516 §4.2) is kept octet for octet.
		AnyOctets: true,
		Binary:    s.guard != nil && s.guard.literal8,
	})
	s.srv.opts.Metrics.Delivery(metrics.ViaAppend, metrics.DeliveryOutcome(err))
	if errors.Is(err, store.ErrStorageFull) {
		// RFC 5530 has no code for a full server disk: [OVERQUOTA] would tell the user to
		// delete mail, [LIMIT] names a fixed limit, [SERVERBUG] a bug. [UNAVAILABLE]
		// ("temporary failure because a subsystem is down") says to try again later,
		// which is right: nothing was stored and space may return.
		s.log.Warn("append failed: mail storage full or read-only", "err", err)
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Mail storage is full, try again later"}
	}
	if cle := (*store.ContentLimitError)(nil); errors.As(err, &cle) {
		// New mail beyond limits.header_size or limits.mime_depth, refused as it streamed
		// in (imapserver reads the rest of the literal, and the session goes on). RFC 5530
		// §3: [LIMIT] is an operation that "ran up against an implementation limit", which
		// this is. Not [TOOBIG] (RFC 4469, used by RFC 7889 APPENDLIMIT): that says the message is too
		// big, and a client comparing its size with APPENDLIMIT would find it is not.
		s.log.Info("append refused", "mailbox", mbox.Name, "err", err)
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: appendLimitText(cle)}
	}
	if err != nil {
		return nil, s.storeError(err, "appending")
	}
	s.stats.appended++
	s.log.Debug("appended", "mailbox", mbox.Name, "uid", d.UID, "size", d.Size)
	return &imap.AppendData{UID: imap.UID(d.UID), UIDValidity: d.UIDValidity}, nil
}

// appendLimitText words the refusal of a message for its shape.
func appendLimitText(cle *store.ContentLimitError) string {
	if errors.Is(cle, store.ErrNestingTooDeep) {
		return fmt.Sprintf("MIME nesting deeper than %d levels", cle.Limit)
	}
	return fmt.Sprintf("Message header section larger than %d octets", cle.Limit)
}
