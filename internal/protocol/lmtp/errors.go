package lmtp

import (
	"errors"
	"fmt"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// Replies, with enhanced status codes from RFC 3463.
var (
	errNoSuchUser  = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errOverQuota   = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox is full"}
	errTooBig      = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too big"}
	errNotMessage  = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Not an RFC 5322 message"}
	errLineTooLong = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message line too long"}
	// errStorageFull answers a store that cannot take the message now (disk full or
	// read-only): 452 is RFC 5321's "insufficient system storage"; 4.2.2 ("mailbox full",
	// RFC 3463 §3.3) is what Dovecot's LMTP answers for a full mailbox, so MTAs treat it
	// alike: defer and retry. (4.3.1 "mail system full" would name the cause more
	// exactly; no MTA retries one differently.)
	errStorageFull = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mail storage full, try again later"}
	errTemporary   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
	errDataLost    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Connection lost during DATA"}
	// replySaved is the DATA reply for a recipient whose copy is committed. (go-smtp writes
	// a non-nil *SMTPError's code and text as they are, so a 2xx "error" is a success reply
	// worded for final delivery rather than go-smtp's "queued".)
	replySaved = &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Saved"}
)

// deliveryStatus maps the store's verdict on one recipient's copy to its DATA reply.
func deliveryStatus(err error) *smtp.SMTPError {
	switch {
	case err == nil:
		return replySaved
	case errors.Is(err, store.ErrNoSuchAccount):
		return errNoSuchUser // deleted between RCPT and DATA
	case errors.Is(err, store.ErrOverQuota):
		return errOverQuota
	case errors.Is(err, store.ErrTooBig):
		return errTooBig
	case errors.Is(err, store.ErrNotMessage):
		return errNotMessage
	case errors.Is(err, store.ErrHeaderTooBig), errors.Is(err, store.ErrNestingTooDeep):
		return contentLimitReply(err)
	case errors.Is(err, store.ErrStorageFull):
		return errStorageFull
	default: // store.ErrTemporary and anything unexpected: let the MTA retry
		return errTemporary
	}
}

// contentLimitReply answers a message the store refused for its shape: a permanent failure
// of the message, not of the recipient or of the system, so the MTA bounces it rather than
// retrying (RFC 5321 §4.2.1: 5yz is a permanent negative reply).
//
//   - A header section above limits.header_size: 552 ("exceeded storage allocation", RFC
//     5321 §4.2.3) with 5.3.4 ("message too big for system", RFC 3463 §3.4: the message is
//     larger than a limit the system imposes, here on one of its parts).
//   - MIME nesting deeper than limits.mime_depth: 554 ("transaction failed") with 5.6.0
//     ("other or undefined media error", RFC 3463 §3.7: something about the content makes
//     delivery impossible), the enhanced code Postfix's cleanup gives mail nested deeper
//     than its mime_nesting_limit. (Postfix truncates an overlong header rather than
//     refusing it; Letterbox is the last hop and refuses, so the sender hears of it.)
func contentLimitReply(err error) *smtp.SMTPError {
	var cle *store.ContentLimitError
	errors.As(err, &cle)
	if errors.Is(err, store.ErrNestingTooDeep) {
		msg := "MIME nesting too deep"
		if cle != nil {
			msg = fmt.Sprintf("MIME nesting deeper than %d levels", cle.Limit)
		}
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: msg}
	}
	msg := "Message header too big"
	if cle != nil {
		msg = fmt.Sprintf("Message header section larger than %d octets", cle.Limit)
	}
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: msg}
}

// spoolStatus maps a failure to read and spool the message; clientErr is the first error of
// the client's data stream, if any.
func spoolStatus(err, clientErr error) *smtp.SMTPError {
	var se *smtp.SMTPError
	switch {
	case errors.As(clientErr, &se) && se.Code == smtp.ErrDataTooLarge.Code:
		return errTooBig
	case errors.Is(clientErr, smtp.ErrTooLongLine):
		return errLineTooLong
	case clientErr != nil:
		return errDataLost // nobody is left to read this reply; the MTA retries
	}
	return deliveryStatus(err)
}

func replyText(r *smtp.SMTPError) string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.EnhancedCode[0], r.EnhancedCode[1], r.EnhancedCode[2], r.Message)
}
