package ui

import (
	"context"
	"errors"

	"madoguchi/app/apperr"
)

// errorKey maps a refusal from the domain to the translation key of the message the clerk sees:
// the one place where domain errors become words (STYLE habit 4). The English error text itself
// is for logs, never shown.
func errorKey(err error) string {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "error.cancelled"
	}
	switch apperr.KindOf(err) {
	case apperr.NotFound:
		return "error.not_found"
	case apperr.BadCredentials:
		return "error.bad_credentials"
	case apperr.LockedOut:
		return "error.locked_out"
	case apperr.OperatorDisabled:
		return "error.operator_disabled"
	case apperr.PasswordNotAllowed:
		return "error.password_not_allowed"
	case apperr.FingerprintNoMatch:
		return "error.fingerprint_no_match"
	case apperr.FingerprintUnavailable:
		return "error.fingerprint_unavailable"
	case apperr.FingerprintNotEnrolled:
		return "error.fingerprint_not_enrolled"
	case apperr.PermissionDenied:
		return "error.permission_denied"
	case apperr.NotLoggedIn, apperr.SessionExpired:
		return "error.session_expired"
	case apperr.InvalidInput:
		return "error.invalid_input"
	case apperr.FileTampered:
		return "error.file_tampered"
	case apperr.FileExpired:
		return "error.file_expired"
	case apperr.FileUsed:
		return "error.file_used"
	case apperr.ResidentNotEligible:
		return "error.resident_not_eligible"
	case apperr.WeakPIN:
		return "pin.error.weak"
	case apperr.Cancelled:
		return "error.cancelled"
	default:
		return "error.internal"
	}
}

// errorMessage returns the translated message for err.
func errorMessage(err error) string { return tr(errorKey(err)) }
