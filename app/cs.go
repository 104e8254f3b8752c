package app

import (
	"bytes"
	"context"
	"database/sql"
	"io"

	"madoguchi/app/operator"
	"madoguchi/app/resident"
)

// ---- Communication-server (CS) functions: permission CS (TS Art. 3(1)(4)) ----

// SearchResidents searches the resident register (CS). The criteria, not the results, are
// audited.
func (s *Session) SearchResidents(ctx context.Context, q resident.Query) ([]resident.Resident, error) {
	var out []resident.Resident
	detail := map[string]string{"name_kana": q.NameKana, "name": q.Name, "birth_date": q.BirthDate, "record_code": q.RecordCode}
	err := s.call(ctx, "resident.search", q.RecordCode, operator.CS, detail, func(tx *sql.Tx, _ operator.Operator) error {
		var err error
		out, err = resident.SQLRegister{Q: tx}.Search(ctx, q)
		return err
	})
	return out, err
}

// ExportResidentFile writes the resident-record file of one applicant for the reception
// application (CS; TS Art. 3(1)). The file is integrity-protected, expires after
// Config.ResidentFileTTL and can be imported once.
func (s *Session) ExportResidentFile(ctx context.Context, recordCode string) ([]byte, error) {
	var out []byte
	detail := map[string]string{}
	err := s.call(ctx, "resident.export_file", recordCode, operator.CS, detail, func(tx *sql.Tx, _ operator.Operator) error {
		data, f, err := resident.ExportFile(ctx, tx, s.t.cfg.ResidentFileKey, s.t.cfg.Random, recordCode, s.operatorID, s.t.now(), s.t.cfg.ResidentFileTTL)
		if err != nil {
			return err
		}
		detail["file_id"], detail["expires_at"] = f.ID, f.ExpiresAt.Format("2006-01-02T15:04:05Z07:00")
		out = data
		return nil
	})
	return out, err
}

// ImportResidents loads residents from CSV into the embedded register (CS).
func (s *Session) ImportResidents(ctx context.Context, r io.Reader) (int, error) {
	var n int
	detail := map[string]string{}
	err := s.call(ctx, "resident.import_register", "", operator.CS, detail, func(tx *sql.Tx, _ operator.Operator) error {
		var err error
		n, err = resident.ImportCSV(ctx, tx, r, s.t.now())
		return err
	})
	return n, err
}

// ImportResidentFixtures loads the embedded fictional residents (CS; demonstrations and tests).
func (s *Session) ImportResidentFixtures(ctx context.Context) (int, error) {
	return s.ImportResidents(ctx, bytes.NewReader(resident.Fixtures))
}

// RecordResidentChange records a change of the resident register and queues it for
// change-driven revocation at the CA (CS; R02 II-3-1(2)).
func (s *Session) RecordResidentChange(ctx context.Context, c resident.Change) error {
	detail := map[string]string{"kind": string(c.Kind), "effective": c.Effective}
	return s.call(ctx, "resident.change", c.RecordCode, operator.CS, detail, func(tx *sql.Tx, _ operator.Operator) error {
		return resident.RecordChange(ctx, tx, c, s.operatorID, s.t.now())
	})
}

// PendingChanges lists the changes not yet sent to the CA (CS).
func (s *Session) PendingChanges(ctx context.Context) ([]resident.PendingChange, error) {
	var out []resident.PendingChange
	err := s.call(ctx, "resident.pending_changes", "", operator.CS, nil, func(tx *sql.Tx, _ operator.Operator) error {
		var err error
		out, err = resident.Pending(ctx, tx)
		return err
	})
	return out, err
}
