package ui

import (
	"context"
	"time"

	"madoguchi/app/printout"
)

// This file declares what the counter-procedure screens (revocation, loss report, hold release,
// certificate copy) and the CS resident-changes screen need from the domain: small consumer-side
// interfaces that a Session offers. appbackend_revoke.go adapts app.Session to them; screen
// tests use in-process fakes. Each refusal is an *apperr.Error (or an error with an
// apperr.Kind), so the screens branch with errors.Is.

// ProcedureKind names a counter procedure other than issuance (app/workflow kinds).
type ProcedureKind string

// The counter procedures these screens run.
const (
	// ProcRevocation is revocation at the holder's request (失効申請; CPS §4.9.3.1).
	ProcRevocation ProcedureKind = "revocation"
	// ProcLossReport is the report of a lost, leaked or unusable card (紛失・危殆化の届出): counter
	// only, in writing (CPS §4.9.3.1(2)).
	ProcLossReport ProcedureKind = "loss_report"
	// ProcHoldRelease releases a hold, only at the counter (CPS §4.9.13–16).
	ProcHoldRelease ProcedureKind = "hold_release"
	// ProcCertificateCopy hands over a human-readable copy of a certificate (CPS §4.4.1.1).
	ProcCertificateCopy ProcedureKind = "certificate_copy"
)

// ProcedureCase is what the screens show of one case.
type ProcedureCase struct {
	ID            int64
	Kind          ProcedureKind
	State         string // opened, identity_checked, approved, completed, refused, stopped
	RecordCode    string // 住民票コード of the applicant
	ApplicantName string
	// RefusalReason and StopReason are set when the case ended without the procedure.
	RefusalReason, StopReason string
}

// Final reports whether the case accepts no more steps.
func (c ProcedureCase) Final() bool {
	return c.State == "completed" || c.State == "refused" || c.State == "stopped"
}

// IdentityDocument is a photo identity document issued by a public office (R02 II-2-2(2)ア,
// CPS §3.2.3); the values are app/workflow's.
type IdentityDocument string

// The accepted documents, in the order the form offers them.
var IdentityDocuments = []IdentityDocument{
	"my_number_card", "drivers_licence", "passport", "residence_card",
	"special_permanent_resident_certificate", "disability_certificate_with_photo", "other_official_photo_id",
}

// ProcedureEvidence is the identity check recorded for a case (CPS §3.2, §4.1.2.1; R02 II-2-6).
type ProcedureEvidence struct {
	Document    IdentityDocument
	DocumentRef string // e.g. the last 4 characters of the document number
	Proxy       bool   // 代理人: then PowerOfAttorney, InquiryReply, ProxyName, ProxyDocument
	// PowerOfAttorney (委任状) and InquiryReply (照会書回答書) were presented by the proxy.
	PowerOfAttorney, InquiryReply bool
	ProxyName                     string
	ProxyDocument                 IdentityDocument
	// Doubt, when not empty, stops the case: no procedure (CPS §4.1.2.1(3)).
	Doubt string
}

// CounterProcedures is the case life of a counter procedure (app/workflow): open for a resident,
// record the identity check, decide (approve or refuse with a reason, R02 II-8-1(3)), stop.
// The domain checks the Reception permission on every call (TS Art. 3(4)) and audits it.
type CounterProcedures interface {
	// OpenProcedure opens a case of kind for the resident with this 住民票コード.
	OpenProcedure(ctx context.Context, kind ProcedureKind, recordCode string) (ProcedureCase, error)
	// RecordProcedureIdentity records the identity check; a doubt stops the case and returns an
	// error of kind IdentityDoubt together with the stopped case.
	RecordProcedureIdentity(ctx context.Context, caseID int64, e ProcedureEvidence) (ProcedureCase, error)
	// ApproveProcedure records the operator's decision to proceed.
	ApproveProcedure(ctx context.Context, caseID int64) (ProcedureCase, error)
	// RefuseProcedure ends the case with the recorded reason (kind ReasonRequired when empty).
	RefuseProcedure(ctx context.Context, caseID int64, reason string) (ProcedureCase, error)
	// StopProcedure ends the case because the applicant withdrew or a doubt arose.
	StopProcedure(ctx context.Context, caseID int64, reason string) (ProcedureCase, error)
}

// CertType is which certificate of the card a procedure is about (DOMAIN §2).
type CertType string

// The two certificates of a card.
const (
	CertSignature CertType = "signature" // 署名用電子証明書
	CertUserAuth  CertType = "user_auth" // 利用者証明用電子証明書
)

// RevocationRequestKind is the kind of a counter revocation request in the CA's rule table
// (ca-server/revocation/rules.json "requests"); the CA derives the reason code from it.
type RevocationRequestKind string

// The request kinds the counter may send (CPS §4.9.3.1, §4.9.1.1(1)).
const (
	// RevokeStopUsing: the holder no longer needs the certificate (reason 5).
	RevokeStopUsing RevocationRequestKind = "stop-using"
	// RevokeCardAbolished: the My Number card was abolished (reason 5).
	RevokeCardAbolished RevocationRequestKind = "card-abolished"
	// RevokeKeyCompromise: the key leaked, was lost or damaged (reason 1), counter only.
	RevokeKeyCompromise RevocationRequestKind = "key-compromise"
	// RevokeCardUnusable: the card can no longer be used (reason 1), counter only.
	RevokeCardUnusable RevocationRequestKind = "card-unusable"
)

// RevocationOrder asks the domain to have the CA revoke certificates of an approved case.
type RevocationOrder struct {
	CaseID int64
	// Serials names each certificate to revoke by its serial number (hexadecimal, as on the
	// issuance notice or the certificate copy).
	Serials map[CertType]string
	Kind    RevocationRequestKind
	// WrittenRequest is the reference of the holder's written request (申請書の受付番号等).
	WrittenRequest string
}

// RevokedCertificate is one certificate the CA revoked, as its acknowledgement says.
type RevokedCertificate struct {
	CertType  CertType
	Serial    string
	Reason    int    // CPS §4.9.9 code
	ReasonJa  string // JPKI meaning in Japanese, from the CA's rule table
	ReasonEn  string // the same in English
	RevokedAt time.Time
}

// RevocationReceipt is the outcome of a counter revocation: what the CA revoked and the data of
// the written acknowledgement for the holder (CPS §4.9.3.1), which the screen renders with
// Shell.Printer. Revoked may be non-empty together with an error: the CA revoked some
// certificates before refusing one.
type RevocationReceipt struct {
	Revoked []RevokedCertificate
	Notice  printout.RevocationNotice
}

// RevocationDesk revokes at the counter through the CA. The CA's refusals keep their cause, so
// an already revoked certificate is told apart (caRefusalKey).
type RevocationDesk interface {
	CounterProcedures
	RevokeAtCounter(ctx context.Context, order RevocationOrder) (RevocationReceipt, error)
	// RevocationNoticePDF renders the written acknowledgement (kind NotSupported when the
	// terminal has no print fonts).
	RevocationNoticePDF(ctx context.Context, n printout.RevocationNotice) ([]byte, error)
}

// HoldReleaseOrder asks the domain to have the CA release the hold of one certificate of an
// approved hold-release case (CPS §4.9.13–16). One certificate per case: the domain completes
// the case with the release.
type HoldReleaseOrder struct {
	CaseID   int64
	CertType CertType
	Serial   string // hexadecimal
}

// HoldReleaseDesk releases holds at the counter through the CA; a certificate that is not on
// hold is refused and told apart (caRefusalKey).
type HoldReleaseDesk interface {
	CounterProcedures
	ReleaseHoldAtCounter(ctx context.Context, order HoldReleaseOrder) (state string, err error)
}

// ResidentChangeKind is a change of the resident register that can revoke certificates
// (R02 II-3-1(2)); the values are app/resident's.
type ResidentChangeKind string

// The changes the CS screen records.
const (
	ChangeMoveOut    ResidentChangeKind = "move_out"
	ChangeMoveIn     ResidentChangeKind = "move_in"
	ChangeName       ResidentChangeKind = "name_change"
	ChangeDeath      ResidentChangeKind = "death"
	ChangeEmigration ResidentChangeKind = "emigration"
)

// ResidentChangeEntry is one change to record.
type ResidentChangeEntry struct {
	RecordCode string
	Kind       ResidentChangeKind
	Effective  string // YYYY-MM-DD
	NewName    string // name change
	NewKana    string // name change
	NewAddress string // move-in
}

// OutboxState is where a recorded change is on its way to the CA.
type OutboxState string

// The outbox states.
const (
	OutboxPending OutboxState = "pending" // recorded, not sent yet
	OutboxWaiting OutboxState = "waiting" // not due yet (future date, backoff, earlier change first)
	OutboxFailed  OutboxState = "failed"  // the last attempt failed; retried later
	OutboxSent    OutboxState = "sent"    // delivered to the CA
)

// OutboxEntry is one recorded change on its way to the CA (異動等失効情報).
type OutboxEntry struct {
	ID         int64
	RecordCode string
	Kind       ResidentChangeKind
	Effective  string
	RecordedAt time.Time
	State      OutboxState
	Attempts   int        // failed deliveries so far
	Revoked    []CertType // sent: what the CA revoked at once
	Deferred   []CertType // sent: what the CA revokes later unless cancelled (move-out, 30 days)
	Failure    error      // failed: why
}

// ResidentChangeDesk records resident changes and shows the outbox (CS permission, checked by
// the domain: TS Art. 3(4)).
type ResidentChangeDesk interface {
	ResidentSearcher // the resident whose record changed is found by the shared search form
	RecordChange(ctx context.Context, c ResidentChangeEntry) error
	// PendingOutbox lists the changes not yet delivered, oldest first.
	PendingOutbox(ctx context.Context) ([]OutboxEntry, error)
	// SendOutbox delivers what is due now and says what happened to each pending change.
	SendOutbox(ctx context.Context) ([]OutboxEntry, error)
}

// CertificateCopy is one certificate read from the holder's card, as its human-readable copy
// (CPS §4.4.1.1) and the printable PDF of it.
type CertificateCopy struct {
	Copy printout.CertificateCopy
	PDF  []byte
}

// CardPINRefused is a PIN the card refused when the holder entered it to let the signature
// certificate be read; TriesLeft is what the card says is left (0: blocked).
type CardPINRefused struct {
	TriesLeft int
	Blocked   bool
	Err       error
}

func (e *CardPINRefused) Error() string { return "ui: the card refused the pin: " + e.Err.Error() }

// Unwrap returns the card's error.
func (e *CardPINRefused) Unwrap() error { return e.Err }

// CertificateCopyDesk reads certificates from the card in the reader for an approved
// certificate-copy case and renders their copies; the signature certificate carries the four
// items (TS Art. 11) and the card lets it be read only after the holder entered the signature
// PIN, which pin asks of the holder on the applicant-facing screen (called at most once per
// copy; the caller overwrites the slice after use).
type CertificateCopyDesk interface {
	CounterProcedures
	CopyFromCard(ctx context.Context, caseID int64, t CertType, pin func(ctx context.Context) ([]byte, error)) (CertificateCopy, error)
	// CompleteProcedure marks the approved case done once the copies are handed over.
	CompleteProcedure(ctx context.Context, caseID int64) (ProcedureCase, error)
}
