package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const auditCols = `seq, at, terminal, operator, action, target, result, detail, prev_hash, hash`

func scanAudit(row interface{ Scan(...any) error }) (AuditRecord, error) {
	var r AuditRecord
	var at int64
	err := row.Scan(&r.Seq, &at, &r.Terminal, &r.Operator, &r.Action, &r.Target, &r.Result, &r.Detail, &r.PrevHash, &r.Hash)
	r.At = time.Unix(0, at).UTC()
	return r, err
}

// LastAuditRecord returns the newest record, or ErrNotFound on an empty log.
func (s *sqlStore) LastAuditRecord(ctx context.Context) (AuditRecord, error) {
	r, err := scanAudit(s.r.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit_records ORDER BY seq DESC LIMIT 1`))
	if err != nil {
		return AuditRecord{}, notFound(err, "audit record")
	}
	return r, nil
}

func (s *sqlStore) auditQuery(ctx context.Context, q string, args ...any) ([]AuditRecord, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit records: %w", err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("store: audit records: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AuditRecords returns up to limit records with seq > after, in order.
func (s *sqlStore) AuditRecords(ctx context.Context, after int64, limit int) ([]AuditRecord, error) {
	return s.auditQuery(ctx, `SELECT `+auditCols+` FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
}

// AuditRecordsByOperator returns one operator's records (TS Art. 20(2)).
func (s *sqlStore) AuditRecordsByOperator(ctx context.Context, operator string, after int64, limit int) ([]AuditRecord, error) {
	return s.auditQuery(ctx, `SELECT `+auditCols+` FROM audit_records WHERE operator = ? AND seq > ? ORDER BY seq LIMIT ?`, operator, after, limit)
}

const checkpointCols = `seq, at, hash, key_id, signature, coalesce(number, 0), prev_hash`

// AuditCheckpoints returns every checkpoint in seq order.
func (s *sqlStore) AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error) {
	return s.checkpointQuery(ctx, `SELECT `+checkpointCols+` FROM audit_checkpoints ORDER BY seq`)
}

// AuditCheckpointsFrom returns up to limit chained checkpoints (those with
// a number and previous hash) with number ≥ from, in order; from ≤ 0: the
// newest chained checkpoint only. It reads only those rows, for the public
// checkpoint endpoint (audit.PublishedSince).
func (s *sqlStore) AuditCheckpointsFrom(ctx context.Context, from int64, limit int) ([]AuditCheckpoint, error) {
	if from <= 0 {
		return s.checkpointQuery(ctx, `SELECT `+checkpointCols+` FROM audit_checkpoints WHERE number IS NOT NULL ORDER BY number DESC LIMIT 1`)
	}
	return s.checkpointQuery(ctx, `SELECT `+checkpointCols+` FROM audit_checkpoints WHERE number >= ? ORDER BY number LIMIT ?`, from, limit)
}

func (s *sqlStore) checkpointQuery(ctx context.Context, q string, args ...any) ([]AuditCheckpoint, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit checkpoints: %w", err)
	}
	defer rows.Close()
	var out []AuditCheckpoint
	for rows.Next() {
		var c AuditCheckpoint
		var at int64
		if err := rows.Scan(&c.Seq, &at, &c.Hash, &c.KeyID, &c.Signature, &c.Number, &c.PrevHash); err != nil {
			return nil, fmt.Errorf("store: audit checkpoints: %w", err)
		}
		c.At = time.Unix(0, at).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// AppendAudit appends r; r.Seq must follow the last record's.
func (s *sqlStore) AppendAudit(ctx context.Context, r AuditRecord) error {
	return s.tx(ctx, func(tx *dbTx) error {
		var last sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM audit_records`).Scan(&last); err != nil {
			return fmt.Errorf("store: audit tail: %w", err)
		}
		if r.Seq != last.Int64+1 {
			return fmt.Errorf("%w: audit seq %d does not follow %d", ErrConflict, r.Seq, last.Int64)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_records (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Seq, r.At.UnixNano(), r.Terminal, r.Operator, r.Action, r.Target, r.Result, r.Detail, r.PrevHash, r.Hash)
		if err != nil {
			return fmt.Errorf("store: append audit: %w", err)
		}
		return nil
	})
}

// AppendAuditCheckpoint stores a checkpoint; c.Number must follow the last
// checkpoint's (ErrConflict otherwise), so two signing processes never
// fork the checkpoint chain: the loser reloads the tail and signs again.
func (s *sqlStore) AppendAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error {
	if len(c.Signature) == 0 {
		return errors.New("store: unsigned audit checkpoint")
	}
	if c.Number <= 0 || len(c.PrevHash) == 0 {
		return errors.New("store: audit checkpoint without its number and previous hash")
	}
	return s.tx(ctx, func(tx *dbTx) error {
		// Checkpoints written before the chain (NULL number) count by
		// position.
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(number), count(*)) FROM audit_checkpoints`).Scan(&last); err != nil {
			return fmt.Errorf("store: checkpoint tail: %w", err)
		}
		if c.Number != last+1 {
			return fmt.Errorf("%w: checkpoint number %d does not follow %d", ErrConflict, c.Number, last)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, at, hash, key_id, signature, number, prev_hash) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.Seq, c.At.UnixNano(), c.Hash, c.KeyID, c.Signature, c.Number, c.PrevHash)
		if isUnique(err, "") {
			return fmt.Errorf("%w: checkpoint at %d exists", ErrConflict, c.Seq)
		}
		if err != nil {
			return fmt.Errorf("store: append checkpoint: %w", err)
		}
		return nil
	})
}
