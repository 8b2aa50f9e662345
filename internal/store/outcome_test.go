package store

import (
	"errors"
	"fmt"
	"testing"
)

func TestDeliveryOutcome(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("store: deliver: %w", err) }
	for err, want := range map[error]string{
		nil:                    OutcomeDelivered,
		wrap(ErrNoSuchAccount): OutcomeNoSuchUser,
		wrap(ErrOverQuota):     OutcomeOverQuota,
		wrap(ErrTooBig):        OutcomeTooBig,
		wrap(ErrNotMessage):    OutcomeNotMessage,
		wrap(&ContentLimitError{Err: ErrHeaderTooBig, Limit: 1}):   OutcomeHeaderTooBig,
		wrap(&ContentLimitError{Err: ErrNestingTooDeep, Limit: 1}): OutcomeTooDeep,
		wrap(ErrNoSuchMailbox): OutcomeNoSuchMbox,
		wrap(ErrTemporary):     OutcomeTemporary,
		wrap(ErrStorageFull):   OutcomeTemporary, // a kind of ErrTemporary
		errors.New("surprise"): OutcomeFailed,
	} {
		if got := DeliveryOutcome(err); got != want {
			t.Errorf("DeliveryOutcome(%v) = %q, want %q", err, got, want)
		}
	}
}
