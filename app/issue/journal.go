package issue

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/workflow"
)

// State is a journal state of one CA issuance (workflow.IssuanceState).
type State = workflow.IssuanceState

// next is the journal's transition table. It is workflow's (issuanceNext) plus one edge:
// aborting → delivered, taken only when the CA answers an abort with "already delivered"
// (a confirmation whose answer was lost reached the CA). DESIGN "Issuance, end to end" step 6:
// every started issuance ends in exactly one of delivered or revoked before delivery, and the
// CA is the authority on which one.
var next = map[State][]State{
	workflow.IssStarted:       {workflow.IssChannelOpened, workflow.IssAborting},
	workflow.IssChannelOpened: {workflow.IssPrepared, workflow.IssAborting},
	workflow.IssPrepared:      {workflow.IssWritten, workflow.IssAborting},
	workflow.IssWritten:       {workflow.IssPINSet, workflow.IssAborting},
	workflow.IssPINSet:        {workflow.IssVerified, workflow.IssAborting},
	workflow.IssVerified:      {workflow.IssDelivered, workflow.IssAborting},
	workflow.IssAborting:      {workflow.IssAborted, workflow.IssDelivered},
}

func canAdvance(from, to State) bool {
	for _, s := range next[from] {
		if s == to {
			return true
		}
	}
	return false
}

// final reports whether s ends an issuance.
func final(s State) bool { return s == workflow.IssDelivered || s == workflow.IssAborted }

// Card cleanup values of a journal row (column card_cleanup).
const (
	// CleanupNone: nothing was committed on the card, or the issuance was delivered.
	CleanupNone = ""
	// CleanupRepersonalise: the card may hold the key and certificates of an issuance that
	// was revoked before delivery. The issuance API offers no key-destruction script, so the
	// card must go through personalisation again (a new issuance overwrites key and files)
	// before it is handed out (TS Art. 6(iii)).
	CleanupRepersonalise = "repersonalise"
)

// Entry is one row of the issuance journal: one CA issuance of one certificate type. It holds
// no PIN, key or script (the script carries the wrapped key; TS Art. 6(iii)).
type Entry struct {
	RequestID  string            // idempotency key sent to the CA
	CaseID     int64             // the reception case
	CertType   workflow.CertType // which certificate
	Operator   string            // who started it
	State      State             //
	CardSerial string            // hex, upper case; "" before the card answered
	IssuanceID string            // the CA's id; "" before prepare answered
	// PrepareRequest is the JSON of the prepare request, journaled before it is sent, so that
	// recovery can replay it with the same request id and learn what the CA did.
	PrepareRequest string
	CardCleanup    string // CleanupNone or CleanupRepersonalise
	LastError      string // English, no secrets
	StartedAt      time.Time
	UpdatedAt      time.Time
}

const entryColumns = `request_id, case_id, cert_type, operator, state, card_serial, ca_issuance, prepare_request, card_cleanup, last_error, started_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanEntry(r rowScanner) (Entry, error) {
	var e Entry
	var typ, state, started, updated string
	if err := r.Scan(&e.RequestID, &e.CaseID, &typ, &e.Operator, &state, &e.CardSerial, &e.IssuanceID, &e.PrepareRequest,
		&e.CardCleanup, &e.LastError, &started, &updated); err != nil {
		return e, err
	}
	e.CertType, e.State = workflow.CertType(typ), State(state)
	e.StartedAt, _ = time.Parse(time.RFC3339Nano, started)
	e.UpdatedAt, _ = time.Parse(time.RFC3339Nano, updated)
	return e, nil
}

// Querier reads the journal (*store.DB, *sql.Tx).
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Lookup returns one journal row (kind NotFound if absent).
func Lookup(ctx context.Context, q Querier, requestID string) (Entry, error) {
	e, err := scanEntry(q.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM issuance_journal WHERE request_id = ?`, requestID))
	if errors.Is(err, sql.ErrNoRows) {
		return e, apperr.New(apperr.NotFound, "issue: no journal entry %s", requestID)
	}
	if err != nil {
		return e, apperr.Wrap(apperr.Internal, err, "issue: read journal")
	}
	return e, nil
}

// Filter selects journal rows; zero fields select everything.
type Filter struct {
	CaseID     int64 // 0: all cases
	Unresolved bool  // only rows not delivered or aborted
}

// List returns the journal rows matching f in start order.
func List(ctx context.Context, q Querier, f Filter) ([]Entry, error) {
	query := `SELECT ` + entryColumns + ` FROM issuance_journal WHERE (? = 0 OR case_id = ?)`
	if f.Unresolved {
		query += ` AND state NOT IN ('delivered','aborted')`
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY started_at, request_id`, f.CaseID, f.CaseID)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "issue: list journal")
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "issue: read journal")
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "issue: list journal")
	}
	return out, nil
}

// begin inserts a "started" row.
func begin(ctx context.Context, tx *sql.Tx, e Entry, now time.Time) error {
	ts := now.UTC().Format(time.RFC3339Nano)
	_, err := tx.ExecContext(ctx, `INSERT INTO issuance_journal(request_id, case_id, cert_type, operator, state, started_at, updated_at) VALUES (?,?,?,?,?,?,?)`,
		e.RequestID, e.CaseID, string(e.CertType), e.Operator, string(workflow.IssStarted), ts, ts)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "issue: begin journal")
	}
	return nil
}

// change is what an advance sets besides the state; empty fields keep the stored value.
type change struct {
	CardSerial, IssuanceID, PrepareRequest, CardCleanup, LastError string
}

// advance moves a row to state to, refusing jumps (kind InvalidTransition), and returns the
// row as written.
func advance(ctx context.Context, tx *sql.Tx, requestID string, to State, c change, now time.Time) (Entry, error) {
	e, err := Lookup(ctx, tx, requestID)
	if err != nil {
		return e, err
	}
	if !canAdvance(e.State, to) {
		return e, apperr.New(apperr.InvalidTransition, "issue: journal entry %s cannot go from %s to %s", requestID, e.State, to)
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&e.CardSerial, c.CardSerial)
	set(&e.IssuanceID, c.IssuanceID)
	set(&e.PrepareRequest, c.PrepareRequest)
	set(&e.CardCleanup, c.CardCleanup)
	set(&e.LastError, c.LastError)
	e.State, e.UpdatedAt = to, now.UTC()
	_, err = tx.ExecContext(ctx, `UPDATE issuance_journal SET state = ?, card_serial = ?, ca_issuance = ?, prepare_request = ?, card_cleanup = ?, last_error = ?, updated_at = ?
		WHERE request_id = ?`, string(to), e.CardSerial, e.IssuanceID, e.PrepareRequest, e.CardCleanup, e.LastError, e.UpdatedAt.Format(time.RFC3339Nano), requestID)
	if err != nil {
		return e, apperr.Wrap(apperr.Internal, err, "issue: advance journal")
	}
	return e, nil
}

// note records fields of a row without a state change (the issuance id learnt by recovery).
func note(ctx context.Context, tx *sql.Tx, requestID string, c change, now time.Time) (Entry, error) {
	e, err := Lookup(ctx, tx, requestID)
	if err != nil {
		return e, err
	}
	if final(e.State) {
		return e, apperr.New(apperr.InvalidTransition, "issue: journal entry %s is %s already", requestID, e.State)
	}
	if c.IssuanceID != "" {
		e.IssuanceID = c.IssuanceID
	}
	if c.LastError != "" {
		e.LastError = c.LastError
	}
	e.UpdatedAt = now.UTC()
	_, err = tx.ExecContext(ctx, `UPDATE issuance_journal SET ca_issuance = ?, last_error = ?, updated_at = ? WHERE request_id = ?`,
		e.IssuanceID, e.LastError, e.UpdatedAt.Format(time.RFC3339Nano), requestID)
	if err != nil {
		return e, apperr.Wrap(apperr.Internal, err, "issue: update journal")
	}
	return e, nil
}
