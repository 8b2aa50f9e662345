package auth

import (
	"fmt"
	"testing"
)

func TestFailureReason(t *testing.T) {
	for err, want := range map[error]string{
		ErrFailed:                         ReasonCredentials,
		fmt.Errorf("imap: %w", ErrFailed): ReasonCredentials,
		ErrProtocolNotAllowed:             ReasonProtocol,
		ErrDisabled:                       ReasonDisabled,
		ErrBlocked:                        ReasonBlocked,
		ErrTemporary:                      ReasonOther,
	} {
		if got := FailureReason(err); got != want {
			t.Errorf("FailureReason(%v) = %q, want %q", err, got, want)
		}
	}
}
