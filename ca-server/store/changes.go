package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ResidentChange is the fact that a person's resident record changed: the
// keyed person hash, the kind of event and when it happened, nothing more
// (R02 II-3-1(2): 異動等失効情報 carries only "this record changed").
type ResidentChange struct {
	ID         int64
	PersonHash []byte
	Event      string
	OccurredAt time.Time
	ReceivedAt time.Time
	Terminal   string
	Operator   string
	RequestID  string
	// Municipality, when set, is the reporting terminal's: the store refuses
	// the change with ErrOtherMunicipality unless that municipality may
	// report it (authority.go). Not stored: the terminal names it.
	Municipality string
}

// ChangePlan is what the revocation rules decided for one change: revoke
// now, revoke later unless another event comes first, cancel earlier
// deferred revocations. The store applies it atomically with the change.
type ChangePlan struct {
	Revoke []PlannedRevocation
	Defer  []PlannedDeferral
	Cancel []PlannedCancel
}

// PlannedRevocation revokes the person's valid or held certificate of the
// type with the reason.
type PlannedRevocation struct {
	CertType CertType
	Reason   int
}

// PlannedDeferral revokes at Due unless the Unless event is recorded for the
// person before Due.
type PlannedDeferral struct {
	CertType CertType
	Reason   int
	Due      time.Time
	Unless   string
}

// PlannedCancel ends the person's open deferrals of CertType created by
// Event, when this change happened before they fell due.
type PlannedCancel struct {
	CertType CertType
	Event    string
}

// ChangeOutcome reports what applying a change did.
type ChangeOutcome struct {
	Change    ResidentChange
	Replayed  bool          // the same request id was applied before; nothing changed now
	Revoked   []Certificate // certificates revoked now
	Deferred  []int64       // ids of the deferred revocations created
	Cancelled int64         // deferred revocations cancelled
}

// ApplyResidentChange records the change and applies plan, in one
// transaction: a crash leaves either nothing or everything. A certificate
// already revoked is left alone (revocation is never undone); a type with
// no valid certificate is skipped. A retry with the same terminal and
// request id and the same content returns Replayed; other content,
// ErrDuplicateReq. A change reported for a person of another municipality
// fails with ErrOtherMunicipality and records nothing.
func (s *sqlStore) ApplyResidentChange(ctx context.Context, ch ResidentChange, plan ChangePlan) (ChangeOutcome, error) {
	if len(ch.PersonHash) == 0 || ch.Event == "" || ch.OccurredAt.IsZero() || ch.ReceivedAt.IsZero() || ch.Terminal == "" || ch.Operator == "" {
		return ChangeOutcome{}, errors.New("store: resident change lacks person, event, times, terminal or operator")
	}
	var out ChangeOutcome
	err := s.tx(ctx, func(tx *dbTx) error {
		out = ChangeOutcome{} // a retried transaction starts afresh
		if ch.RequestID != "" {
			var prev ResidentChange
			var occ, rec int64
			err := tx.QueryRowContext(ctx, `SELECT id, person_hash, event, occurred_at, received_at FROM resident_changes WHERE terminal = ? AND request_id = ?`,
				ch.Terminal, ch.RequestID).Scan(&prev.ID, &prev.PersonHash, &prev.Event, &occ, &rec)
			if err == nil {
				if string(prev.PersonHash) != string(ch.PersonHash) || prev.Event != ch.Event || occ != ch.OccurredAt.UnixNano() {
					return fmt.Errorf("%w: request id %q was used for another change", ErrDuplicateReq, ch.RequestID)
				}
				prev.OccurredAt, prev.ReceivedAt = time.Unix(0, occ).UTC(), time.Unix(0, rec).UTC()
				prev.Terminal, prev.Operator, prev.RequestID = ch.Terminal, ch.Operator, ch.RequestID
				out = ChangeOutcome{Change: prev, Replayed: true}
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("store: read resident change: %w", err)
			}
		}
		if ch.Municipality != "" {
			if err := checkChangeAuthority(ctx, tx, ch); err != nil {
				return err
			}
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO resident_changes (person_hash, event, occurred_at, received_at, terminal, operator, request_id)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, ch.PersonHash, ch.Event, ch.OccurredAt.UnixNano(), ch.ReceivedAt.UnixNano(), ch.Terminal, ch.Operator, snull(ch.RequestID)).
			Scan(&ch.ID); err != nil {
			return fmt.Errorf("store: record resident change: %w", err)
		}
		out.Change = ch
		for _, c := range plan.Cancel {
			r, err := tx.ExecContext(ctx, `UPDATE pending_revocations SET ended_at = ?, outcome = 'cancelled'
				WHERE person_hash = ? AND cert_type = ? AND event = ? AND ended_at IS NULL AND due_at > ?`,
				ch.ReceivedAt.UnixNano(), ch.PersonHash, string(c.CertType), c.Event, ch.OccurredAt.UnixNano())
			if err != nil {
				return fmt.Errorf("store: cancel deferred revocation: %w", err)
			}
			n, _ := r.RowsAffected()
			out.Cancelled += n
		}
		for _, rv := range plan.Revoke {
			c, ok, err := revokeValid(ctx, tx, ch.PersonHash, rv.CertType, rv.Reason, "change:"+ch.Event, ch.Terminal, ch.Operator,
				fmt.Sprintf("resident change #%d", ch.ID), ch.ReceivedAt)
			if err != nil {
				return err
			}
			if ok {
				out.Revoked = append(out.Revoked, c)
			}
		}
		for _, d := range plan.Defer {
			var id int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO pending_revocations (change_id, person_hash, cert_type, event, unless_event, reason, due_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, ch.ID, ch.PersonHash, string(d.CertType), ch.Event, d.Unless, d.Reason, d.Due.UnixNano()).
				Scan(&id); err != nil {
				return fmt.Errorf("store: defer revocation: %w", err)
			}
			out.Deferred = append(out.Deferred, id)
		}
		return nil
	})
	return out, err
}

// revokeValid revokes the person's delivered or held certificate of type t,
// if there is one.
func revokeValid(ctx context.Context, tx *dbTx, person []byte, t CertType, reason int, kind, terminal, operator, evidence string, now time.Time) (Certificate, bool, error) {
	var serial string
	err := tx.QueryRowContext(ctx, `SELECT serial FROM issuances WHERE person_hash = ? AND cert_type = ? AND state IN ('delivered', 'held')`,
		person, string(t)).Scan(&serial)
	if errors.Is(err, sql.ErrNoRows) {
		return Certificate{}, false, nil
	}
	if err != nil {
		return Certificate{}, false, fmt.Errorf("store: find valid certificate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE issuances SET state = 'revoked', revoked_at = ?, revocation_reason = ? WHERE serial = ?`,
		now.UnixNano(), reason, serial); err != nil {
		return Certificate{}, false, fmt.Errorf("store: revoke: %w", err)
	}
	if err := insertStatusRequest(ctx, tx, StatusRequest{Serial: serial, Action: ActionRevoke, Kind: kind, Reason: reason, Channel: "system",
		Terminal: terminal, Operator: operator, Evidence: evidence, At: now}); err != nil {
		return Certificate{}, false, err
	}
	c, err := getCertificate(ctx, tx, serial)
	return c, err == nil, err
}

// PendingRevocation is a deferred change-driven revocation.
type PendingRevocation struct {
	ID         int64
	ChangeID   int64
	PersonHash []byte
	CertType   CertType
	Event      string
	Unless     string
	Reason     int
	Due        time.Time
	EndedAt    time.Time
	Outcome    string // "", revoked, cancelled, nothing-to-revoke
}

const pendingCols = `id, change_id, person_hash, cert_type, event, unless_event, reason, due_at, ended_at, outcome`

func scanPending(row interface{ Scan(...any) error }) (PendingRevocation, error) {
	var p PendingRevocation
	var due int64
	var ended sql.NullInt64
	var outcome sql.NullString
	err := row.Scan(&p.ID, &p.ChangeID, &p.PersonHash, &p.CertType, &p.Event, &p.Unless, &p.Reason, &due, &ended, &outcome)
	p.Due, p.EndedAt, p.Outcome = time.Unix(0, due).UTC(), tfrom(ended), outcome.String
	return p, err
}

// DuePendingRevocations lists open deferred revocations due at or before now.
func (s *sqlStore) DuePendingRevocations(ctx context.Context, now time.Time, limit int) ([]PendingRevocation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+pendingCols+` FROM pending_revocations WHERE ended_at IS NULL AND due_at <= ? ORDER BY due_at LIMIT ?`,
		now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: due revocations: %w", err)
	}
	defer rows.Close()
	var out []PendingRevocation
	for rows.Next() {
		p, err := scanPending(rows)
		if err != nil {
			return nil, fmt.Errorf("store: due revocations: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PendingRevocationsOf lists a person's deferred revocations, open or ended.
func (s *sqlStore) PendingRevocationsOf(ctx context.Context, person []byte) ([]PendingRevocation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+pendingCols+` FROM pending_revocations WHERE person_hash = ? ORDER BY id`, person)
	if err != nil {
		return nil, fmt.Errorf("store: pending revocations: %w", err)
	}
	defer rows.Close()
	var out []PendingRevocation
	for rows.Next() {
		p, err := scanPending(rows)
		if err != nil {
			return nil, fmt.Errorf("store: pending revocations: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ApplyPendingRevocation ends an open deferred revocation that is due at
// now: it revokes the person's valid certificate of the type (outcome
// revoked) or finds none (nothing-to-revoke). ErrState if it already ended
// or is not yet due.
func (s *sqlStore) ApplyPendingRevocation(ctx context.Context, id int64, operator string, now time.Time) (PendingRevocation, *Certificate, error) {
	var p PendingRevocation
	var revoked *Certificate
	err := s.tx(ctx, func(tx *dbTx) error {
		revoked = nil // a retried transaction starts afresh
		var err error
		p, err = scanPending(tx.QueryRowContext(ctx, `SELECT `+pendingCols+` FROM pending_revocations WHERE id = ?`, id))
		if err != nil {
			return notFound(err, fmt.Sprintf("pending revocation %d", id))
		}
		if !p.EndedAt.IsZero() || p.Due.After(now) {
			return fmt.Errorf("%w: pending revocation %d ended or not due", ErrState, id)
		}
		c, ok, err := revokeValid(ctx, tx, p.PersonHash, p.CertType, p.Reason, "change:"+p.Event, "local", operator,
			fmt.Sprintf("resident change #%d: no %s within the period", p.ChangeID, p.Unless), now)
		if err != nil {
			return err
		}
		p.Outcome = "nothing-to-revoke"
		if ok {
			p.Outcome, revoked = "revoked", &c
		}
		p.EndedAt = now
		_, err = tx.ExecContext(ctx, `UPDATE pending_revocations SET ended_at = ?, outcome = ? WHERE id = ?`, now.UnixNano(), p.Outcome, id)
		return err
	})
	return p, revoked, err
}

// ResidentChanges returns the changes recorded for a person, oldest first.
func (s *sqlStore) ResidentChanges(ctx context.Context, person []byte) ([]ResidentChange, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, person_hash, event, occurred_at, received_at, terminal, operator, request_id
		FROM resident_changes WHERE person_hash = ? ORDER BY id`, person)
	if err != nil {
		return nil, fmt.Errorf("store: resident changes: %w", err)
	}
	defer rows.Close()
	var out []ResidentChange
	for rows.Next() {
		var c ResidentChange
		var occ, rec int64
		var req sql.NullString
		if err := rows.Scan(&c.ID, &c.PersonHash, &c.Event, &occ, &rec, &c.Terminal, &c.Operator, &req); err != nil {
			return nil, fmt.Errorf("store: resident changes: %w", err)
		}
		c.OccurredAt, c.ReceivedAt, c.RequestID = time.Unix(0, occ).UTC(), time.Unix(0, rec).UTC(), req.String
		out = append(out, c)
	}
	return out, rows.Err()
}
