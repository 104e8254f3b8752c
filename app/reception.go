package app

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/operator"
	"madoguchi/app/pinrule"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
)

// ---- Reception functions: permission Reception (TS Art. 3(4)) ----

// ImportResidentFile checks and consumes a resident-record file (Reception). Tampered, expired
// and reused files are refused with kinds FileTampered, FileExpired, FileUsed, and audited.
func (s *Session) ImportResidentFile(ctx context.Context, data []byte) (resident.File, error) {
	var f resident.File
	detail := map[string]string{}
	err := s.call(ctx, "resident.import_file", "", operator.Reception, detail, func(tx *sql.Tx, _ operator.Operator) error {
		var err error
		f, err = resident.ImportFile(ctx, tx, s.t.cfg.ResidentFileKey, data, s.operatorID, s.t.now())
		if f.ID != "" {
			detail["file_id"], detail["record_code"] = f.ID, f.Resident.RecordCode
		}
		return err
	})
	return f, err
}

// CaseRequest opens a reception case.
type CaseRequest struct {
	Kind workflow.Kind
	// ResidentFile is the CS file for kinds that need one (NewIssuance, Renewal); it is imported
	// (and consumed) in the same transaction as the case is opened.
	ResidentFile []byte
	// RecordCode names the applicant for the other kinds.
	RecordCode    string
	CertTypes     []workflow.CertType
	NewCard       bool
	CurrentExpiry time.Time // Renewal
}

// OpenCase starts a reception case (Reception).
func (s *Session) OpenCase(ctx context.Context, req CaseRequest) (*workflow.Case, error) {
	var c *workflow.Case
	detail := map[string]string{"kind": string(req.Kind)}
	err := s.call(ctx, "case.open", req.RecordCode, operator.Reception, detail, func(tx *sql.Tx, _ operator.Operator) error {
		var applicant resident.Resident
		var fileID string
		if req.Kind.NeedsResidentFile() {
			if len(req.ResidentFile) == 0 {
				return apperr.New(apperr.InvalidInput, "app: %s needs the resident-record file from the CS application", req.Kind)
			}
			f, err := resident.ImportFile(ctx, tx, s.t.cfg.ResidentFileKey, req.ResidentFile, s.operatorID, s.t.now())
			if err != nil {
				return err
			}
			applicant, fileID = f.Resident, f.ID
			detail["file_id"] = f.ID
		} else {
			var err error
			if applicant, err = (resident.SQLRegister{Q: tx}).Get(ctx, req.RecordCode); err != nil {
				return err
			}
		}
		detail["record_code"] = applicant.RecordCode
		var err error
		c, err = workflow.Open(req.Kind, applicant, req.CertTypes, req.NewCard, req.CurrentExpiry, s.operatorID, s.t.now())
		if err != nil {
			return err
		}
		c.ResidentFile = fileID
		if err := workflow.Insert(ctx, tx, c); err != nil {
			return err
		}
		detail["case"] = strconv.FormatInt(c.ID, 10)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Case returns a case (Reception).
func (s *Session) Case(ctx context.Context, id int64) (*workflow.Case, error) {
	var c *workflow.Case
	err := s.call(ctx, "case.view", strconv.FormatInt(id, 10), operator.Reception, nil, func(tx *sql.Tx, _ operator.Operator) error {
		var err error
		c, err = workflow.Load(ctx, tx, id)
		return err
	})
	return c, err
}

// caseEvent loads case id, applies step, saves the case with an event row, and audits. A step
// that ends the case with a decision (identity doubt) saves it and still returns the error.
func (s *Session) caseEvent(ctx context.Context, id int64, event string, detail map[string]string, step func(c *workflow.Case) error) (*workflow.Case, error) {
	var c *workflow.Case
	var decided error
	if detail == nil {
		detail = map[string]string{}
	}
	err := s.call(ctx, "case."+event, strconv.FormatInt(id, 10), operator.Reception, detail, func(tx *sql.Tx, _ operator.Operator) error {
		var err error
		if c, err = workflow.Load(ctx, tx, id); err != nil {
			return err
		}
		from := c.State
		if err := step(c); err != nil {
			if !errors.Is(err, apperr.IdentityDoubt) {
				return err
			}
			decided = err
			detail["stopped"] = "identity doubt"
		}
		detail["from"], detail["to"] = string(from), string(c.State)
		return workflow.Save(ctx, tx, c, event, from, s.operatorID, s.t.now())
	})
	if err != nil {
		return nil, err
	}
	return c, decided
}

// RecordIdentity records the identity evidence of a case (Reception). A doubt stops the case and
// returns kind IdentityDoubt (CPS §4.1.2.1(3)).
func (s *Session) RecordIdentity(ctx context.Context, id int64, e workflow.Evidence) (*workflow.Case, error) {
	d := map[string]string{"document": string(e.Document), "proxy": strconv.FormatBool(e.Proxy)}
	return s.caseEvent(ctx, id, "identity", d, func(c *workflow.Case) error { return c.RecordIdentity(e) })
}

// RecordExplanation records the TS Art. 9 explanations acknowledged by the applicant (Reception).
func (s *Session) RecordExplanation(ctx context.Context, id int64, items []workflow.Item) (*workflow.Case, error) {
	return s.caseEvent(ctx, id, "explanation", nil, func(c *workflow.Case) error { return c.RecordExplanation(items) })
}

// SetSubstitutions records the 外字 substitutions of a case (Reception).
func (s *Session) SetSubstitutions(ctx context.Context, id int64, subs []resident.Substitution) (*workflow.Case, error) {
	return s.caseEvent(ctx, id, "substitutions", map[string]string{"count": strconv.Itoa(len(subs))},
		func(c *workflow.Case) error { return c.SetSubstitutions(subs) })
}

// Approve decides to proceed with a case (Reception).
func (s *Session) Approve(ctx context.Context, id int64) (*workflow.Case, error) {
	return s.caseEvent(ctx, id, "approve", nil, func(c *workflow.Case) error { return c.Approve(s.operatorID) })
}

// Refuse ends a case with a recorded reason (Reception).
func (s *Session) Refuse(ctx context.Context, id int64, reason string) (*workflow.Case, error) {
	return s.caseEvent(ctx, id, "refuse", map[string]string{"reason": reason}, func(c *workflow.Case) error { return c.Refuse(s.operatorID, reason) })
}

// Stop ends a case (doubt, applicant withdrew) with a reason (Reception).
func (s *Session) Stop(ctx context.Context, id int64, reason string) (*workflow.Case, error) {
	return s.caseEvent(ctx, id, "stop", map[string]string{"reason": reason}, func(c *workflow.Case) error { return c.Stop(reason) })
}

// Complete marks an approved case done (Reception).
func (s *Session) Complete(ctx context.Context, id int64) (*workflow.Case, error) {
	return s.caseEvent(ctx, id, "complete", nil, func(c *workflow.Case) error { return c.Complete() })
}

// CheckApplicantPIN applies the PIN rules to the PIN the applicant typed on the applicant-facing
// screen (Reception; TS Art. 4). The PIN is neither stored nor recorded; a refusal is audited
// with the rule broken only.
func (s *Session) CheckApplicantPIN(ctx context.Context, caseID int64, kind pinrule.Kind, pin, confirm pinrule.PIN) error {
	detail := map[string]string{"pin_kind": kind.String()}
	return s.call(ctx, "case.pin_check", strconv.FormatInt(caseID, 10), operator.Reception, detail, func(tx *sql.Tx, _ operator.Operator) error {
		c, err := workflow.Load(ctx, tx, caseID)
		if err != nil {
			return err
		}
		birth, err := c.Applicant.Birth()
		if err != nil {
			return err
		}
		return pinrule.Check(kind, pin, confirm, pinrule.Applicant{BirthDate: birth})
	})
}
