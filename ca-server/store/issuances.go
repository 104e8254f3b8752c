package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const issuanceCols = `id, terminal_id, request_id, request_sha256, operator_id, channel_id, card_serial,
	person_hash, cert_type, supersedes, serial, key_sha256, state, der, script, channel_state,
	created_at, deadline, prepared_at, delivered_at, confirm_request_id, confirm_sha256,
	revoked_at, revocation_reason, abort_request_id`

func scanIssuance(row interface{ Scan(...any) error }) (Issuance, error) {
	var is Issuance
	var created, deadline int64
	var prepared, delivered, revoked, reason sql.NullInt64
	var confirmReq, abortReq sql.NullString
	err := row.Scan(&is.ID, &is.TerminalID, &is.RequestID, &is.RequestSHA256, &is.OperatorID, &is.ChannelID, &is.CardSerial,
		&is.PersonHash, &is.CertType, &is.Supersedes, &is.Serial, &is.KeySHA256, &is.State, &is.DER, &is.Script, &is.ChannelState,
		&created, &deadline, &prepared, &delivered, &confirmReq, &is.ConfirmSHA256,
		&revoked, &reason, &abortReq)
	is.CreatedAt = time.Unix(0, created).UTC()
	is.Deadline = time.Unix(0, deadline).UTC()
	is.PreparedAt, is.DeliveredAt, is.RevokedAt = tfrom(prepared), tfrom(delivered), tfrom(revoked)
	is.RevocationReason = int(reason.Int64)
	is.ConfirmRequestID, is.AbortRequestID = confirmReq.String, abortReq.String
	return is, err
}

func getIssuance(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (Issuance, error) {
	is, err := scanIssuance(q.QueryRowContext(ctx, `SELECT `+issuanceCols+` FROM issuances WHERE id = ?`, id))
	if err != nil {
		return Issuance{}, notFound(err, fmt.Sprintf("issuance %q", id))
	}
	return is, nil
}

// Issuance returns one issuance.
func (s *sqlStore) Issuance(ctx context.Context, id string) (Issuance, error) {
	return getIssuance(ctx, s.r, id)
}

// IssuanceByRequest returns the issuance a terminal prepared with requestID.
func (s *sqlStore) IssuanceByRequest(ctx context.Context, terminalID, requestID string) (Issuance, error) {
	is, err := scanIssuance(s.r.QueryRowContext(ctx, `SELECT `+issuanceCols+` FROM issuances WHERE terminal_id = ? AND request_id = ?`, terminalID, requestID))
	if err != nil {
		return Issuance{}, notFound(err, fmt.Sprintf("issuance for request %q", requestID))
	}
	return is, nil
}

// ValidIssuance returns the person's delivered or held certificate of type t.
func (s *sqlStore) ValidIssuance(ctx context.Context, personHash []byte, t CertType) (Issuance, error) {
	is, err := scanIssuance(s.r.QueryRowContext(ctx, `SELECT `+issuanceCols+` FROM issuances
		WHERE person_hash = ? AND cert_type = ? AND state IN ('delivered', 'held')`, personHash, string(t)))
	if err != nil {
		return Issuance{}, notFound(err, "valid certificate for person")
	}
	return is, nil
}

// OverdueIssuances lists issuing or prepared issuances past their deadline.
func (s *sqlStore) OverdueIssuances(ctx context.Context, now time.Time, limit int) ([]Issuance, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+issuanceCols+` FROM issuances
		WHERE state IN ('issuing', 'prepared') AND deadline < ? ORDER BY deadline LIMIT ?`, now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: overdue issuances: %w", err)
	}
	defer rows.Close()
	var out []Issuance
	for rows.Next() {
		is, err := scanIssuance(rows)
		if err != nil {
			return nil, fmt.Errorf("store: overdue issuances: %w", err)
		}
		out = append(out, is)
	}
	return out, rows.Err()
}

// RecordKeyFingerprint remembers a generated key (TS Art. 5(iii)).
func (s *sqlStore) RecordKeyFingerprint(ctx context.Context, spkiSHA256 []byte, now time.Time) error {
	if len(spkiSHA256) != 32 {
		return errors.New("store: key fingerprint must be 32 bytes")
	}
	return s.tx(ctx, func(tx *dbTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO key_fingerprints (spki_sha256, generated_at) VALUES (?, ?)`, spkiSHA256, now.UnixNano())
		if isUnique(err, "") {
			return fmt.Errorf("%w: fingerprint %x", ErrDuplicateKey, spkiSHA256)
		}
		if err != nil {
			return fmt.Errorf("store: record key fingerprint: %w", err)
		}
		return nil
	})
}

// BeginIssuance consumes the channel and inserts the issuance (see Writer).
func (s *sqlStore) BeginIssuance(ctx context.Context, is Issuance, now time.Time) error {
	if !is.CertType.Valid() {
		return fmt.Errorf("store: unknown certificate type %q", is.CertType)
	}
	if len(is.PersonHash) == 0 || is.Serial == "" || len(is.KeySHA256) != 32 || is.RequestID == "" {
		return errors.New("store: issuance lacks person hash, serial, key fingerprint or request id")
	}
	return s.tx(ctx, func(tx *dbTx) error {
		var dup string
		err := tx.QueryRowContext(ctx, `SELECT id FROM issuances WHERE terminal_id = ? AND request_id = ?`, is.TerminalID, is.RequestID).Scan(&dup)
		if err == nil {
			return fmt.Errorf("%w: issuance %s", ErrDuplicateReq, dup)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: check request id: %w", err)
		}
		var chTerminal string
		var expires int64
		var used sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT terminal_id, expires_at, used_at FROM channels WHERE id = ?`, is.ChannelID).
			Scan(&chTerminal, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && chTerminal != is.TerminalID) {
			// another terminal's channel is reported as unknown
			return fmt.Errorf("%w: channel %q", ErrNotFound, is.ChannelID)
		}
		if err != nil {
			return fmt.Errorf("store: read channel: %w", err)
		}
		if used.Valid {
			return fmt.Errorf("%w: channel %q", ErrChannelUsed, is.ChannelID)
		}
		if now.UnixNano() >= expires {
			return fmt.Errorf("%w: channel %q", ErrChannelExpired, is.ChannelID)
		}
		if !is.Supersedes {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM issuances WHERE person_hash = ? AND cert_type = ? AND state IN ('delivered', 'held')`,
				is.PersonHash, string(is.CertType)).Scan(&n); err != nil {
				return fmt.Errorf("store: check person: %w", err)
			}
			if n > 0 {
				return fmt.Errorf("%w (%s)", ErrDuplicatePerson, is.CertType)
			}
		}
		// Issue 17: checked again here, so two prepares for one card cannot both pass the
		// service's check (issuance/ownership.go).
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM issuances WHERE lower(card_serial) = lower(?) AND person_hash <> ?
			AND (delivered_at IS NOT NULL OR state IN ('issuing', 'prepared', 'delivered', 'held'))`,
			is.CardSerial, is.PersonHash).Scan(&others); err != nil {
			return fmt.Errorf("store: check card owner: %w", err)
		}
		if others > 0 {
			return fmt.Errorf("%w: card %s", ErrCardOtherPerson, is.CardSerial)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE channels SET used_at = ? WHERE id = ?`, now.UnixNano(), is.ChannelID); err != nil {
			return fmt.Errorf("store: consume channel: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO issuances (id, terminal_id, request_id, request_sha256, operator_id, channel_id,
			card_serial, person_hash, cert_type, supersedes, serial, key_sha256, state, created_at, deadline)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'issuing', ?, ?)`,
			is.ID, is.TerminalID, is.RequestID, is.RequestSHA256, is.OperatorID, is.ChannelID,
			is.CardSerial, is.PersonHash, string(is.CertType), is.Supersedes, is.Serial, is.KeySHA256,
			now.UnixNano(), is.Deadline.UnixNano())
		switch {
		case isUnique(err, "person_hash"):
			return fmt.Errorf("%w (%s)", ErrPendingPerson, is.CertType)
		case isUnique(err, "issuances.key_sha256"):
			return fmt.Errorf("%w: key already used by another issuance", ErrDuplicateKey)
		case isUnique(err, ""):
			return fmt.Errorf("%w: issuance id or serial exists: %v", ErrConflict, err)
		case err != nil:
			return fmt.Errorf("store: insert issuance: %w", err)
		}
		return nil
	})
}

// MarkPrepared stores the signed certificate (issuing -> prepared).
func (s *sqlStore) MarkPrepared(ctx context.Context, id string, der, script, channelState []byte, now time.Time) (Issuance, error) {
	if len(der) == 0 {
		return Issuance{}, errors.New("store: empty certificate")
	}
	var is Issuance
	err := s.tx(ctx, func(tx *dbTx) error {
		cur, err := getIssuance(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.State != StateIssuing {
			return fmt.Errorf("%w: issuance %s is %s, not issuing", ErrState, id, cur.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE issuances SET state = 'prepared', der = ?, script = ?, channel_state = ?, prepared_at = ? WHERE id = ?`,
			der, bnull(script), bnull(channelState), now.UnixNano(), id); err != nil {
			return fmt.Errorf("store: mark prepared: %w", err)
		}
		is, err = getIssuance(ctx, tx, id)
		return err
	})
	return is, err
}

// ConfirmIssuance marks a prepared issuance delivered (see Writer). A
// repeated confirmation with the same confirmRequestID returns the issuance
// unchanged; with another id it fails with ErrState.
func (s *sqlStore) ConfirmIssuance(ctx context.Context, id, confirmRequestID string, confirmSHA256 []byte, now time.Time) (Issuance, error) {
	if confirmRequestID == "" || len(confirmSHA256) == 0 {
		return Issuance{}, errors.New("store: confirmation lacks request id or hash")
	}
	var is Issuance
	err := s.tx(ctx, func(tx *dbTx) error {
		cur, err := getIssuance(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.State == StateDelivered && cur.ConfirmRequestID == confirmRequestID {
			is = cur
			return nil
		}
		if cur.State != StatePrepared {
			return fmt.Errorf("%w: issuance %s is %s, not prepared", ErrState, id, cur.State)
		}
		if cur.Supersedes {
			// CPS §4.3.1.1: the old certificate is revoked (superseded)
			// when the new card is delivered, in the same transaction.
			if _, err := tx.ExecContext(ctx, `UPDATE issuances SET state = 'revoked', revoked_at = ?, revocation_reason = ?, script = NULL
				WHERE person_hash = ? AND cert_type = ? AND state IN ('delivered', 'held')`,
				now.UnixNano(), ReasonSuperseded, cur.PersonHash, string(cur.CertType)); err != nil {
				return fmt.Errorf("store: supersede: %w", err)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE issuances SET state = 'delivered', delivered_at = ?, confirm_request_id = ?, confirm_sha256 = ?, script = NULL WHERE id = ?`,
			now.UnixNano(), confirmRequestID, confirmSHA256, id)
		if isUnique(err, "person_hash") {
			return fmt.Errorf("%w (%s)", ErrDuplicatePerson, cur.CertType)
		}
		if err != nil {
			return fmt.Errorf("store: mark delivered: %w", err)
		}
		is, err = getIssuance(ctx, tx, id)
		return err
	})
	return is, err
}

// AbortIssuance revokes an issuing or prepared issuance with reason 0. A
// repeated abort with the same non-empty abortRequestID returns the issuance
// unchanged.
func (s *sqlStore) AbortIssuance(ctx context.Context, id, abortRequestID string, now time.Time) (Issuance, error) {
	var is Issuance
	err := s.tx(ctx, func(tx *dbTx) error {
		cur, err := getIssuance(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.State == StateRevoked && abortRequestID != "" && cur.AbortRequestID == abortRequestID {
			is = cur
			return nil
		}
		if cur.State != StateIssuing && cur.State != StatePrepared {
			return fmt.Errorf("%w: issuance %s is %s, cannot abort", ErrState, id, cur.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE issuances SET state = 'revoked', revoked_at = ?, revocation_reason = ?, abort_request_id = ?, script = NULL WHERE id = ?`,
			now.UnixNano(), ReasonDestroyedBeforeDelivery, snull(abortRequestID), id); err != nil {
			return fmt.Errorf("store: abort issuance: %w", err)
		}
		is, err = getIssuance(ctx, tx, id)
		return err
	})
	return is, err
}

// RevokeReplacedOnCard revokes, with reason 4 (superseded), the certificates whose key an
// aborted renewal may have replaced on the card: the same person's delivered or held
// certificates of the same type on the same card as issuance id, which must be a revoked
// superseding issuance. It returns how many it revoked; a repeat revokes nothing more
// (issue 17: a key replaced by a failed renewal must not leave its certificate valid or held).
func (s *sqlStore) RevokeReplacedOnCard(ctx context.Context, id string, now time.Time) (int, error) {
	var n int
	err := s.tx(ctx, func(tx *dbTx) error {
		cur, err := getIssuance(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.State != StateRevoked || !cur.Supersedes {
			return fmt.Errorf("%w: issuance %s is %s (supersedes %v), not an aborted renewal", ErrState, id, cur.State, cur.Supersedes)
		}
		res, err := tx.ExecContext(ctx, `UPDATE issuances SET state = 'revoked', revoked_at = ?, revocation_reason = ?, script = NULL
			WHERE person_hash = ? AND cert_type = ? AND lower(card_serial) = lower(?) AND id <> ? AND state IN ('delivered', 'held')`,
			now.UnixNano(), ReasonSuperseded, cur.PersonHash, string(cur.CertType), cur.CardSerial, id)
		if err != nil {
			return fmt.Errorf("store: revoke replaced: %w", err)
		}
		k, err := res.RowsAffected()
		n = int(k)
		return err
	})
	return n, err
}
