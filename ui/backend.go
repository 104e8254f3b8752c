package ui

import (
	"context"
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
