package ui

import (
	"context"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
)

var _ ReceptionDesk = (*appSession)(nil)

// OpenIssuance implements ReceptionDesk.
func (a *appSession) OpenIssuance(ctx context.Context, req IssuanceApplication) (*workflow.Case, error) {
	if req.Kind != workflow.NewIssuance && req.Kind != workflow.Renewal {
		return nil, apperr.New(apperr.InvalidInput, "ui: %q is not an issuance kind", req.Kind)
	}
	return a.s.OpenCase(ctx, app.CaseRequest{Kind: req.Kind, ResidentFile: req.ResidentFile, CertTypes: req.CertTypes,
		NewCard: req.NewCard, CurrentExpiry: req.CurrentExpiry})
}

// SetSubstitutions implements ReceptionDesk.
func (a *appSession) SetSubstitutions(ctx context.Context, caseID int64, subs []resident.Substitution) (*workflow.Case, error) {
	return a.s.SetSubstitutions(ctx, caseID, subs)
}

// RecordIdentity implements ReceptionDesk.
func (a *appSession) RecordIdentity(ctx context.Context, caseID int64, e workflow.Evidence) (*workflow.Case, error) {
	return a.s.RecordIdentity(ctx, caseID, e)
}

// RecordExplanation implements ReceptionDesk.
func (a *appSession) RecordExplanation(ctx context.Context, caseID int64, items []workflow.Item) (*workflow.Case, error) {
	return a.s.RecordExplanation(ctx, caseID, items)
}

// StopCase implements ReceptionDesk.
func (a *appSession) StopCase(ctx context.Context, caseID int64, reason string) error {
	_, err := a.s.Stop(ctx, caseID, reason)
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
	return a.s.Issue(ctx, app.IssueRequest{CaseID: order.CaseID, PINs: pins, CardExpiry: order.CardExpiry, Progress: order.Progress})
}

// IssuanceNotice implements ReceptionDesk: the holder's notice of what was put on the card,
// with the explanations recorded for the case (TS Art. 9; G Art. 8), rendered by the domain.
func (a *appSession) IssuanceNotice(ctx context.Context, caseID int64, res *issue.Result) ([]byte, error) {
	return a.s.IssuanceNotice(ctx, caseID, res)
}
