package app

import (
	"context"
	"strconv"
	"time"

	"madoguchi/app/issue"
	"madoguchi/app/operator"
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

// IssueRequest is one issuance at the counter: the case, the card in the reader, the
// applicant-facing PIN screen, and the card's expiry date (CPS §6.3.2.2).
type IssueRequest struct {
	CaseID     int64
	Card       issue.Card
	PINs       issue.PINEntry
	CardExpiry time.Time
	// Progress is told each step of the issuance as it begins (issue.Request.Progress).
	Progress func(step issue.Step, certType workflow.CertType)
}

// Issue puts the certificates of an approved (or explained) issuance case on the card
// (Reception; TS Art. 3(4)). Refusals of the gate are audited here; the issuance itself
// audits its start, each delivery and each abort. Errors from the orchestration are
// *issue.Error, whose kind, detail and notes give the operator's message.
func (s *Session) Issue(ctx context.Context, o *issue.Orchestrator, req IssueRequest) (*issue.Result, error) {
	if err := s.precheck(ctx, "case.issue", strconv.FormatInt(req.CaseID, 10), operator.Reception, nil); err != nil {
		return nil, err
	}
	return o.Issue(ctx, issue.Request{Operator: s.operatorID, CaseID: req.CaseID, Card: req.Card, PINs: req.PINs, CardExpiry: req.CardExpiry, Progress: req.Progress})
}
