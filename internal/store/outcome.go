package store

import "errors"

// Delivery outcomes: what became of a message offered for storage, named for the
// deliveries_total metric (docs/metrics.md) and logs. DeliveryOutcome gives one for an error.
const (
	OutcomeDelivered  = "delivered"
	OutcomeNoSuchUser = "no_such_user"
	OutcomeOverQuota  = "over_quota"
	OutcomeTooBig     = "too_big"
	OutcomeNotMessage = "not_message"
	// New mail refused for its shape: a header section over limits.header_size, MIME
	// nesting deeper than limits.mime_depth.
	OutcomeHeaderTooBig = "header_too_big"
	OutcomeTooDeep      = "too_deep"
	OutcomeNoSuchMbox   = "no_such_mailbox"
	OutcomeTemporary    = "temporary"
	OutcomeFailed       = "failed"
)

// DeliveryOutcome names the outcome of a delivery (Deliver, DeliverSpooled, DeliverAll, or
// the Spool before it) that returned err: one of the Outcome* values.
func DeliveryOutcome(err error) string {
	switch {
	case err == nil:
		return OutcomeDelivered
	case errors.Is(err, ErrNoSuchAccount):
		return OutcomeNoSuchUser
	case errors.Is(err, ErrOverQuota):
		return OutcomeOverQuota
	case errors.Is(err, ErrTooBig):
		return OutcomeTooBig
	case errors.Is(err, ErrNotMessage):
		return OutcomeNotMessage
	case errors.Is(err, ErrHeaderTooBig):
		return OutcomeHeaderTooBig
	case errors.Is(err, ErrNestingTooDeep):
		return OutcomeTooDeep
	case errors.Is(err, ErrNoSuchMailbox):
		return OutcomeNoSuchMbox
	case errors.Is(err, ErrTemporary):
		return OutcomeTemporary
	}
	return OutcomeFailed
}
