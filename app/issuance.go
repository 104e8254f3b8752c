package app

import (
	"context"
	"crypto/x509"
	"fmt"
	"strconv"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/operator"
	"madoguchi/app/printout"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
)

// NewIssuer returns the issuance orchestration of this terminal (package issue) over the
// terminal database and clock, talking to the CA through ca (a *raclient.Client in
// production). caCerts are the CA certificates installed with the terminal, per type; the CA
// certificate read back from the card must equal them (nil: only the signature is checked).
func (t *Terminal) NewIssuer(ctx context.Context, ca issue.CA, caCerts map[workflow.CertType][]byte) (*issue.Orchestrator, error) {
	return issue.New(ctx, issue.Config{DB: t.db, CA: ca, Clock: t.cfg.Clock, CACertificates: caCerts})
}

// RecoverIssuances resolves the issuances a previous run left unfinished (terminal killed,
// power lost): each ends delivered or revoked before delivery (DESIGN "Issuance, end to end"
// step 6). Call it at start, before any log-in; it is recorded as operator "-". Show each
// Resolution's Message to the operator.
func (t *Terminal) RecoverIssuances(ctx context.Context, o *issue.Orchestrator) ([]issue.Resolution, error) {
	return o.Recover(ctx, "-")
}

// IssueRequest is one issuance at the counter: the case, the applicant-facing PIN screen, and
// the card's expiry date (CPS §6.3.2.2).
type IssueRequest struct {
	CaseID int64
	// Card is the card to issue onto: Issue sets it to the card in the terminal's reader;
	// IssueWith takes it as given.
	Card       issue.Card
	PINs       issue.PINEntry
	CardExpiry time.Time
	// Progress is told each step of the issuance as it begins (issue.Request.Progress).
	Progress func(step issue.Step, certType workflow.CertType)
}

// Issue puts the certificates of an approved (or explained) issuance case on the card in the
// terminal's reader (Reception; TS Art. 3(4)), through the CA client in effect now. Refusals
// of the gate are audited here; the issuance itself audits its start, each delivery and each
// abort. Without a CA: ErrNoCA; without a card: ErrNoCard. Errors from the orchestration are
// *issue.Error, whose kind, detail and notes give the operator's message.
func (s *Session) Issue(ctx context.Context, req IssueRequest) (*issue.Result, error) {
	if err := s.precheck(ctx, "case.issue", strconv.FormatInt(req.CaseID, 10), operator.Reception, nil); err != nil {
		return nil, err
	}
	o, err := s.t.issuerNow(ctx)
	if err != nil {
		return nil, err
	}
	card, closeCard, err := s.t.openCard(ctx)
	if err != nil {
		return nil, err
	}
	defer closeCard()
	req.Card = card
	return s.issue(ctx, o, req)
}

// IssueWith is Issue over a given orchestration and req.Card (the end-to-end tests and
// benchmarks, which swap cards and CA clients within one terminal).
func (s *Session) IssueWith(ctx context.Context, o *issue.Orchestrator, req IssueRequest) (*issue.Result, error) {
	if err := s.precheck(ctx, "case.issue", strconv.FormatInt(req.CaseID, 10), operator.Reception, nil); err != nil {
		return nil, err
	}
	return s.issue(ctx, o, req)
}

func (s *Session) issue(ctx context.Context, o *issue.Orchestrator, req IssueRequest) (*issue.Result, error) {
	return o.Issue(ctx, issue.Request{Operator: s.operatorID, CaseID: req.CaseID, Card: req.Card, PINs: req.PINs, CardExpiry: req.CardExpiry, Progress: req.Progress})
}

// IssuanceNotice renders the holder's notice of what an issuance put on the card, with the
// explanations recorded for the case (TS Art. 9; G Art. 8), on the terminal's document
// printer (kind NotSupported without one).
func (s *Session) IssuanceNotice(ctx context.Context, caseID int64, res *issue.Result) ([]byte, error) {
	if s.t.cfg.Printer == nil {
		return nil, apperr.New(apperr.NotSupported, "app: the terminal has no printer for notices")
	}
	c, err := s.Case(ctx, caseID)
	if err != nil {
		return nil, err
	}
	p, err := s.t.Printer()
	if err != nil {
		return nil, err
	}
	// The name as in the certificate: with the 外字 substitutions of the case (R02 II-2-5(4)).
	name, err := resident.Apply(c.Applicant.Name, "name", c.Substitutions)
	if err != nil {
		return nil, err
	}
	n := printout.IssuanceNotice{Municipality: s.t.Municipality(), Date: s.t.now(), ReceiptNo: fmt.Sprint(c.ID), OperatorID: s.operatorID, HolderName: name}
	for _, d := range res.Delivered {
		kind, err := printout.KindOf(d.CertType)
		if err != nil {
			return nil, err
		}
		cert, err := x509.ParseCertificate(d.Certificate)
		if err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "app: delivered certificate")
		}
		n.Certificates = append(n.Certificates, printout.Certificate{Kind: kind, Serial: cert.SerialNumber, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter})
	}
	if n.Explanations, err = printout.ExplanationsOf(c.Explained); err != nil {
		return nil, err
	}
	return p.Notice(n)
}
