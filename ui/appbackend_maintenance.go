package ui

import (
	"context"

	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
)

// The card-maintenance screens over the domain: app.Session.ResetPIN and DestroyKeys, which take
// the CA client in effect and the card in the terminal's reader themselves.

var _ CardMaintenanceDesk = appDesk{}

// ResetPINAtCounter implements CardMaintenanceDesk. Each PIN the holder enters goes to the
// domain once (it checks the rules of TS Art. 4 and sets it on the card) and the slice is
// overwritten.
func (d appDesk) ResetPINAtCounter(ctx context.Context, caseID int64, which PINKind, newPIN func(ctx context.Context, req ApplicantPINRequest) ([]byte, error)) error {
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
	return d.s.ResetPIN(ctx, caseID, kind, entry)
}

// DestroyKeysAtCounter implements CardMaintenanceDesk.
func (d appDesk) DestroyKeysAtCounter(ctx context.Context, caseID int64) error {
	return d.s.DestroyKeys(ctx, caseID)
}
