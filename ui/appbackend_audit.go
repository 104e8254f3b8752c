package ui

import (
	"context"
	"errors"
	"io"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
)

var _ AuditLog = (*appSession)(nil)

// AuditRecords implements AuditLog. The domain selects by operator (TS Art. 20(2)(ii)); the date
// range is applied here because the domain's history call has no date filter. Reading is
// recorded by the domain as audit.history.
func (a *appSession) AuditRecords(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	recs, err := a.Session.History(ctx, f.Operator)
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, 0, len(recs))
	for _, r := range recs {
		if !f.From.IsZero() && r.At.Before(f.From) || !f.To.IsZero() && !r.At.Before(f.To) {
			continue
		}
		out = append(out, AuditEntry{Seq: r.Seq, At: r.At, Operator: r.Operator, Action: r.Action, Target: r.Target,
			Result: r.Result, Detail: r.Detail})
	}
	return out, nil
}

// CheckAuditChain implements AuditLog.
func (a *appSession) CheckAuditChain(ctx context.Context) (AuditCheck, error) {
	rep, err := a.Session.VerifyAudit(ctx)
	check := AuditCheck{Records: rep.Records, Witnessed: rep.Witnessed, Unwitnessed: rep.Unwitnessed, CAConsulted: rep.CAConsulted}
	if rep.Problem != nil {
		check.BadSeq, check.Reason = rep.Problem.Seq, rep.Problem.Reason
	}
	if err != nil && !(errors.Is(err, apperr.AuditBroken) && rep.Problem != nil) {
		return check, err
	}
	return check, nil
}

// ExportAuditRecords implements AuditLog.
func (a *appSession) ExportAuditRecords(ctx context.Context, f AuditFilter, format ExportFormat, w io.Writer) error {
	af := audit.Filter{Operator: f.Operator, From: f.From, To: f.To}
	return a.Session.ExportAudit(ctx, af, audit.Format(format), w)
}
