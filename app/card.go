package app

import (
	"context"
	"errors"
	"fmt"

	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/printout"
	"madoguchi/app/workflow"
	"madoguchi/cardio"
	"madoguchi/raclient"
)

// The card in the terminal's reader: the procedures that need it (issuance, PIN reset, key
// destruction, certificate copy) open it themselves through Config.Cards, as they take the CA
// client from Config.CurrentCA, so the screens pass neither (issue 16).

// CardOpener connects exclusively to the card in the terminal's reader (app/cardreader.Open
// over the reader chosen in the settings): nothing may interleave commands with the CA's
// script. close releases the card.
type CardOpener func(ctx context.Context) (card issue.Card, close func(), err error)

// ErrNoCard is wrapped by the procedures when no card could be reached in the reader (no
// reader, no card, the PC/SC service down, or the terminal has no card reader).
var ErrNoCard = errors.New("app: no card in the reader")

// The card's and the CA's answers the screens tell apart, so that they need import neither
// cardio nor raclient: errors.As / errors.Is work on the errors the procedures return.
type (
	// CardPINError is the card's refusal of a PIN, with the tries left (cardio.PINError).
	CardPINError = cardio.PINError
)

var (
	ErrPINBlocked = cardio.ErrPINBlocked // the PIN is blocked on the card

	ErrAlreadyRevoked     = raclient.ErrAlreadyRevoked
	ErrNotOnHold          = raclient.ErrNotOnHold
	ErrCertificateExpired = raclient.ErrCertificateExpired
	ErrWrongCA            = raclient.ErrWrongCA
	ErrChannelNotAllowed  = raclient.ErrChannelNotAllowed
	ErrCANotFound         = raclient.ErrNotFound
	ErrForbidden          = raclient.ErrForbidden
	ErrCAUnreachable      = raclient.ErrUnavailable
)

// openCard opens the card in the terminal's reader (Config.Cards); errors wrap ErrNoCard.
func (t *Terminal) openCard(ctx context.Context) (issue.Card, func(), error) {
	if t.cfg.Cards == nil {
		return nil, nil, fmt.Errorf("%w: the terminal has no card reader", ErrNoCard)
	}
	card, closeCard, err := t.cfg.Cards(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoCard, err)
	}
	return card, closeCard, nil
}

// CopyFromCard reads the certificate of type typ from the holder's card in the terminal's
// reader for an approved CertificateCopy case (Reception) and returns its copy
// (CertificateCopy). For the signature certificate the holder's PIN (pin) is verified on the
// card first; the card's refusal comes back as a *CardPINError (or ErrPINBlocked). pin's bytes
// are cleared after use and go nowhere but the card.
func (s *Session) CopyFromCard(ctx context.Context, caseID int64, typ workflow.CertType, pin func(ctx context.Context) ([]byte, error)) (printout.CertificateCopy, error) {
	c, err := s.Case(ctx, caseID)
	if err != nil {
		return printout.CertificateCopy{}, err
	}
	if c.Kind != workflow.CertificateCopy || c.State != workflow.Approved {
		return printout.CertificateCopy{}, apperr.New(apperr.InvalidTransition, "app: case %d is a %s in state %s, not an approved certificate copy", caseID, c.Kind, c.State)
	}
	card, closeCard, err := s.t.openCard(ctx)
	if err != nil {
		return printout.CertificateCopy{}, err
	}
	defer closeCard()
	reader, ok := card.(CertificateReader)
	if !ok {
		return printout.CertificateCopy{}, apperr.New(apperr.NotSupported, "app: the card connection cannot read certificates")
	}
	if typ == workflow.SignatureCert {
		p, err := pin(ctx)
		if err != nil {
			return printout.CertificateCopy{}, err
		}
		err = card.VerifyPIN(ctx, cardio.Signature, p)
		clear(p)
		if err != nil {
			return printout.CertificateCopy{}, err
		}
	}
	return s.CertificateCopy(ctx, reader, typ)
}

// Printer returns the counter's document printer (Config.Printer), or kind NotSupported when
// the terminal has none.
func (t *Terminal) Printer() (*printout.Printer, error) {
	if t.cfg.Printer == nil {
		return nil, apperr.New(apperr.NotSupported, "app: the terminal has no printer for documents")
	}
	return t.cfg.Printer()
}

// Municipality is the issuing municipality printed on the counter's documents:
// Config.MunicipalityOf at this moment when set (it follows enrolment), else
// Config.Municipality.
func (t *Terminal) Municipality() string {
	if t.cfg.MunicipalityOf != nil {
		return t.cfg.MunicipalityOf()
	}
	return t.cfg.Municipality
}
