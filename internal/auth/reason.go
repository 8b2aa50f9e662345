package auth

import "errors"

// Failure reasons: why a login was refused, named for the login_failures_total metric
// (docs/metrics.md). FailureReason gives one for an error of Login.
const (
	ReasonCredentials = "credentials"
	ReasonProtocol    = "protocol_not_allowed"
	ReasonDisabled    = "disabled"
	ReasonBlocked     = "blocked" // the address is blocked after repeated failures
	ReasonOther       = "other"
)

// FailureReason names why Login refused a login with err: one of the Reason* values.
func FailureReason(err error) string {
	switch {
	case errors.Is(err, ErrFailed):
		return ReasonCredentials
	case errors.Is(err, ErrProtocolNotAllowed):
		return ReasonProtocol
	case errors.Is(err, ErrDisabled):
		return ReasonDisabled
	case errors.Is(err, ErrBlocked):
		return ReasonBlocked
	}
	return ReasonOther
}
