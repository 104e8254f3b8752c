// Package apperr is the one error type of the counter domain: every refusal carries a Kind
// that callers branch on with errors.Is, and where the kind is too coarse for the person at the
// counter a Detail code (the CA's answer, the rule a PIN broke). app maps the errors of cardio,
// raclient, spool and its stores to kinds at its edge, as the CA's statusOf does; the words are
// found in one place, the table of package assets/translations (kind + detail → translation
// key), which the screens and the CLI both use. No package of app holds a sentence for a person.
//
// Error strings are English, lowercase and prefixed with the package that refused
// ("operator: ..."); they never contain a PIN, password or key.
package apperr

import (
	"errors"
	"fmt"
)

// Kind classifies a refusal. A Kind is itself an error so that
// errors.Is(err, apperr.LockedOut) works on any wrapped *Error.
type Kind uint8

// The kinds of refusal. Append only: the values are stored in audit details as names.
const (
	Internal               Kind = iota // unexpected failure (I/O, database)
	InvalidInput                       // malformed or missing input
	NotFound                           // no such operator, resident, case or file
	AlreadyExists                      // duplicate id
	NotLoggedIn                        // no session
	SessionExpired                     // idle log-out happened
	PermissionDenied                   // session lacks the permission (TS Art. 3(4))
	BadCredentials                     // wrong operator id or password
	LockedOut                          // too many failures; a supervisor must unlock
	OperatorDisabled                   // operator exists but is disabled
	PasswordNotAllowed                 // password log-in without exemption (TS Art. 3(3))
	FingerprintNoMatch                 // finger did not match
	FingerprintUnavailable             // no reader / fprintd failure / timeout
	FingerprintNotEnrolled             // operator has no enrolled finger
	LastSupervisor                     // change would leave no active supervisor
	ReasonRequired                     // exemption or refusal without a recorded reason
	WeakPIN                            // PIN rule violated (TS Art. 4); see pinrule.Error
	FileTampered                       // resident-record file signature mismatch
	FileExpired                        // resident-record file past its expiry
	FileUsed                           // resident-record file imported before
	InvalidTransition                  // workflow event not allowed in this state
	IdentityDoubt                      // identity check in doubt: case stopped (CPS §4.1.2.1(3))
	AuditBroken                        // audit chain verification failed
	RenewalTooEarly                    // renewal outside the < 3 months window (CPS §6.3.2.2)
	ResidentNotEligible                // resident status forbids the action (deceased, moved out)
	Cancelled                          // context cancelled or timed out
	NotSupported                       // the CA offers no endpoint for this yet (no fake success)
	CAUnavailable                      // the CA could not be reached; nothing changed there
	CardUnknown                        // the CA delivered no certificate to this card
	CardOtherMunicipality              // the card was issued through another municipality's counter
	CertificateNotRevoked              // key destruction while its certificate is valid or held: revoke first
	CardRefused                        // the card or the CA refused the card's answer (wrong card, bad MAC, removed)
	PINNotSet                          // the PIN was reset but the applicant set no new PIN
	CardNotApplicants                  // the card is neither blank stock nor the applicant's own (issue 17): nothing written
	PrintFailed                        // the print server did not print the document (app/printout/spool)
)

var kindNames = [...]string{
	Internal: "internal", InvalidInput: "invalid input", NotFound: "not found",
	AlreadyExists: "already exists", NotLoggedIn: "not logged in", SessionExpired: "session expired",
	PermissionDenied: "permission denied", BadCredentials: "bad credentials", LockedOut: "locked out",
	OperatorDisabled: "operator disabled", PasswordNotAllowed: "password login not allowed",
	FingerprintNoMatch: "fingerprint no match", FingerprintUnavailable: "fingerprint unavailable",
	FingerprintNotEnrolled: "fingerprint not enrolled", LastSupervisor: "last supervisor",
	ReasonRequired: "reason required", WeakPIN: "weak pin", FileTampered: "file tampered",
	FileExpired: "file expired", FileUsed: "file used", InvalidTransition: "invalid transition",
	IdentityDoubt: "identity doubt", AuditBroken: "audit broken", RenewalTooEarly: "renewal too early",
	ResidentNotEligible: "resident not eligible", Cancelled: "cancelled",
	NotSupported: "not supported by the ca", CAUnavailable: "ca unavailable",
	CardUnknown: "card unknown to the ca", CardOtherMunicipality: "card of another municipality",
	CertificateNotRevoked: "certificate not revoked", CardRefused: "card refused", PINNotSet: "pin not set",
	CardNotApplicants: "card not the applicant's", PrintFailed: "print failed",
}

// String returns the kind's stable English name (used in audit records).
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error makes a Kind usable as an errors.Is target.
func (k Kind) Error() string { return k.String() }

// Error is a refusal with a kind, a message and an optional cause.
type Error struct {
	Kind Kind
	// Detail, when set, names the refusal more closely than Kind for the person told about it:
	// a code of the table in assets/translations ("already_revoked": the CA's wire code).
	Detail string
	// Args fill the placeholders of the detail's sentence ("Tries": "2"); never a secret.
	Args map[string]string
	Msg  string // "pkg: what went wrong", without secrets
	Err  error  // cause, may be nil
}

// WithDetail returns an *Error of kind k and detail code detail whose message is msg and whose
// cause is err.
func WithDetail(k Kind, detail string, err error, msg string) *Error {
	return &Error{Kind: k, Detail: detail, Msg: msg, Err: err}
}

// New returns an *Error of kind k with a formatted message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k whose message is msg and whose cause is err.
func Wrap(k Kind, err error, msg string) *Error {
	return &Error{Kind: k, Msg: msg, Err: err}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is e's Kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// Kinded is implemented by errors of other packages that carry a Kind (pinrule.Error).
type Kinded interface {
	error
	ErrorKind() Kind
}

// ErrorKind returns e.Kind.
func (e *Error) ErrorKind() Kind { return e.Kind }

// ErrorDetail returns e.Detail.
func (e *Error) ErrorDetail() string { return e.Detail }

// ErrorArgs returns e.Args.
func (e *Error) ErrorArgs() map[string]string { return e.Args }

// ArgsOf returns the placeholder values of the error KindOf reads the kind from, or nil.
func ArgsOf(err error) map[string]string {
	var k Kinded
	if errors.As(err, &k) {
		if a, ok := k.(interface{ ErrorArgs() map[string]string }); ok {
			return a.ErrorArgs()
		}
	}
	return nil
}

// Detailed is implemented by Kinded errors that name their refusal more closely (a detail code).
type Detailed interface {
	ErrorDetail() string
}

// Noted is implemented by Kinded errors that have more to tell than their refusal: codes of
// further sentences, in order (an issuance failure: "aborted", "card_cleanup").
type Noted interface {
	ErrorNotes() []string
}

// DetailOf returns the detail code of the error KindOf reads the kind from, or "".
func DetailOf(err error) string {
	var k Kinded
	if errors.As(err, &k) {
		if d, ok := k.(Detailed); ok {
			return d.ErrorDetail()
		}
	}
	return ""
}

// NotesOf returns the note codes of the error KindOf reads the kind from.
func NotesOf(err error) []string {
	var k Kinded
	if errors.As(err, &k) {
		if n, ok := k.(Noted); ok {
			return n.ErrorNotes()
		}
	}
	return nil
}

// Message is an outcome that is not an error, told to a person in codes a user interface
// translates (assets/translations): Code picks the sentence, Args fill its placeholders (an
// argument named Cert holds a certificate-type code and is translated too), Notes are codes of
// further sentences.
type Message struct {
	Code  string
	Args  map[string]string
	Notes []string
}

// KindOf returns the Kind of the first Kinded error in err's chain, and Internal otherwise.
func KindOf(err error) Kind {
	var k Kinded
	if errors.As(err, &k) {
		return k.ErrorKind()
	}
	return Internal
}
