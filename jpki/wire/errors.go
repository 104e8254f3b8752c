package wire

import (
	"errors"
	"fmt"
)

// Code names one kind of failure. It is stable: the terminal's app keeps it
// as the detail code of an apperr kind (assets/translations words it), and
// ca-server/api maps it to an HTTP status in one table.
type Code string

// Codes.
const (
	// request shape
	CodeMalformedJSON    Code = "malformed_json"
	CodeUnknownField     Code = "unknown_field"
	CodeWrongType        Code = "wrong_type"
	CodeBodyTooLarge     Code = "body_too_large"
	CodeUnsupportedMedia Code = "unsupported_media_type"
	CodeInvalidRequest   Code = "invalid_request"
	CodeInvalidApplicant Code = "invalid_applicant"
	CodeInvalidCSR       Code = "invalid_csr"
	CodeRouteNotFound    Code = "route_not_found"
	CodeMethodNotAllowed Code = "method_not_allowed"

	// who is calling
	CodeOperatorRequired  Code = "operator_required"
	CodeClientCertMissing Code = "client_certificate_required"
	CodeClientCertInvalid Code = "client_certificate_untrusted"
	CodeClientCertExpired Code = "client_certificate_expired"
	CodeTerminalUnknown   Code = "terminal_unknown"
	CodeTerminalRevoked   Code = "terminal_revoked"
	CodeTokenInvalid      Code = "enrolment_token_invalid"

	// domain
	CodeNotFound           Code = "not_found"
	CodeDuplicatePerson    Code = "duplicate_person"
	CodePendingPerson      Code = "issuance_in_progress_for_person"
	CodeRequestIDReused    Code = "request_id_reused"
	CodeInvalidState       Code = "invalid_state"
	CodeChannelUsed        Code = "channel_used"
	CodeChannelExpired     Code = "channel_expired"
	CodeCardAuthFailed     Code = "card_authentication_failed"
	CodeCardResponseFailed Code = "card_response_invalid"
	// CodeRenewalTooEarly: a renewal while the person's current
	// certificate, by the CA's own record, has three months or more left
	// (CPS §4.7.1.1, §6.3.2.2 ①); HTTP 409.
	CodeRenewalTooEarly Code = "renewal_too_early"

	// server side
	CodeUnavailable Code = "unavailable"
	// CodeRateLimited: the client (source address, terminal or verifier)
	// has spent its request budget; retry after Retry-After (HTTP 429).
	CodeRateLimited Code = "rate_limited"
	CodeInternal    Code = "internal"
)

// Error is the ca-server's one error type: a Code, an English message safe
// to show to the caller, and an optional cause kept for logs only.
type Error struct {
	Code    Code
	Message string
	Err     error // not sent to the client
}

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with a cause.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code, so
// errors.Is(err, &wire.Error{Code: wire.CodeNotFound}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// CodeOf returns the Code of the first *Error in err's chain, or
// CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
