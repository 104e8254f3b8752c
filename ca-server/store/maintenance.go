package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrCertificateLive: a key destruction was asked while a certificate for that key on the
// card is still valid, held or on its way (revoke first; CPS §4.9.1.1(1)).
var ErrCertificateLive = errors.New("store: a certificate for this key on the card is not revoked")

// Maintenance states.
const (
	MaintenanceAuthorised = "authorised"
	MaintenanceDone       = "done"
)

// Maintenance is one CA-authorised card maintenance (PIN reset or key destruction).
type Maintenance struct {
	ID            string
	TerminalID    string
	RequestID     string
	RequestSHA256 []byte
	OperatorID    string
	ChannelID     string
	CardSerial    string
	Operation     string     // "pin-reset" or "key-destruction"
	Targets       []CertType // the PIN reset (one) or the keys destroyed (one or both)
	State         string
	Script        []byte // JSON of the protected APDUs; nil once done
	ChannelState  []byte
	CreatedAt     time.Time
	DoneAt        time.Time

	ConfirmRequestID string
	ConfirmSHA256    []byte
}

// CardIssuance is one certificate the CA put (or is putting) on a card, with the
// municipality of the terminal that issued it.
type CardIssuance struct {
	IssuanceID   string
	PersonHash   []byte // keyed hash of the holder's resident-record code (card ownership, issue 17)
	CertType     CertType
	Serial       string
	State        State
	Municipality string
	Delivered    bool      // the card confirmed it (DeliveredAt set)
	NotAfter     time.Time // zero until the certificate's facts are filled (migration 0003)
}

// Live reports whether the certificate still stands for the key on the card at now: being
// issued, or delivered or held and not known to have expired.
func (c CardIssuance) Live(now time.Time) bool {
	switch c.State {
	case StateIssuing, StatePrepared:
		return true
	case StateDelivered, StateHeld:
		return c.NotAfter.IsZero() || now.Before(c.NotAfter)
	}
	return false
}

// CardIssuances lists every issuance to the card with this serial (hex, any case), oldest
// first.
func (s *sqlStore) CardIssuances(ctx context.Context, cardSerial string) ([]CardIssuance, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT i.id, i.person_hash, i.cert_type, i.serial, i.state, t.municipality, i.delivered_at, i.not_after
		FROM issuances i JOIN terminals t ON t.id = i.terminal_id
		WHERE lower(i.card_serial) = lower(?) ORDER BY i.created_at`, cardSerial)
	if err != nil {
		return nil, fmt.Errorf("store: card issuances: %w", err)
	}
	defer rows.Close()
	var out []CardIssuance
	for rows.Next() {
		var c CardIssuance
		var delivered, notAfter sql.NullInt64
		if err := rows.Scan(&c.IssuanceID, &c.PersonHash, &c.CertType, &c.Serial, &c.State, &c.Municipality, &delivered, &notAfter); err != nil {
			return nil, fmt.Errorf("store: card issuances: %w", err)
		}
		c.Delivered, c.NotAfter = delivered.Valid, tfrom(notAfter)
		out = append(out, c)
	}
	return out, rows.Err()
}

const maintenanceCols = `id, terminal_id, request_id, request_sha256, operator_id, channel_id, card_serial, operation,
	targets, state, script, channel_state, created_at, done_at, confirm_request_id, confirm_sha256`

func scanMaintenance(row interface{ Scan(...any) error }) (Maintenance, error) {
	var m Maintenance
	var targets string
	var created int64
	var done sql.NullInt64
	var confirmReq sql.NullString
	err := row.Scan(&m.ID, &m.TerminalID, &m.RequestID, &m.RequestSHA256, &m.OperatorID, &m.ChannelID, &m.CardSerial, &m.Operation,
		&targets, &m.State, &m.Script, &m.ChannelState, &created, &done, &confirmReq, &m.ConfirmSHA256)
	for _, t := range strings.Split(targets, ",") {
		if t != "" {
			m.Targets = append(m.Targets, CertType(t))
		}
	}
	m.CreatedAt, m.DoneAt, m.ConfirmRequestID = time.Unix(0, created).UTC(), tfrom(done), confirmReq.String
	return m, err
}

func getMaintenance(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, where string, args ...any) (Maintenance, error) {
	m, err := scanMaintenance(q.QueryRowContext(ctx, `SELECT `+maintenanceCols+` FROM card_maintenance WHERE `+where, args...))
	if err != nil {
		return Maintenance{}, notFound(err, "card maintenance")
	}
	return m, nil
}

// Maintenance returns one card maintenance.
func (s *sqlStore) Maintenance(ctx context.Context, id string) (Maintenance, error) {
	return getMaintenance(ctx, s.r, "id = ?", id)
}

// MaintenanceByRequest returns the maintenance a terminal asked for with requestID.
func (s *sqlStore) MaintenanceByRequest(ctx context.Context, terminalID, requestID string) (Maintenance, error) {
	return getMaintenance(ctx, s.r, "terminal_id = ? AND request_id = ?", terminalID, requestID)
}

// BeginMaintenance consumes the channel and records the authorised maintenance with its
// script, in one transaction. For a key destruction it checks again, inside the transaction,
// that no certificate for a destroyed key on the card is live at now (ErrCertificateLive), so
// a concurrent issuance cannot slip in between the service's check and this record. It fails
// with ErrDuplicateReq, ErrChannelUsed, ErrChannelExpired or ErrNotFound (unknown or another
// terminal's channel) as BeginIssuance does.
func (s *sqlStore) BeginMaintenance(ctx context.Context, m Maintenance, now time.Time) error {
	if m.ID == "" || m.RequestID == "" || len(m.RequestSHA256) != 32 || len(m.ChannelState) == 0 || len(m.Script) == 0 || len(m.Targets) == 0 {
		return errors.New("store: maintenance lacks id, request id, request hash, script, channel state or targets")
	}
	var targets []string
	for _, t := range m.Targets {
		if !t.Valid() {
			return fmt.Errorf("store: unknown certificate type %q", t)
		}
		targets = append(targets, string(t))
	}
	return s.tx(ctx, func(tx *dbTx) error {
		var dup string
		err := tx.QueryRowContext(ctx, `SELECT id FROM card_maintenance WHERE terminal_id = ? AND request_id = ?`, m.TerminalID, m.RequestID).Scan(&dup)
		if err == nil {
			return fmt.Errorf("%w: maintenance %s", ErrDuplicateReq, dup)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: check request id: %w", err)
		}
		var chTerminal string
		var expires int64
		var used sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT terminal_id, expires_at, used_at FROM channels WHERE id = ?`, m.ChannelID).Scan(&chTerminal, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && chTerminal != m.TerminalID) {
			return fmt.Errorf("%w: channel %q", ErrNotFound, m.ChannelID)
		}
		if err != nil {
			return fmt.Errorf("store: read channel: %w", err)
		}
		if used.Valid {
			return fmt.Errorf("%w: channel %q", ErrChannelUsed, m.ChannelID)
		}
		if now.UnixNano() >= expires {
			return fmt.Errorf("%w: channel %q", ErrChannelExpired, m.ChannelID)
		}
		if m.Operation == "key-destruction" {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM issuances
				WHERE lower(card_serial) = lower(?) AND instr(',' || ? || ',', ',' || cert_type || ',') > 0
				AND (state IN ('issuing', 'prepared') OR (state IN ('delivered', 'held') AND (not_after IS NULL OR not_after > ?)))`,
				m.CardSerial, strings.Join(targets, ","), now.UnixNano()).Scan(&n); err != nil {
				return fmt.Errorf("store: check live certificates: %w", err)
			}
			if n > 0 {
				return fmt.Errorf("%w (%s)", ErrCertificateLive, strings.Join(targets, ","))
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE channels SET used_at = ? WHERE id = ?`, now.UnixNano(), m.ChannelID); err != nil {
			return fmt.Errorf("store: consume channel: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO card_maintenance (id, terminal_id, request_id, request_sha256, operator_id, channel_id,
			card_serial, operation, targets, state, script, channel_state, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'authorised', ?, ?, ?)`,
			m.ID, m.TerminalID, m.RequestID, m.RequestSHA256, m.OperatorID, m.ChannelID,
			m.CardSerial, m.Operation, strings.Join(targets, ","), m.Script, m.ChannelState, now.UnixNano())
		switch {
		case isUnique(err, "channel_id"):
			return fmt.Errorf("%w: channel %q", ErrChannelUsed, m.ChannelID)
		case isUnique(err, ""):
			return fmt.Errorf("%w: maintenance id exists: %v", ErrConflict, err)
		case err != nil:
			return fmt.Errorf("store: insert maintenance: %w", err)
		}
		return nil
	})
}

// FinishMaintenance marks an authorised maintenance done with the hash of the card's
// verified responses and erases its script. A repeat with the same confirmRequestID returns
// it unchanged; with another id it fails with ErrState.
func (s *sqlStore) FinishMaintenance(ctx context.Context, id, confirmRequestID string, confirmSHA256 []byte, now time.Time) (Maintenance, error) {
	if confirmRequestID == "" || len(confirmSHA256) == 0 {
		return Maintenance{}, errors.New("store: confirmation lacks request id or hash")
	}
	var m Maintenance
	err := s.tx(ctx, func(tx *dbTx) error {
		cur, err := getMaintenance(ctx, tx, "id = ?", id)
		if err != nil {
			return err
		}
		if cur.State == MaintenanceDone && cur.ConfirmRequestID == confirmRequestID {
			m = cur
			return nil
		}
		if cur.State != MaintenanceAuthorised {
			return fmt.Errorf("%w: maintenance %s is %s, not authorised", ErrState, id, cur.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE card_maintenance SET state = 'done', done_at = ?, confirm_request_id = ?, confirm_sha256 = ?, script = NULL WHERE id = ?`,
			now.UnixNano(), confirmRequestID, confirmSHA256, id); err != nil {
			return fmt.Errorf("store: finish maintenance: %w", err)
		}
		m, err = getMaintenance(ctx, tx, "id = ?", id)
		return err
	})
	return m, err
}
