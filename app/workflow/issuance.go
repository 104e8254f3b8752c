package workflow

import (
	"context"
	"database/sql"
	"time"

	"madoguchi/app/apperr"
)

// IssuanceState is a step of putting certificates on a card through cardio and raclient
// (ARCHITECTURE "Issuance API"). The journal row is written before each step, so after a crash
// every started issuance ends in exactly one of Delivered or Aborted (DESIGN "Issuance, end to
// end" step 6). The orchestration itself is a later issue; the states and journal are fixed here.
type IssuanceState string

// Issuance states in order.
const (
	IssStarted       IssuanceState = "started"        // journal row written, request id chosen
	IssChannelOpened IssuanceState = "channel_opened" // CA host challenge received, card answered
	IssPrepared      IssuanceState = "prepared"       // CA issued (prepared), script received
	IssWritten       IssuanceState = "written"        // script relayed to the card
	IssPINSet        IssuanceState = "pin_set"        // applicant set both PINs
	IssVerified      IssuanceState = "verified"       // card read back, matches what was issued
	IssDelivered     IssuanceState = "delivered"      // CA confirmed (final)
	IssAborting      IssuanceState = "aborting"       // abort sent or to be sent (reason 0)
	IssAborted       IssuanceState = "aborted"        // CA revoked before delivery (final)
)

var issuanceNext = map[IssuanceState][]IssuanceState{
	IssStarted:       {IssChannelOpened, IssAborting},
	IssChannelOpened: {IssPrepared, IssAborting},
	IssPrepared:      {IssWritten, IssAborting},
	IssWritten:       {IssPINSet, IssAborting},
	IssPINSet:        {IssVerified, IssAborting},
	IssVerified:      {IssDelivered, IssAborting},
	IssAborting:      {IssAborted},
}

// CanAdvance reports whether the journal may move from one state to the other.
func CanAdvance(from, to IssuanceState) bool {
	for _, s := range issuanceNext[from] {
		if s == to {
			return true
		}
	}
	return false
}

// JournalBegin writes the first journal row of an issuance for an approved case.
func JournalBegin(ctx context.Context, tx *sql.Tx, requestID string, caseID int64, now time.Time) error {
	ts := now.UTC().Format(time.RFC3339Nano)
	if _, err := tx.ExecContext(ctx, `INSERT INTO issuance_journal(request_id, case_id, state, started_at, updated_at) VALUES (?,?,?,?,?)`,
		requestID, caseID, string(IssStarted), ts, ts); err != nil {
		return apperr.Wrap(apperr.Internal, err, "workflow: begin issuance journal")
	}
	return nil
}

// JournalAdvance moves an issuance to the next state, refusing jumps (kind InvalidTransition).
func JournalAdvance(ctx context.Context, tx *sql.Tx, requestID string, to IssuanceState, now time.Time) error {
	var from string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM issuance_journal WHERE request_id = ?`, requestID).Scan(&from); err != nil {
		return apperr.Wrap(apperr.NotFound, err, "workflow: no issuance "+requestID)
	}
	if !CanAdvance(IssuanceState(from), to) {
		return apperr.New(apperr.InvalidTransition, "workflow: issuance %s cannot go from %s to %s", requestID, from, to)
	}
	_, err := tx.ExecContext(ctx, `UPDATE issuance_journal SET state = ?, updated_at = ? WHERE request_id = ?`, string(to), now.UTC().Format(time.RFC3339Nano), requestID)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "workflow: advance issuance journal")
	}
	return nil
}
