package ui

import (
	"context"
	"errors"
	"image"
	"time"

	"madoguchi/app"
	"madoguchi/app/calink"
	"madoguchi/app/issue"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
)

// ReceptionDesk is what the new-issuance wizard needs from the counter domain for the
// logged-in operator (Reception permission, TS Art. 3(4)). A Session that offers it implements
// it (appSession over app.Session); the domain checks the permission and audits every call.
//
// The value types are the domain's own (workflow.Case, workflow.Evidence, issue.Result): the
// wizard shows them and converts nothing.
type ReceptionDesk interface {
	// OpenIssuance imports a resident-record file from the CS application (integrity,
	// expiry and single use are checked, and the file is consumed) and opens an issuance case
	// (new issuance or renewal) as a describes. Refusals: kinds FileTampered, FileExpired,
	// FileUsed, ResidentNotEligible, RenewalTooEarly (CPS §6.3.2.2), InvalidInput.
	OpenIssuance(ctx context.Context, a IssuanceApplication) (*workflow.Case, error)
	// SetSubstitutions records the 外字 substitutions of the case: names by the applicant's
	// choice, addresses by their fixed substitute (R02 II-2-5(4)(5)). Refusals: InvalidInput
	// (a substitute that does not fit), InvalidTransition.
	SetSubstitutions(ctx context.Context, caseID int64, subs []resident.Substitution) (*workflow.Case, error)
	// RecordIdentity records the identity evidence. A doubt stops the case and returns the
	// stopped case with an error of kind IdentityDoubt (CPS §4.1.2.1(3)).
	RecordIdentity(ctx context.Context, caseID int64, e workflow.Evidence) (*workflow.Case, error)
	// RecordExplanation records the TS Art. 9 explanations the applicant acknowledged.
	RecordExplanation(ctx context.Context, caseID int64, items []workflow.Item) (*workflow.Case, error)
	// StopCase ends the case (applicant withdrew, operator's doubt) with a reason.
	StopCase(ctx context.Context, caseID int64, reason string) error
	// Issue puts the case's certificates on the card in the reader. It blocks until the
	// issuance ends; order.Progress and order.PIN are called on the issuing goroutine.
	// Errors carry an apperr kind, detail and notes that receptionMessage words; a failure
	// after the CA issued means the certificates were revoked before delivery (issue.Error).
	Issue(ctx context.Context, order IssuanceOrder) (*issue.Result, error)
	// IssuanceNotice renders the issuance notice (PDF) of a delivered case.
	IssuanceNotice(ctx context.Context, caseID int64, res *issue.Result) ([]byte, error)
}

// IssuanceApplication is what the wizard's first step opens an issuance case with.
type IssuanceApplication struct {
	// Kind is workflow.NewIssuance (新規発行) or workflow.Renewal (更新).
	Kind         workflow.Kind
	ResidentFile []byte
	CertTypes    []workflow.CertType
	// NewCard: the certificates go on a new card (新しいカードへの発行); the ones on the old
	// card are superseded.
	NewCard bool
	// CurrentExpiry is the expiry of the current certificate (renewal only): renewal opens
	// less than 3 months before it (CPS §6.3.2.2).
	CurrentExpiry time.Time
}

// IssuanceOrder is one issuance started from the wizard.
type IssuanceOrder struct {
	CaseID int64
	// CardExpiry is the expiry date printed on the card: certificates never outlive the card
	// (CPS §6.3.2.2).
	CardExpiry time.Time
	// Progress is told each step as it begins (issue.Request.Progress). It must not block.
	Progress func(step issue.Step, certType workflow.CertType)
	// PIN asks the applicant for one PIN on the applicant-facing screen and blocks until it is
	// entered; it returns a fresh slice that the caller overwrites after use, or an error when
	// the applicant gave up or ctx ended.
	PIN func(ctx context.Context, req ApplicantPINRequest) ([]byte, error)
}

// ApplicantPINRequest is one request of the issuance to the applicant-facing PIN screen.
type ApplicantPINRequest struct {
	Kind PINKind
	// Existing: the card's PIN is set already; the applicant types it once so the card can be
	// read back (the PIN rules are not applied again, the card judges it).
	Existing bool
	Attempt  int   // from 1
	Refused  error // why the previous entry was refused, nil on the first attempt
}

// ErrCardUnavailable (app.ErrNoCard) is wrapped by the procedures when no card could be
// reached in the reader (no reader, no card, card held by another program): nothing was
// started at the CA.
var ErrCardUnavailable = app.ErrNoCard

// ErrPINCancelled is returned by the PIN hand-over when the clerk cancels the applicant's entry.
var ErrPINCancelled = errors.New("ui: applicant pin entry cancelled")

// TerminalWiring is what the reception and settings screens need from the terminal's own
// wiring (main, over app/terminal): settings, where notices are saved, how they are previewed and
// printed. The zero value disables each part, and the screens say so.
type TerminalWiring struct {
	// Settings are this terminal's CA link and reader settings (supervisor screen).
	Settings TerminalSettings
	// NoticeDir is where issuance notices are saved as PDF files (created 0700, files 0600:
	// they carry personal data).
	NoticeDir string
	// Preview renders a PDF's first page for the on-screen preview; nil shows a text preview.
	Preview PDFRenderer
	// Print sends a saved PDF to the printer (printpreview.go); nil, or a printer that says it
	// is not Configured: the terminal has no printer and documents are saved only.
	Print DocumentPrinter
}

// PDFRenderer draws the first page of a PDF as an image.
type PDFRenderer interface {
	RenderFirstPage(ctx context.Context, pdf []byte) (image.Image, error)
}

// TerminalSettings are the supervisor's settings of this terminal: the CA's address, the card
// reader, and the enrolment of the terminal with the CA (a one-time token gives the terminal its
// client certificate for mutual TLS, TS Art. 7(i)). Implemented by app/calink.Link.
// Implementations must be safe for concurrent use.
type TerminalSettings interface {
	// Current returns the settings in effect.
	Current() TerminalConfig
	// SetCAURL changes the CA's https URL; the next issuance and the status bar use it.
	SetCAURL(ctx context.Context, url string) error
	// SetReader chooses the PC/SC reader ("" = the first one).
	SetReader(reader string) error
	// Readers lists the readers pcscd knows.
	Readers(ctx context.Context) ([]string, error)
	// Enrol makes the terminal's key, enrols it with token, and stores the certificate.
	Enrol(ctx context.Context, token string) (TerminalCertificate, error)
	// SetPrinter chooses the CUPS queue the counter's documents print to and its scheduler
	// ("" = the default), after checking the scheduler has the queue; queue "" prints nothing
	// (documents are saved as PDF only). Errors are app/printout/spool's.
	SetPrinter(ctx context.Context, queue, server string) error
	// PrintTestPage prints a page without personal data on the printer in effect.
	PrintTestPage(ctx context.Context) (job int, err error)
}

// TerminalConfig is what the settings screen shows.
type TerminalConfig = calink.Config

// TerminalCertificate describes the terminal's client certificate.
type TerminalCertificate = calink.Certificate
