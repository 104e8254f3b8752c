package ui

import (
	"context"
	"errors"
	"strings"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/printout"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
)

// appDesk adapts *app.Session to the counter-procedure and resident-change interfaces of
// screen_revoke_desk.go. It is a separate type (not methods of appSession) so that its method
// set stays with the screens that use it. Safe for concurrent use, as app.Session is.
type appDesk struct {
	s *app.Session
	t *app.Terminal // the document printer
}

var (
	_ CertificateCopyDesk = appDesk{}
	_ RevocationDesk      = appDesk{}
	_ HoldReleaseDesk     = appDesk{}
	_ ResidentChangeDesk  = appDesk{}
)

// deskOf returns what the logged-in session offers as a T: the session itself when it
// implements T (screen tests' fakes), or the adapter over the domain session.
func deskOf[T any](sess Session) (T, bool) {
	if d, ok := sess.(T); ok {
		return d, true
	}
	if a, ok := sess.(*appSession); ok {
		d, ok := any(appDesk{s: a.Session, t: a.t}).(T)
		return d, ok
	}
	var zero T
	return zero, false
}

func procedureCaseOf(c *workflow.Case) ProcedureCase {
	if c == nil {
		return ProcedureCase{}
	}
	return ProcedureCase{ID: c.ID, Kind: ProcedureKind(c.Kind), State: string(c.State), RecordCode: c.Applicant.RecordCode,
		ApplicantName: c.Applicant.Name, RefusalReason: c.RefusalReason, StopReason: c.StopReason}
}

func (d appDesk) OpenProcedure(ctx context.Context, kind ProcedureKind, recordCode string) (ProcedureCase, error) {
	c, err := d.s.OpenCase(ctx, app.CaseRequest{Kind: workflow.Kind(kind), RecordCode: recordCode})
	return procedureCaseOf(c), err
}

func (d appDesk) RecordProcedureIdentity(ctx context.Context, id int64, e ProcedureEvidence) (ProcedureCase, error) {
	c, err := d.s.RecordIdentity(ctx, id, workflow.Evidence{Document: workflow.Document(e.Document), DocumentRef: e.DocumentRef,
		Proxy: e.Proxy, PowerOfAttorney: e.PowerOfAttorney, InquiryReply: e.InquiryReply, ProxyName: e.ProxyName,
		ProxyDocument: workflow.Document(e.ProxyDocument), Doubt: e.Doubt})
	return procedureCaseOf(c), err
}

func (d appDesk) ApproveProcedure(ctx context.Context, id int64) (ProcedureCase, error) {
	c, err := d.s.Approve(ctx, id)
	return procedureCaseOf(c), err
}

func (d appDesk) RefuseProcedure(ctx context.Context, id int64, reason string) (ProcedureCase, error) {
	c, err := d.s.Refuse(ctx, id, reason)
	return procedureCaseOf(c), err
}

func (d appDesk) StopProcedure(ctx context.Context, id int64, reason string) (ProcedureCase, error) {
	c, err := d.s.Stop(ctx, id, reason)
	return procedureCaseOf(c), err
}

var wireCertType = map[string]CertType{"sign": CertSignature, "auth": CertUserAuth}

// RevokeAtCounter implements RevocationDesk with app.Session.Revoke, which completes the case.
func (d appDesk) RevokeAtCounter(ctx context.Context, o RevocationOrder) (RevocationReceipt, error) {
	req := app.RevokeRequest{CaseID: o.CaseID, Kind: string(o.Kind), WrittenRequest: o.WrittenRequest}
	for _, t := range []CertType{CertSignature, CertUserAuth} { // a stable order for the notice
		if serial, ok := o.Serials[t]; ok {
			req.Certificates = append(req.Certificates, app.CertRef{Type: workflow.CertType(t), Serial: serial})
		}
	}
	res, err := d.s.Revoke(ctx, req)
	var out RevocationReceipt
	if res != nil {
		out.Notice = res.Notice
		for _, a := range res.Acks {
			out.Revoked = append(out.Revoked, RevokedCertificate{CertType: wireCertType[a.CertType], Serial: strings.ToUpper(a.Serial),
				Reason: a.Reason, ReasonJa: a.ReasonJa, ReasonEn: a.ReasonEn, RevokedAt: a.RevokedAt})
		}
	}
	return out, err
}

// RevocationNoticePDF implements RevocationDesk with the terminal's document printer.
func (d appDesk) RevocationNoticePDF(ctx context.Context, n printout.RevocationNotice) ([]byte, error) {
	p, err := d.printer()
	if err != nil {
		return nil, err
	}
	return p.RevocationNotice(n)
}

// ReleaseHoldAtCounter implements HoldReleaseDesk with app.Session.ReleaseHold, which completes
// the case.
func (d appDesk) ReleaseHoldAtCounter(ctx context.Context, o HoldReleaseOrder) (string, error) {
	st, err := d.s.ReleaseHold(ctx, o.CaseID, app.CertRef{Type: workflow.CertType(o.CertType), Serial: o.Serial})
	return st.State, err
}

// printer is the terminal's document printer (kind NotSupported without one).
func (d appDesk) printer() (*printout.Printer, error) {
	if d.t == nil {
		return nil, apperr.New(apperr.NotSupported, "ui: the terminal has no printer for documents")
	}
	return d.t.Printer()
}

// CopyFromCard implements CertificateCopyDesk with app.Session.CopyFromCard, which reads the
// card in the terminal's reader, checks the certificate against the CA certificate on the card
// and audits the copy; the copy is rendered on the terminal's document printer.
func (d appDesk) CopyFromCard(ctx context.Context, caseID int64, t CertType, pin func(ctx context.Context) ([]byte, error)) (CertificateCopy, error) {
	printer, err := d.printer()
	if err != nil {
		return CertificateCopy{}, err
	}
	cp, err := d.s.CopyFromCard(ctx, caseID, workflow.CertType(t), pin)
	var pe *app.CardPINError
	switch {
	case errors.As(err, &pe):
		return CertificateCopy{}, &CardPINRefused{TriesLeft: pe.TriesLeft, Blocked: errors.Is(err, app.ErrPINBlocked), Err: err}
	case errors.Is(err, app.ErrPINBlocked):
		return CertificateCopy{}, &CardPINRefused{Blocked: true, Err: err}
	case err != nil:
		return CertificateCopy{}, err
	}
	pdf, err := printer.CertificateCopy(cp)
	if err != nil {
		return CertificateCopy{}, err
	}
	return CertificateCopy{Copy: cp, PDF: pdf}, nil
}

// CompleteProcedure implements CertificateCopyDesk.
func (d appDesk) CompleteProcedure(ctx context.Context, id int64) (ProcedureCase, error) {
	c, err := d.s.Complete(ctx, id)
	return procedureCaseOf(c), err
}

func (d appDesk) SearchResidents(ctx context.Context, q ResidentQuery) ([]ResidentSummary, error) {
	return (&appSession{Session: d.s}).SearchResidents(ctx, q)
}

func (d appDesk) RecordChange(ctx context.Context, c ResidentChangeEntry) error {
	return d.s.RecordResidentChange(ctx, resident.Change{RecordCode: c.RecordCode, Kind: resident.ChangeKind(c.Kind),
		Effective: c.Effective, NewName: c.NewName, NewKana: c.NewKana, NewAddress: c.NewAddress})
}

func outboxEntryOf(p resident.PendingChange) OutboxEntry {
	st := OutboxPending
	if p.Attempts > 0 {
		st = OutboxFailed
	}
	return OutboxEntry{ID: p.ID, RecordCode: p.RecordCode, Kind: ResidentChangeKind(p.Kind), Effective: p.Effective,
		RecordedAt: p.RecordedAt, State: st, Attempts: p.Attempts}
}

func (d appDesk) PendingOutbox(ctx context.Context) ([]OutboxEntry, error) {
	ps, err := d.s.PendingChanges(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]OutboxEntry, 0, len(ps))
	for _, p := range ps {
		out = append(out, outboxEntryOf(p))
	}
	return out, nil
}

func (d appDesk) SendOutbox(ctx context.Context) ([]OutboxEntry, error) {
	ds, err := d.s.SendResidentChanges(ctx)
	out := make([]OutboxEntry, 0, len(ds))
	for _, x := range ds {
		e := outboxEntryOf(x.Change)
		switch x.Outcome {
		case app.ChangeDelivered:
			e.State = OutboxSent
			for _, t := range x.Response.Revoked {
				e.Revoked = append(e.Revoked, wireCertType[t])
			}
			for _, t := range x.Response.Deferred {
				e.Deferred = append(e.Deferred, wireCertType[t])
			}
		case app.ChangeFailed:
			e.State, e.Failure, e.Attempts = OutboxFailed, x.Err, e.Attempts+1
		default:
			e.State = OutboxWaiting
		}
		out = append(out, e)
	}
	return out, err
}
