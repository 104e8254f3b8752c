package ui

import (
	"context"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/app/workflow"
)

var _ ReceptionDesk = (*appSession)(nil)

// OpenIssuance implements ReceptionDesk.
func (a *appSession) OpenIssuance(ctx context.Context, req IssuanceApplication) (*workflow.Case, error) {
	if req.Kind != workflow.NewIssuance && req.Kind != workflow.Renewal {
		return nil, apperr.New(apperr.InvalidInput, "ui: %q is not an issuance kind", req.Kind)
	}
	return a.Session.OpenCase(ctx, app.CaseRequest{Kind: req.Kind, ResidentFile: req.ResidentFile, CertTypes: req.CertTypes,
		NewCard: req.NewCard, CurrentExpiry: req.CurrentExpiry})
}

// StopCase implements ReceptionDesk.
func (a *appSession) StopCase(ctx context.Context, caseID int64, reason string) error {
	_, err := a.Session.Stop(ctx, caseID, reason)
	return err
}

// Issue implements ReceptionDesk: the domain issues with the card in the terminal's reader and
// the CA client in effect, the applicant's PINs through order.PIN (each PIN is handed to the
// card once and the slice overwritten).
func (a *appSession) Issue(ctx context.Context, order IssuanceOrder) (*issue.Result, error) {
	pins := func(ctx context.Context, req issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		kind := PINSignature
		if req.Kind == pinrule.UserAuth {
			kind = PINUserAuth
		}
		b, err := order.PIN(ctx, ApplicantPINRequest{Kind: kind, Existing: req.Existing, Attempt: req.Attempt, Refused: req.Refused})
		if err != nil {
			return pinrule.PIN{}, pinrule.PIN{}, err
		}
		p := pinrule.New(string(b))
		clear(b)
		return p, p, nil
	}
	return a.Session.Issue(ctx, app.IssueRequest{CaseID: order.CaseID, PINs: pins, CardExpiry: order.CardExpiry, Progress: order.Progress})
}
