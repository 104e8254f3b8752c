package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/revocation"
	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// maxClockSkew bounds how far in the future a reported change may lie.
const maxClockSkew = 5 * time.Minute

// plan turns the rules table's rows for one event into what the store
// applies: revoke rows now, revoke-after rows at their deadline (the rules'
// own day count, Civil Code Arts. 140–141), cancel rows against earlier
// deferrals; continue rows (国外転出者 on the 戸籍の附票 path) do nothing.
func (s *Service) plan(ev revocation.Event) (store.ChangePlan, []string, error) {
	var p store.ChangePlan
	var continued []string
	if !s.cfg.Rules.KnownEvent(ev.Kind) {
		return p, nil, fmt.Errorf("%w: %q", revocation.ErrUnknownEvent, ev.Kind)
	}
	for _, c := range s.cfg.Rules.Changes {
		if c.Event != ev.Kind {
			continue
		}
		t := store.CertType(c.Cert)
		switch c.Action {
		case revocation.ActionRevoke:
			p.Revoke = append(p.Revoke, store.PlannedRevocation{CertType: t, Reason: int(c.Reason)})
		case revocation.ActionRevokeAfter:
			due, ok := s.cfg.Rules.NextCheck([]revocation.Event{ev}, ev.At)
			if !ok {
				return p, nil, fmt.Errorf("status: rules give no deadline for %q", ev.Kind)
			}
			p.Defer = append(p.Defer, store.PlannedDeferral{CertType: t, Reason: int(c.Reason), Due: due, Unless: c.Unless})
		case revocation.ActionCancel:
			p.Cancel = append(p.Cancel, store.PlannedCancel{CertType: t, Event: c.Cancels})
		case revocation.ActionContinue:
			continued = append(continued, string(t)+" on "+c.Path)
		}
	}
	return p, continued, nil
}

// ResidentChange records that a person's resident record changed and
// applies the change-driven rules (R02 II-3-1(2); CPS §4.9.1.1(2)): the
// signature certificate is revoked on any change of the four items or
// death, the user-authentication certificate on deletion of the record,
// and 30 days after a move-out unless a move-in comes first (ApplyDue). The
// CA keeps only the person hash, the event kind and the time.
//
// Authority (issue 13, threat 3; store/authority.go): a municipality reports
// changes only for its own residents (other_municipality otherwise, nothing
// recorded). Its move-in report for a person of another municipality is
// accepted once that municipality reported the move-out (転出届, then 転入届
// at the new municipality: R02 II-3-1(2), DOMAIN §5), and makes the person
// its resident; a person the CA knows nothing of may be reported by any
// municipality (no certificate of theirs to protect).
func (s *Service) ResidentChange(ctx context.Context, c Caller, req wire.ResidentChangeRequest) (wire.ResidentChangeResponse, error) {
	if !validRequestID(req.RequestID) {
		return wire.ResidentChangeResponse{}, wire.Errorf(wire.CodeInvalidRequest, "request_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	if !validResidentCode(req.ResidentCode) {
		return wire.ResidentChangeResponse{}, wire.Errorf(wire.CodeInvalidRequest, "resident_code must be 11 digits")
	}
	now := s.cfg.Clock()
	if req.OccurredAt.IsZero() || req.OccurredAt.After(now.Add(maxClockSkew)) {
		return wire.ResidentChangeResponse{}, wire.Errorf(wire.CodeInvalidRequest, "occurred_at is required and must not be in the future")
	}
	if c.Municipality == "" {
		return wire.ResidentChangeResponse{}, wire.Errorf(wire.CodeOtherMunicipality, "the terminal has no municipality")
	}
	person, err := s.personHash(ctx, req.ResidentCode)
	if err != nil {
		return wire.ResidentChangeResponse{}, err
	}
	p, _, err := s.plan(revocation.Event{PersonHash: person, Kind: req.Event, At: req.OccurredAt})
	if err != nil {
		return wire.ResidentChangeResponse{}, rulesError(err)
	}
	out, err := s.cfg.Store.ApplyResidentChange(ctx, store.ResidentChange{PersonHash: person, Event: req.Event, OccurredAt: req.OccurredAt,
		ReceivedAt: now, Terminal: c.TerminalID, Operator: c.OperatorID, RequestID: req.RequestID, Municipality: c.Municipality}, p)
	if err != nil {
		return wire.ResidentChangeResponse{}, storeError(err)
	}
	resp := wire.ResidentChangeResponse{ChangeID: out.Change.ID, Event: out.Change.Event, Replayed: out.Replayed, Revoked: []string{}, Deferred: []string{}, Cancelled: out.Cancelled}
	for _, r := range out.Revoked {
		resp.Revoked = append(resp.Revoked, string(r.CertType))
		s.changed(ctx, r)
	}
	if !out.Replayed {
		for _, d := range p.Defer {
			resp.Deferred = append(resp.Deferred, string(d.CertType))
		}
	}
	return resp, nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ApplyDue applies every deferred revocation due at the clock's now (the
// user-authentication certificate 30 days after a move-out without a
// move-in) and returns how many certificates it revoked. Each is audited.
func (s *Service) ApplyDue(ctx context.Context) (int, error) {
	n := 0
	for {
		now := s.cfg.Clock()
		due, err := s.cfg.Store.DuePendingRevocations(ctx, now, 100)
		if err != nil || len(due) == 0 {
			return n, err
		}
		for _, p := range due {
			pr, cert, err := s.cfg.Store.ApplyPendingRevocation(ctx, p.ID, "scheduler", now)
			if errors.Is(err, store.ErrState) {
				continue // cancelled or applied meanwhile
			}
			if err != nil {
				return n, err
			}
			target := fmt.Sprintf("pending:%d", pr.ID)
			if cert != nil {
				target = cert.Serial
				n++
				s.changed(ctx, *cert)
			}
			if err := s.record(ctx, audit.Entry{Operator: "scheduler", Action: "certificate.revoke.change-driven", Target: target,
				Result: "ok", Detail: fmt.Sprintf("%s: %s after %s without %s", pr.Outcome, pr.CertType, pr.Event, pr.Unless)}); err != nil {
				return n, err
			}
		}
	}
}
