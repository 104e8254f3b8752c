package issue

import (
	"errors"
	"fmt"
	"strings"

	"madoguchi/app/apperr"
	"madoguchi/cardio"
	"madoguchi/raclient"
)

// Step names where an issuance failed.
type Step string

// The steps of an issuance, in order.
const (
	StepCase    Step = "case"    // loading and checking the reception case
	StepCard    Step = "card"    // reading the card serial, INITIALIZE UPDATE
	StepChannel Step = "channel" // opening the secure channel at the CA
	StepPrepare Step = "prepare" // the CA generating the key and issuing
	StepScript  Step = "script"  // relaying the CA's script to the card
	StepPIN     Step = "pin"     // the applicant setting the PINs
	StepVerify  Step = "verify"  // reading the card back and comparing
	StepConfirm Step = "confirm" // confirming delivery at the CA
)

// Sentinel causes, matched with errors.Is on an *Error.
var (
	// ErrBusy: another issuance or recovery holds this terminal's issuance lock (one card
	// reader, one issuance at a time).
	ErrBusy = errors.New("issue: another issuance is running on this terminal")
	// ErrUnresolved: the case has journal entries that recovery has not resolved yet.
	ErrUnresolved = errors.New("issue: earlier issuances of this case are not resolved; run recovery first")
	// ErrReadBack: the card read back through the JPKI AP does not hold what the CA issued.
	ErrReadBack = errors.New("issue: card content differs from what the CA issued")
	// ErrPINCancelled: the applicant did not finish setting the PINs.
	ErrPINCancelled = errors.New("issue: pin entry cancelled")
	// ErrNothingToIssue: every requested certificate of the case is delivered already.
	ErrNothingToIssue = errors.New("issue: every requested certificate of the case is delivered")
	// ErrCAAnswer: the CA answered something the protocol does not allow.
	ErrCAAnswer = errors.New("issue: unexpected answer from the CA")
)

// Error is a failed issuance: the step, what happened to the CA issuances of the case, and
// whether the card needs to be personalised again. It carries an apperr.Kind for callers that
// branch, and for the operator's message a detail code (why it stopped) and notes (what became
// of the certificates, what to do with the card), which assets/translations turns into words.
type Error struct {
	Step Step
	Kind apperr.Kind
	// Aborted: the issuances started by this call were revoked before delivery (reason 0).
	Aborted bool
	// AbortPending: at least one issuance could not be aborted at the CA now (unreachable); it
	// stays in the journal for Recover, and the CA revokes it at its deadline anyway.
	AbortPending bool
	// CardCleanup: the card may hold a key of an aborted issuance and must be personalised
	// again before it is handed out.
	CardCleanup bool
	Err         error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "issue: %s failed", e.Step)
	if e.Aborted {
		b.WriteString(" (revoked before delivery)")
	}
	if e.AbortPending {
		b.WriteString(" (abort pending)")
	}
	if e.CardCleanup {
		b.WriteString(" (card must be personalised again)")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorKind implements apperr.Kinded.
func (e *Error) ErrorKind() apperr.Kind { return e.Kind }

// ErrorDetail implements apperr.Detailed: why the issuance stopped, from the cause and the step.
func (e *Error) ErrorDetail() string {
	err := e.Err
	switch {
	case errors.Is(err, ErrBusy):
		return "issue.busy"
	case errors.Is(err, ErrUnresolved):
		return "issue.unresolved"
	case errors.Is(err, ErrNothingToIssue):
		return "issue.nothing_to_issue"
	case errors.Is(err, cardio.ErrCardSwapped):
		return "issue.card_swapped"
	case errors.Is(err, ErrReadBack):
		return "issue.read_back"
	case errors.Is(err, ErrPINCancelled):
		return "issue.pin_cancelled"
	case errors.Is(err, raclient.ErrCardOtherPerson):
		return "issue.card_other_person"
	case errors.Is(err, raclient.ErrCardStateUnknown), errors.Is(err, ErrCardNotApplicants):
		return "issue.card_not_applicants"
	case errors.Is(err, raclient.ErrDuplicatePerson):
		return "issue.duplicate_person"
	case errors.Is(err, raclient.ErrPendingPerson):
		return "issue.pending_person"
	case errors.Is(err, raclient.ErrRenewalTooEarly):
		return "issue.renewal_too_early"
	case errors.Is(err, raclient.ErrInvalidApplicant):
		return "issue.invalid_applicant"
	case errors.Is(err, raclient.ErrForbidden):
		return "issue.forbidden"
	case errors.Is(err, raclient.ErrCard):
		return "issue.card_authentication"
	case errors.Is(err, raclient.ErrChannelExpired):
		return "issue.channel_expired"
	case errors.Is(err, raclient.ErrUnavailable), errors.Is(err, raclient.ErrInternal):
		return "issue.ca_unavailable"
	case e.Kind == apperr.Cancelled:
		return "issue.cancelled"
	}
	switch e.Step {
	case StepCase:
		return "issue.case"
	case StepCard, StepScript, StepVerify:
		return "issue.card_io"
	case StepPIN:
		return "issue.pin"
	}
	return "issue.failed"
}

// ErrorNotes implements apperr.Noted: what happened at the CA, what to do with the card.
func (e *Error) ErrorNotes() []string {
	var notes []string
	switch {
	case e.AbortPending:
		notes = append(notes, "issue.abort_pending")
	case e.Aborted:
		notes = append(notes, "issue.aborted")
	}
	if e.CardCleanup {
		notes = append(notes, "issue.card_cleanup")
	}
	return notes
}
