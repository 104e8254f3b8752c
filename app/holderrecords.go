package app

import (
	"context"
	"database/sql"
	"sort"
	"strconv"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/operator"
	"madoguchi/app/workflow"
)

// Holder record events.
const (
	HolderIssued      = "issued"       // a certificate delivered to the holder's card
	HolderIssueVoided = "issue-voided" // an issuance that did not reach the card, revoked by the CA (reason 0)
	HolderRevoked     = "revoked"      // revoked at the holder's request or on a loss report
	HolderReleased    = "hold-released"
)

// HolderEvent is one issuance or revocation made at this terminal for the holder. It names no
// staff member, card key or PIN: only what was done to which of the holder's certificates.
type HolderEvent struct {
	At       time.Time
	Event    string // HolderIssued, HolderIssueVoided, HolderRevoked, HolderReleased
	CertType workflow.CertType
	Serial   string // hexadecimal serial of the certificate (empty for a voided issuance)
	Reason   string // CRL reason code of a revocation (RFC 5280), when known
	CaseID   int64
	CaseKind workflow.Kind
}

// HolderRecord is what the holder is shown (R02 II-8: holders may see their own issuance and
// revocation records).
type HolderRecord struct {
	Name       string // the holder, as on the resident record of the request's case
	ProducedAt time.Time
	Events     []HolderEvent
}

// holderActions maps the audit actions that record issuance and revocation to events.
var holderActions = map[string]string{
	"issuance.delivered":       HolderIssued,
	"issuance.aborted":         HolderIssueVoided,
	"certificate.revoke":       HolderRevoked,
	"certificate.release_hold": HolderReleased,
}

// HolderRecords produces the holder's record of the issuances and revocations made at this
// terminal (Reception; R02 II-8), for a case whose applicant is the holder and whose identity
// check is recorded and approved (or completed): the records are personal data and are shown
// only to the person, after the same identity check as any other request (CPS §4.1.2.1). The
// events come from the audit chain (the terminal keeps it, CPS §5.4) for every case of the
// same resident-record code; the production itself is audited ("holder.records"). The CA holds
// the complete record across terminals; this is the terminal's part of it.
func (s *Session) HolderRecords(ctx context.Context, caseID int64) (*HolderRecord, error) {
	var out *HolderRecord
	detail := map[string]string{}
	err := s.call(ctx, "holder.records", strconv.FormatInt(caseID, 10), operator.Reception, detail, func(tx *sql.Tx, _ operator.Operator) error {
		c, err := workflow.Load(ctx, tx, caseID)
		if err != nil {
			return err
		}
		if c.Identity == nil || (c.State != workflow.Approved && c.State != workflow.Completed) {
			return apperr.New(apperr.InvalidTransition, "app: case %d is %s; the holder's records are shown after the identity check and approval (R02 II-8)", c.ID, c.State)
		}
		kinds := map[string]workflow.Kind{}
		rows, err := tx.QueryContext(ctx, `SELECT id, kind FROM cases WHERE record_code = ?`, c.Applicant.RecordCode)
		if err != nil {
			return apperr.Wrap(apperr.Internal, err, "app: holder's cases")
		}
		var targets []string
		for rows.Next() {
			var id int64
			var kind string
			if err := rows.Scan(&id, &kind); err != nil {
				rows.Close()
				return apperr.Wrap(apperr.Internal, err, "app: holder's cases")
			}
			t := strconv.FormatInt(id, 10)
			kinds[t] = workflow.Kind(kind)
			targets = append(targets, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return apperr.Wrap(apperr.Internal, err, "app: holder's cases")
		}
		actions := make([]string, 0, len(holderActions))
		for a := range holderActions {
			actions = append(actions, a)
		}
		sort.Strings(actions)
		recs, err := audit.ListFor(ctx, tx, actions, targets)
		if err != nil {
			return err
		}
		out = &HolderRecord{Name: c.Applicant.Name, ProducedAt: s.t.now()}
		for _, r := range recs {
			id, _ := strconv.ParseInt(r.Target, 10, 64)
			e := HolderEvent{At: r.At, Event: holderActions[r.Action], CertType: workflow.CertType(r.Detail["cert_type"]),
				Serial: r.Detail["serial"], CaseID: id, CaseKind: kinds[r.Target]}
			switch e.Event {
			case HolderRevoked:
				e.Reason = r.Detail["reason"]
				if at, err := time.Parse(time.RFC3339, r.Detail["revoked_at"]); err == nil {
					e.At = at
				}
			case HolderIssueVoided:
				e.Reason = r.Detail["revocation_reason"]
			}
			out.Events = append(out.Events, e)
		}
		detail["events"] = strconv.Itoa(len(out.Events))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
