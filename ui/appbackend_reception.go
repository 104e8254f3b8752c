package ui

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/app/printout"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
)

// IssuanceLink is what the reception adapter needs besides the domain session to issue: the
// issuance orchestration over the current CA link, the card in the reader, and the printer of
// the issuance notice. The main package fills it; every function must be safe for concurrent
// use. A nil Issuer means the terminal has no CA link (issuance is refused with kind
// CAUnavailable).
type IssuanceLink struct {
	// Issuer returns the orchestration over the CA client in effect.
	Issuer func(ctx context.Context) (*issue.Orchestrator, error)
	// OpenCard connects to the card in the chosen reader, exclusively (nothing may interleave
	// commands with the CA's script); close releases it.
	OpenCard func(ctx context.Context) (card issue.Card, close func(), err error)
	// Printer returns the notice printer (fonts loaded on first use).
	Printer func() (*printout.Printer, error)
	// Municipality is printed on the notice (e.g. "東京都千代田区長").
	Municipality func() string
	// Now is the clock of the notice date (default time.Now).
	Now func() time.Time
	// CardMaintenance returns the CA client for the PIN reset and the key destruction (the
	// client the Issuer uses); nil: the terminal refuses them with kind CAUnavailable.
	CardMaintenance func(ctx context.Context) (app.CardMaintenanceCA, error)
}

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

// Issue implements ReceptionDesk: the orchestration with the card in the reader, the
// applicant's PINs through order.PIN (each PIN is handed to the card once and the slice
// overwritten).
func (a *appSession) Issue(ctx context.Context, order IssuanceOrder) (*issue.Result, error) {
	l := a.issuance
	if l == nil || l.Issuer == nil || l.OpenCard == nil {
		return nil, apperr.New(apperr.CAUnavailable, "ui: the terminal has no CA link")
	}
	o, err := l.Issuer(ctx)
	if err != nil {
		return nil, err
	}
	card, closeCard, err := l.OpenCard(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCardUnavailable, err)
	}
	defer closeCard()
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
	return a.s.Issue(ctx, o, app.IssueRequest{CaseID: order.CaseID, Card: card, PINs: pins, CardExpiry: order.CardExpiry, Progress: order.Progress})
}

// IssuanceNotice implements ReceptionDesk: the holder's notice of what was put on the card,
// with the explanations recorded for the case (TS Art. 9; G Art. 8).
func (a *appSession) IssuanceNotice(ctx context.Context, caseID int64, res *issue.Result) ([]byte, error) {
	l := a.issuance
	if l == nil || l.Printer == nil {
		return nil, apperr.New(apperr.NotSupported, "ui: the terminal has no printer for notices")
	}
	c, err := a.s.Case(ctx, caseID)
	if err != nil {
		return nil, err
	}
	p, err := l.Printer()
	if err != nil {
		return nil, err
	}
	n, err := noticeOf(c, res, a.op.ID, l)
	if err != nil {
		return nil, err
	}
	return p.Notice(n)
}

// noticeOf fills the notice from the case and the delivered certificates.
func noticeOf(c *workflow.Case, res *issue.Result, operatorID string, l *IssuanceLink) (printout.IssuanceNotice, error) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	municipality := ""
	if l.Municipality != nil {
		municipality = l.Municipality()
	}
	// The name as in the certificate: with the 外字 substitutions of the case (R02 II-2-5(4)).
	name, err := resident.Apply(c.Applicant.Name, "name", c.Substitutions)
	if err != nil {
		return printout.IssuanceNotice{}, err
	}
	n := printout.IssuanceNotice{Municipality: municipality, Date: now(), ReceiptNo: fmt.Sprint(c.ID), OperatorID: operatorID, HolderName: name}
	for _, d := range res.Delivered {
		kind, err := printout.KindOf(d.CertType)
		if err != nil {
			return n, err
		}
		cert, err := x509.ParseCertificate(d.Certificate)
		if err != nil {
			return n, apperr.Wrap(apperr.Internal, err, "ui: delivered certificate")
		}
		n.Certificates = append(n.Certificates, printout.Certificate{Kind: kind, Serial: cert.SerialNumber, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter})
	}
	ex, err := printout.ExplanationsOf(c.Explained)
	if err != nil {
		return n, err
	}
	n.Explanations = ex
	return n, nil
}
