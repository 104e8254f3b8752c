package ui

import (
	"context"
	"fmt"

	"madoguchi/app"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
)

// The card-maintenance screens over the domain: app.Session.ResetPIN and DestroyKeys with the
// CA client and the card of the terminal's wiring (IssuanceLink.CardMaintenance, OpenCard).

var _ CardMaintenanceDesk = appDesk{}

// maintenanceLink returns the CA client (nil when the terminal has none: the domain refuses
// with kind CAUnavailable, after its own checks of the case) and the card in the reader,
// opened exclusively (nothing may interleave commands with the CA's script).
func (d appDesk) maintenanceLink(ctx context.Context) (app.CardMaintenanceCA, issue.Card, func(), error) {
	var ca app.CardMaintenanceCA
	if d.link != nil && d.link.CardMaintenance != nil {
		c, err := d.link.CardMaintenance(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		ca = c
	}
	if d.link == nil || d.link.OpenCard == nil {
		return nil, nil, nil, fmt.Errorf("%w: the terminal has no card reader link", ErrCardUnavailable)
	}
	card, closeCard, err := d.link.OpenCard(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrCardUnavailable, err)
	}
	return ca, card, closeCard, nil
}

// ResetPINAtCounter implements CardMaintenanceDesk. Each PIN the holder enters goes to the
// domain once (it checks the rules of TS Art. 4 and sets it on the card) and the slice is
// overwritten.
func (d appDesk) ResetPINAtCounter(ctx context.Context, caseID int64, which PINKind, newPIN func(ctx context.Context, req ApplicantPINRequest) ([]byte, error)) error {
	ca, card, closeCard, err := d.maintenanceLink(ctx)
	if err != nil {
		return err
	}
	defer closeCard()
	kind := pinrule.Signature
	if which == PINUserAuth {
		kind = pinrule.UserAuth
	}
	entry := func(ctx context.Context, req issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		b, err := newPIN(ctx, ApplicantPINRequest{Kind: which, Existing: req.Existing, Attempt: req.Attempt, Refused: req.Refused})
		if err != nil {
			return pinrule.PIN{}, pinrule.PIN{}, err
		}
		// The PIN screen had it typed twice identically: the confirmation is the same PIN.
		p := pinrule.New(string(b))
		clear(b)
		return p, p, nil
	}
	return d.s.ResetPIN(ctx, caseID, ca, card, kind, entry)
}

// DestroyKeysAtCounter implements CardMaintenanceDesk.
func (d appDesk) DestroyKeysAtCounter(ctx context.Context, caseID int64) error {
	ca, card, closeCard, err := d.maintenanceLink(ctx)
	if err != nil {
		return err
	}
	defer closeCard()
	return d.s.DestroyKeys(ctx, caseID, ca, card)
}
