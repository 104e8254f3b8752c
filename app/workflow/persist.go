package workflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"madoguchi/app/apperr"
)

// Querier reads.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Insert stores a new case and sets c.ID.
func Insert(ctx context.Context, tx *sql.Tx, c *Case) error {
	data, err := json.Marshal(c)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "workflow: encode case")
	}
	at := c.OpenedAt.Format(time.RFC3339Nano)
	res, err := tx.ExecContext(ctx, `INSERT INTO cases(kind, record_code, state, opened_by, opened_at, updated_at, data) VALUES (?,?,?,?,?,?,?)`,
		string(c.Kind), c.Applicant.RecordCode, string(c.State), c.OpenedBy, at, at, string(data))
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "workflow: insert case")
	}
	c.ID, _ = res.LastInsertId()
	return Save(ctx, tx, c, "open", "", c.OpenedBy, c.OpenedAt)
}

// Load reads a case.
func Load(ctx context.Context, q Querier, id int64) (*Case, error) {
	var data string
	err := q.QueryRowContext(ctx, `SELECT data FROM cases WHERE id = ?`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.NotFound, "workflow: no case %d", id)
	}
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "workflow: load case")
	}
	var c Case
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "workflow: decode case")
	}
	c.ID = id
	return &c, nil
}

// Save writes c and appends an event row (from → c.State).
func Save(ctx context.Context, tx *sql.Tx, c *Case, event string, from State, by string, at time.Time) error {
	data, err := json.Marshal(c)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "workflow: encode case")
	}
	ts := at.UTC().Format(time.RFC3339Nano)
	if _, err := tx.ExecContext(ctx, `UPDATE cases SET state = ?, updated_at = ?, data = ? WHERE id = ?`, string(c.State), ts, string(data), c.ID); err != nil {
		return apperr.Wrap(apperr.Internal, err, "workflow: save case")
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO case_events(case_id, seq, at, operator, event, from_state, to_state)
		VALUES (?, (SELECT count(*) + 1 FROM case_events WHERE case_id = ?), ?, ?, ?, ?, ?)`, c.ID, c.ID, ts, by, event, string(from), string(c.State))
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "workflow: case event")
	}
	return nil
}
