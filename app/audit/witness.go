package audit

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/jpki/wire"
)

// Head returns the chain head: the newest record's sequence number and hash (0 and nil on an
// empty chain) and its time, what the terminal sends the CA to witness (issue 13 threat 2).
func Head(ctx context.Context, q Querier) (seq int64, hash []byte, at time.Time, err error) {
	var s sql.NullString
	err = q.QueryRowContext(ctx, `SELECT h.seq, h.hash, l.at FROM audit_head h LEFT JOIN audit_log l ON l.seq = h.seq WHERE h.id = 1`).Scan(&seq, &hash, &s)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, time.Time{}, nil
	}
	if err != nil {
		return 0, nil, time.Time{}, apperr.Wrap(apperr.Internal, err, "audit: read head")
	}
	at, _ = time.Parse(timeLayout, s.String)
	return seq, hash, at, nil
}

// HashAt returns the stored chain hash of record seq; ok is false when there is no such record.
func HashAt(ctx context.Context, q Querier, seq int64) (hash []byte, ok bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT hash FROM audit_log WHERE seq = ?`, seq).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, apperr.Wrap(apperr.Internal, err, "audit: read record hash")
	}
	return hash, true, nil
}

// KeepReceipt stores a CA receipt for a witnessed head (the caller has checked its signature).
// A second receipt for the same record keeps the first.
func KeepReceipt(ctx context.Context, tx *sql.Tx, rc wire.AuditReceipt, receivedAt time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_receipts(seq, hash, terminal_id, witnessed_at, key_id, signature, received_at)
		VALUES (?,?,?,?,?,?,?) ON CONFLICT(seq) DO NOTHING`, rc.Seq, rc.Hash, rc.TerminalID, rc.WitnessedAt.UTC().Format(timeLayout),
		rc.KeyID, rc.Signature, receivedAt.UTC().Format(timeLayout))
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "audit: keep receipt")
	}
	return nil
}

// Receipts returns the kept receipts in sequence order (without key certificates).
func Receipts(ctx context.Context, q Querier) ([]wire.AuditReceipt, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, hash, terminal_id, witnessed_at, key_id, signature FROM audit_receipts ORDER BY seq`)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "audit: read receipts")
	}
	defer rows.Close()
	var out []wire.AuditReceipt
	for rows.Next() {
		var rc wire.AuditReceipt
		var at string
		if err := rows.Scan(&rc.Seq, &rc.Hash, &rc.TerminalID, &at, &rc.KeyID, &rc.Signature); err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "audit: read receipts")
		}
		rc.WitnessedAt, _ = time.Parse(timeLayout, at)
		out = append(out, rc)
	}
	return out, rows.Err()
}

// LastReceipt returns the kept receipt of the newest witnessed head; ok is false when none.
func LastReceipt(ctx context.Context, q Querier) (rc wire.AuditReceipt, ok bool, err error) {
	var at string
	err = q.QueryRowContext(ctx, `SELECT seq, hash, terminal_id, witnessed_at, key_id, signature FROM audit_receipts ORDER BY seq DESC LIMIT 1`).
		Scan(&rc.Seq, &rc.Hash, &rc.TerminalID, &at, &rc.KeyID, &rc.Signature)
	if errors.Is(err, sql.ErrNoRows) {
		return rc, false, nil
	}
	if err != nil {
		return rc, false, apperr.Wrap(apperr.Internal, err, "audit: read receipts")
	}
	rc.WitnessedAt, _ = time.Parse(timeLayout, at)
	return rc, true, nil
}
