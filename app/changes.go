package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/operator"
	"madoguchi/app/resident"
	"madoguchi/jpki/wire"
)

// ---- The resident-change outbox sender (R02 II-3-1(2); TS Art. 12) ----
//
// RecordResidentChange puts each change in the outbox in the same transaction as the register
// update. The sender delivers the outbox to the CA, which turns each change into change-driven
// revocation by its rule table:
//
//   - At least once: each row is sent with a request id made of this terminal's installation
//     id and the row id, so a resend after a lost answer (or a crash between the CA's answer
//     and the commit) is answered idempotently by the CA and revokes nothing twice.
//   - In order per person: a later change of a person waits while an earlier one is undelivered
//     (a move-in must reach the CA after the move-out it cancels).
//   - Not before it happens: a change whose effective date is still ahead (a planned move-out)
//     waits until that day (the CA refuses future events).
//   - Retried with backoff: a failed row is tried again after Config.ChangeRetry, doubling per
//     failure up to Config.ChangeRetryMax; the error is kept on the row and shown by
//     PendingChanges.
//   - Audited: every delivery and every failure, with the CA's change id and what it revoked.
//
// What leaves the terminal: the resident-record code, the event name and the effective date,
// over mutual TLS 1.3 (TS Art. 7(i), Art. 10). The CA turns the code into the person key (an
// HMAC inside its HSM) and keeps only the key, the event and the time: the fact of a change,
// never the new name or address (R02 II-3-1(2)).

// ChangeOutcome is what one send did with one outbox entry.
type ChangeOutcome string

// Outcomes of a send.
const (
	ChangeDelivered ChangeOutcome = "delivered" // the CA took it (or had taken it: Response.Replayed)
	ChangeFailed    ChangeOutcome = "failed"    // the CA refused or could not be reached; retried later
	ChangeWaiting   ChangeOutcome = "waiting"   // not due yet, in backoff, or behind an undelivered earlier change
)

// ChangeDelivery is what happened to one outbox entry.
type ChangeDelivery struct {
	Change   resident.PendingChange
	Event    string // the CA's event name
	Outcome  ChangeOutcome
	Response wire.ResidentChangeResponse // when delivered
	Err      error                       // when failed: a *CAError
	// Why says why an entry waits (English).
	Why string
}

// jst is the time zone of resident-register dates (effective dates are Japanese calendar days).
var jst = time.FixedZone("JST", 9*60*60)

// SendResidentChanges delivers the outbox to the CA for a logged-in CS operator (TS Art. 3(4)).
// The gate is audited like every action; each delivery is audited on its own.
func (s *Session) SendResidentChanges(ctx context.Context) ([]ChangeDelivery, error) {
	if err := s.precheck(ctx, "resident.send_changes", "", operator.CS, nil); err != nil {
		return nil, err
	}
	return s.t.sendChanges(ctx, s.operatorID)
}

// SendResidentChanges delivers the outbox unattended (a timer of the GUI, a system service);
// recorded as operator "-". The CA is told the CS operator who recorded each change.
func (t *Terminal) SendResidentChanges(ctx context.Context) ([]ChangeDelivery, error) {
	return t.sendChanges(ctx, "-")
}

func (t *Terminal) sendChanges(ctx context.Context, actor string) ([]ChangeDelivery, error) {
	ca, err := t.ca()
	if err != nil {
		return nil, err
	}
	inst, err := t.installationID(ctx)
	if err != nil {
		return nil, err
	}
	pending, err := resident.Pending(ctx, t.db)
	if err != nil {
		return nil, err
	}
	blocked := map[string]bool{} // persons with an earlier undelivered change
	out := make([]ChangeDelivery, 0, len(pending))
	for _, p := range pending {
		if err := ctx.Err(); err != nil {
			return out, apperr.Wrap(apperr.Cancelled, err, "app: sending resident changes")
		}
		d := ChangeDelivery{Change: p, Outcome: ChangeWaiting}
		d.Event, err = resident.CAEvent(p.Kind)
		if err != nil {
			return out, err
		}
		now := t.now()
		occurred, perr := time.ParseInLocation("2006-01-02", p.Effective, jst)
		switch {
		case perr != nil:
			return out, apperr.Wrap(apperr.Internal, perr, "app: outbox entry "+strconv.FormatInt(p.ID, 10))
		case blocked[p.RecordCode]:
			d.Why = "an earlier change of this person is not delivered yet"
		case occurred.After(now):
			d.Why = "effective " + p.Effective + ", not yet"
		case p.NextAttemptAt.After(now):
			d.Why = "retry after " + p.NextAttemptAt.Format(time.RFC3339)
		default:
			d = t.deliver(ctx, ca, actor, inst, p, d.Event, occurred)
		}
		if d.Outcome != ChangeDelivered {
			blocked[p.RecordCode] = true
		}
		out = append(out, d)
	}
	return out, nil
}

// deliver sends one outbox row and commits the result with its audit record.
func (t *Terminal) deliver(ctx context.Context, ca ChangeReporter, actor, inst string, p resident.PendingChange, event string, occurred time.Time) ChangeDelivery {
	d := ChangeDelivery{Change: p, Event: event}
	requestID := "rc-" + inst + "-" + strconv.FormatInt(p.ID, 10)
	by := p.RecordedBy
	if by == "" {
		by = actor
	}
	resp, err := ca.ReportResidentChange(ctx, by, wire.ResidentChangeRequest{RequestID: requestID, ResidentCode: p.RecordCode, Event: event, OccurredAt: occurred})
	now := t.now()
	target := "change:" + strconv.FormatInt(p.ID, 10)
	detail := map[string]string{"event": event, "request_id": requestID, "record_code": p.RecordCode}
	wctx := context.WithoutCancel(ctx) // the CA has answered: record what it did even if the caller left
	if err != nil {
		d.Outcome, d.Err = ChangeFailed, caError("resident-change", err)
		next := now.Add(t.backoff(p.Attempts))
		detail["error"], detail["error_kind"], detail["next_attempt"] = d.Err.Error(), apperr.KindOf(d.Err).String(), next.UTC().Format(time.RFC3339)
		result := audit.ResultRefused
		if transient(d.Err) {
			result = audit.ResultError
		}
		if txErr := t.db.Tx(wctx, func(tx *sql.Tx) error {
			if err := resident.MarkFailed(wctx, tx, p.ID, d.Err.Error(), next); err != nil {
				return err
			}
			return audit.Append(wctx, tx, audit.Entry{At: now, Operator: actor, Action: "resident.change_send", Target: target, Result: result, Detail: detail})
		}); txErr != nil {
			d.Err = errors.Join(d.Err, txErr)
		}
		return d
	}
	d.Response = resp
	detail["ca_change_id"] = strconv.FormatInt(resp.ChangeID, 10)
	detail["revoked"], detail["deferred"] = strings.Join(resp.Revoked, ","), strings.Join(resp.Deferred, ",")
	if resp.Replayed {
		detail["replayed"] = "true"
	}
	if err := t.db.Tx(wctx, func(tx *sql.Tx) error {
		if err := resident.MarkDelivered(wctx, tx, p.ID, resp.ChangeID, now); err != nil {
			return err
		}
		return audit.Append(wctx, tx, audit.Entry{At: now, Operator: actor, Action: "resident.change_send", Target: target, Result: audit.ResultOK, Detail: detail})
	}); err != nil {
		// Delivered at the CA but not marked here: the next send replays the same request id.
		d.Outcome, d.Err = ChangeFailed, err
		return d
	}
	d.Outcome = ChangeDelivered
	return d
}

// backoff is the wait after the (attempts+1)-th failure.
func (t *Terminal) backoff(attempts int) time.Duration {
	d := t.cfg.ChangeRetry
	for i := 0; i < attempts && d < t.cfg.ChangeRetryMax; i++ {
		d *= 2
	}
	return min(d, t.cfg.ChangeRetryMax)
}

const installationIDName = "installation_id"

// installationID returns this terminal database's random id (created on first use), which
// makes the outbox's request ids unique at the CA even when a terminal is re-installed with a
// fresh database under the same client certificate.
func (t *Terminal) installationID(ctx context.Context) (string, error) {
	var id []byte
	err := t.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM terminal_secrets WHERE name = ?`, installationIDName).Scan(&id)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		id = make([]byte, 8)
		rnd := t.cfg.Random
		if rnd == nil {
			rnd = rand.Reader
		}
		if _, err := io.ReadFull(rnd, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO terminal_secrets(name, value) VALUES (?, ?)`, installationIDName, id)
		return err
	})
	if err != nil {
		return "", apperr.Wrap(apperr.Internal, err, "app: installation id")
	}
	return hex.EncodeToString(id), nil
}
