package issue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/workflow"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// Outcome is how a journal entry ended after an abort or a recovery.
type Outcome string

// Outcomes.
const (
	OutcomeDelivered Outcome = "delivered" // the CA had delivered it (the confirmation reached it)
	OutcomeAborted   Outcome = "aborted"   // revoked before delivery (reason 0), or never issued
	OutcomePending   Outcome = "pending"   // the CA could not be reached; try again later
)

// Resolution is what became of one unfinished journal entry.
type Resolution struct {
	Entry   Entry // as journaled afterwards
	From    State // the state it was found in
	Outcome Outcome
	// CAState is what the CA reported: "revoked", "delivered", or "" when the CA holds no
	// issuance for the request (nothing was issued).
	CAState string
	// RevocationReason is the CA's reason when revoked (0: destroyed before delivery).
	RevocationReason *int
	// CardCleanup: the card may hold this revoked issuance's key; it must be personalised again.
	CardCleanup bool
	// Err is why the entry is still pending.
	Err error
}

// Message tells the operator what became of the entry, in codes (assets/translations words it):
// recovery.delivered, recovery.pending, recovery.aborted (revoked before delivery) or
// recovery.not_issued (the CA holds no issuance), with the case and certificate type, and the
// note issue.card_cleanup when the card must be personalised again.
func (r Resolution) Message() apperr.Message {
	m := apperr.Message{Args: map[string]string{"Case": strconv.FormatInt(r.Entry.CaseID, 10), "Cert": string(r.Entry.CertType)}}
	switch {
	case r.Outcome == OutcomeDelivered:
		m.Code = "recovery.delivered"
		return m
	case r.Outcome == OutcomePending:
		m.Code = "recovery.pending"
		return m
	case r.CAState == "":
		m.Code = "recovery.not_issued"
	default:
		m.Code = "recovery.aborted"
	}
	if r.CardCleanup {
		m.Notes = []string{"issue.card_cleanup"}
	}
	return m
}

// Recover resolves every journal entry that is neither delivered nor aborted, so that every
// started issuance ends in exactly one of delivered or revoked before delivery (DESIGN
// "Issuance, end to end" step 6). Call it when the terminal starts, before any issuance;
// operator is who is recorded in the audit ("-" before log-in).
//
//   - started (the prepare request was never sent): nothing exists at the CA → aborted.
//   - channel opened (prepare sent, answer not journaled): the exact request is replayed with
//     the same request id, which the CA answers idempotently, to learn whether it issued; an
//     issuance found is aborted; none → aborted with nothing at the CA.
//   - prepared, written, pin set, verified, aborting: aborted at the CA (revoked, reason 0);
//     if the CA answers that it delivered already (the confirmation reached it), the entry is
//     marked delivered.
//
// Entries whose CA cannot be reached stay unfinished (OutcomePending) for the next Recover;
// the CA revokes them at their deadline anyway. Returns ErrBusy while an issuance runs.
func (o *Orchestrator) Recover(ctx context.Context, operator string) ([]Resolution, error) {
	lock, err := acquire(o.cfg.LockPath)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	entries, err := List(ctx, o.cfg.DB, Filter{Unresolved: true})
	if err != nil {
		return nil, err
	}
	out := make([]Resolution, 0, len(entries))
	for _, e := range entries {
		mayHoldKey := e.CardCleanup == CleanupRepersonalise
		switch e.State {
		case workflow.IssPrepared, workflow.IssWritten, workflow.IssPINSet, workflow.IssVerified:
			// The script may have been relayed, FINALIZE committed, before the terminal died.
			mayHoldKey = true
		}
		out = append(out, o.resolve(ctx, e, mayHoldKey, "terminal stopped during issuance (recovered at start)", operator))
	}
	return out, nil
}

// resolve ends one unfinished entry: marks it aborting (durably, so a crash here is resumed),
// finds and aborts the CA's issuance, and journals aborted (or delivered when the CA says so).
// actor is recorded in the audit; CA calls carry the operator who started the issuance.
func (o *Orchestrator) resolve(ctx context.Context, e Entry, cardMayHoldKey bool, reason, actor string) Resolution {
	res := Resolution{Entry: e, From: e.State}
	now := o.cfg.Clock.Now
	cleanup := CleanupNone
	if cardMayHoldKey {
		cleanup = CleanupRepersonalise
	}
	if e.State != workflow.IssAborting {
		err := o.tx(ctx, func(tx *sql.Tx) error {
			var err error
			e, err = advance(ctx, tx, e.RequestID, workflow.IssAborting, change{LastError: reason, CardCleanup: cleanup}, now())
			return err
		})
		if err != nil {
			res.Outcome, res.Err = OutcomePending, err
			return res
		}
		if err := o.hookAfter(e); err != nil {
			res.Outcome, res.Err = OutcomePending, err
			return res
		}
	}
	res.Entry = e

	if e.IssuanceID == "" && e.PrepareRequest != "" {
		id, err := o.findByReplay(ctx, e)
		if err != nil {
			res.Outcome, res.Err = OutcomePending, err
			return res
		}
		if id != "" {
			err := o.tx(ctx, func(tx *sql.Tx) error {
				var err error
				e, err = note(ctx, tx, e.RequestID, change{IssuanceID: id}, now())
				return err
			})
			if err != nil {
				res.Outcome, res.Err = OutcomePending, err
				return res
			}
		}
	}

	to := workflow.IssAborted
	if e.IssuanceID != "" {
		st, err := o.cfg.CA.Abort(ctx, e.Operator, e.IssuanceID, wire.AbortRequest{RequestID: abortID(e.RequestID), Reason: truncate(reason, 200),
			CardWritten: e.CardCleanup == CleanupRepersonalise})
		if errors.Is(err, raclient.ErrConflict) {
			// Not abortable: delivered already, or revoked by the CA's own sweeper.
			st, err = o.cfg.CA.Status(ctx, e.Operator, e.IssuanceID)
		}
		if err != nil {
			res.Outcome, res.Err = OutcomePending, err
			return res
		}
		res.CAState, res.RevocationReason = st.State, st.RevocationReason
		switch st.State {
		case "revoked":
		case "delivered":
			to, cleanup = workflow.IssDelivered, CleanupNone
		default:
			res.Outcome, res.Err = OutcomePending, fmt.Errorf("%w: issuance %s is %q after abort", ErrCAAnswer, e.IssuanceID, st.State)
			return res
		}
	}
	res.CardCleanup = to == workflow.IssAborted && e.CardCleanup == CleanupRepersonalise

	detail := map[string]string{"request_id": e.RequestID, "issuance_id": e.IssuanceID, "cert_type": string(e.CertType),
		"from": string(res.From), "started_by": e.Operator, "reason": truncate(reason, 200), "ca_state": res.CAState}
	if res.RevocationReason != nil {
		detail["revocation_reason"] = strconv.Itoa(*res.RevocationReason)
	}
	if res.CardCleanup {
		detail["card_cleanup"] = CleanupRepersonalise
	}
	action := "issuance.aborted"
	if to == workflow.IssDelivered {
		action = "issuance.delivered"
	}
	err := o.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if e, err = advance(ctx, tx, e.RequestID, to, change{}, now()); err != nil {
			return err
		}
		if to == workflow.IssDelivered {
			// a delivered issuance leaves nothing to clean on the card
			if _, err := tx.ExecContext(ctx, `UPDATE issuance_journal SET card_cleanup = '' WHERE request_id = ?`, e.RequestID); err != nil {
				return apperr.Wrap(apperr.Internal, err, "issue: update journal")
			}
			e.CardCleanup = CleanupNone
		}
		return audit.Append(ctx, tx, audit.Entry{At: now(), Operator: actor, Action: action, Target: strconv.FormatInt(e.CaseID, 10),
			Result: audit.ResultOK, Detail: detail})
	})
	if err != nil {
		res.Outcome, res.Err = OutcomePending, err
		return res
	}
	res.Entry = e
	res.Outcome = OutcomeAborted
	if to == workflow.IssDelivered {
		res.Outcome = OutcomeDelivered
	}
	return res
}

func (o *Orchestrator) hookAfter(e Entry) error {
	if o.cfg.stop != nil {
		if err := o.cfg.stop(e); err != nil {
			return errStopped
		}
	}
	return nil
}

// findByReplay resends the journaled prepare request with its request id. The CA answers a
// known request id idempotently (the same prepared issuance), so this learns whether the
// first attempt created an issuance. It returns "" when the CA holds none for this request
// (the channel expired or was refused, the person was refused, ...), and an error when the
// answer is unknown (CA unreachable, or still preparing).
//
// If the first attempt never reached the CA and the channel is still open, the replay
// prepares now; that issuance is then aborted like any other.
func (o *Orchestrator) findByReplay(ctx context.Context, e Entry) (string, error) {
	var req wire.PrepareRequest
	if err := json.Unmarshal([]byte(e.PrepareRequest), &req); err != nil {
		return "", fmt.Errorf("issue: journaled prepare request of %s unreadable: %w", e.RequestID, err)
	}
	resp, err := o.cfg.CA.Prepare(ctx, e.Operator, req)
	switch {
	case err == nil:
		if resp.IssuanceID == "" {
			return "", fmt.Errorf("%w: prepare replay without issuance id", ErrCAAnswer)
		}
		for _, a := range resp.Script {
			clear(a) // never relayed: the card must not get a key for an issuance being aborted
		}
		return resp.IssuanceID, nil
	case errors.Is(err, raclient.ErrUnavailable), errors.Is(err, raclient.ErrInternal), errors.Is(err, raclient.ErrForbidden):
		return "", err
	default:
		// The CA refused the request as a new one, or reports the issuance of this request id
		// as no longer prepared (revoked: a failed prepare or the sweeper): nothing to abort.
		return "", nil
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
