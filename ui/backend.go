package ui

import (
	"context"
	"time"

	"madoguchi/app/calink"
	"madoguchi/app/cardreader"
)

// Permission names one duty an operator may be granted. The CS duty and the reception duty are
// separate permissions, each granted only to the staff who need it (TS Art. 3(4)).
type Permission string

// The permissions the terminal's screens are gated on.
const (
	// PermissionNone marks a screen every logged-in operator may open (the home screen).
	PermissionNone Permission = ""
	// PermissionReception is the reception application's duty (受付窓口端末アプリケーション).
	PermissionReception Permission = "reception"
	// PermissionCS is the communication-server application's duty (CS端末アプリケーション).
	PermissionCS Permission = "cs"
	// PermissionSupervisor grants and withdraws operator permissions (TS Art. 3(4)).
	PermissionSupervisor Permission = "supervisor"
	// PermissionAudit reads the operation history (TS Art. 20(2)).
	PermissionAudit Permission = "audit"
)

// Operator is what the log-in screen may know about an operator before authentication.
type Operator struct {
	ID   string // operator id typed at the log-in screen (職員番号)
	Name string // display name
	// PasswordExempt reports that a supervisor exempted this operator from biometric log-in,
	// with a recorded reason, because biometrics is impracticable for them (TS Art. 3(3));
	// only such operators are offered the ID + password form.
	PasswordExempt bool
}

// ScanEvent is one step of a fingerprint verification as reported while it runs.
type ScanEvent int

// The fingerprint steps the log-in screen shows.
const (
	ScanWaiting ScanEvent = iota // the reader waits for a finger
	ScanRetry                    // the press was unusable (too short, off centre): press again
)

// Backend is what the screens need from the counter domain (app.Terminal). Implementations must
// be safe for concurrent use; calls may block and honour ctx.
//
// Refusals are *apperr.Error values (madoguchi/app/apperr); the screens branch on their Kind
// (errors.Is(err, apperr.FingerprintNoMatch), apperr.LockedOut, ...) to pick the message.
type Backend interface {
	// LookupOperator returns the public profile of the operator with this id, or an error of
	// kind NotFound. It authenticates nothing.
	LookupOperator(ctx context.Context, id string) (Operator, error)
	// LoginFingerprint verifies the operator's finger on the fingerprint reader (TS Art. 3(3):
	// operators of issuance and revocation log in biometrically). progress is called on the
	// backend's goroutine for each step; it must not block.
	LoginFingerprint(ctx context.Context, operatorID string, progress func(ScanEvent)) (Session, error)
	// LoginPassword logs in an operator exempted from biometrics; any other operator is refused
	// with kind PasswordNotAllowed.
	LoginPassword(ctx context.Context, operatorID, password string) (Session, error)
}

// Session is one logged-in operator. It is safe for concurrent use.
type Session interface {
	// Operator returns who is logged in.
	Operator() Operator
	// Allowed reports whether the operator currently holds permission p (PermissionNone: true).
	Allowed(p Permission) bool
	// Logout ends the session (recorded in the audit trail by the domain).
	Logout(ctx context.Context) error
	// Expired reports whether the domain ended the session (idle too long, or logged out), so
	// the shell can lock the screen without waiting for the operator's next action.
	Expired() bool
	// RecordPrinted records in the operator's history that document (app.Document*) of case
	// caseID was printed as job, or that printing failed with printErr.
	RecordPrinted(ctx context.Context, caseID int64, document string, job int, printErr error) error
	// RecordSettingChanged records in the operator's history that setting (app.Setting*) of this
	// terminal was changed to value, or that the change failed with changeErr.
	RecordSettingChanged(ctx context.Context, setting, value string, changeErr error) error
}

// CardStatus is what the status bar shows about the card reader.
type CardStatus = cardreader.Status

// The card reader states, in the order a counter session meets them (app/cardreader).
const (
	CardNoReader = cardreader.NoReader // no reader connected (or the PC/SC service is down)
	CardAbsent   = cardreader.Absent   // reader present, no card
	CardPresent  = cardreader.Present  // a card is in the reader
	CardRemoved  = cardreader.Removed  // the card was taken out (shown until the next insert)
)

// CardWatcher reports card reader changes. WatchCard calls report once with the current state,
// then on every change, from its own goroutine, until ctx is done; it returns ctx's error then,
// or another error if watching became impossible.
type CardWatcher interface {
	WatchCard(ctx context.Context, report func(CardStatus)) error
}

// CAStatus is what the status bar shows about the link to ca-server.
type CAStatus = calink.Status

// The CA link states (app/calink).
const (
	CAUnknown       = calink.Unknown       // not checked yet
	CAConnected     = calink.Connected     // the last mutual-TLS status request succeeded
	CAUnreachable   = calink.Unreachable   // the last status request failed
	CANotConfigured = calink.NotConfigured // the terminal has no CA address
)

// CAWatcher reports the CA link state like CardWatcher reports the reader.
type CAWatcher interface {
	WatchCA(ctx context.Context, report func(CAStatus)) error
}

// OperatorSummary is one row of the supervisor's operator list. It holds no password material.
type OperatorSummary struct {
	ID, Name       string
	Permissions    []Permission
	Active         bool // false: disabled by a supervisor
	Locked         bool // locked after repeated failed log-ins
	FingerEnrolled bool
	PasswordExempt bool // exempted from biometrics (TS Art. 3(3))
}

// OperatorDirectory is the supervisor's view of the operators. A Session that offers it
// implements it; the domain checks the Supervisor permission on every call (TS Art. 3(4)).
type OperatorDirectory interface {
	ListOperators(ctx context.Context) ([]OperatorSummary, error)
	// Unlock lifts the lockout of operator id.
	Unlock(ctx context.Context, id string) error
}

// AuditEntry is one record of the operation history: who asked, what, when, and the result
// (TS Art. 20(2)).
type AuditEntry struct {
	Seq      int64
	At       time.Time
	Operator string
	Action   string
	Target   string
	Result   string
	Detail   map[string]string // what the domain recorded besides (never secrets), e.g. the refusal's kind
}

// PINJudge applies the PIN rules of the domain to the PIN an applicant typed for a case (TS
// Art. 4: not easily guessed; the birthday rule needs the case's applicant). A Session that
// offers it implements it. Refusals are app/pinrule errors (errors.Is(err, apperr.WeakPIN)).
// Implementations never keep, log or record the PIN.
type PINJudge interface {
	CheckApplicantPIN(ctx context.Context, caseID int64, kind PINKind, pin []byte) error
}

// ResidentQuery selects residents; empty fields are ignored, at least one must be set.
type ResidentQuery struct {
	NameKana   string // prefix of the kana reading
	Name       string // part of the name
	BirthDate  string // YYYY-MM-DD
	RecordCode string // 住民票コード, exact
}

// ResidentSummary is one search result of the resident register.
type ResidentSummary struct {
	RecordCode, Name, NameKana, BirthDate string
	Status                                string // "resident", "abroad", "moved_out", "deceased"
}

// ResidentRegister is the CS application's view of the resident register (TS Art. 3(1)). A
// Session that offers it implements it; the domain checks the CS permission and audits the
// search criteria and every exported file.
type ResidentRegister interface {
	SearchResidents(ctx context.Context, q ResidentQuery) ([]ResidentSummary, error)
	// ExportResidentFile returns the integrity-protected resident-record file of one applicant,
	// which the reception application imports once, before it expires.
	ExportResidentFile(ctx context.Context, recordCode string) ([]byte, error)
}
