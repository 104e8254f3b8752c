package resident

import (
	"context"
	"database/sql"
	"time"

	"madoguchi/app/apperr"
)

// ChangeKind is a resident-register change that can revoke certificates (R02 II-3-1(2),
// DOMAIN §5). Which certificates each kind revokes is the CA's rule table; the terminal only
// signals "this person's record changed".
type ChangeKind string

// Change kinds.
const (
	MoveIn        ChangeKind = "move_in"
	MoveOut       ChangeKind = "move_out"
	NameChange    ChangeKind = "name_change"
	AddressChange ChangeKind = "address_change"
	Death         ChangeKind = "death"
	Emigration    ChangeKind = "emigration" // 国外転出: continues on the 戸籍の附票 path
	Correction    ChangeKind = "correction" // birth date or sex corrected
)

// Change is one recorded change. New* fields apply to the register where relevant.
type Change struct {
	RecordCode string
	Kind       ChangeKind
	Effective  string // YYYY-MM-DD
	NewName    string // NameChange
	NewKana    string // NameChange
	NewAddress string // MoveIn, AddressChange
}

// PendingChange is an outbox entry not yet sent to the CA.
type PendingChange struct {
	ID         int64
	RecordCode string
	Kind       ChangeKind
	Effective  string
	RecordedAt time.Time
	RecordedBy string // the CS operator who recorded it (named to the CA as the requester)
	// Attempts counts failed deliveries; NextAttemptAt is when the sender tries again (zero:
	// at once); LastError is the last failure (English).
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
}

// caEvents maps the terminal's change kinds to the events of the CA's rule table
// (ca-server/revocation/rules.json, "changes"). The CA decides which certificates an event
// revokes; the terminal only names the event (R02 II-3-1(2)).
var caEvents = map[ChangeKind]string{
	MoveIn:        "move-in",
	MoveOut:       "move-out",
	NameChange:    "name-changed",
	AddressChange: "address-changed",
	Death:         "death",
	Emigration:    "emigration",
	// A corrected birth date or sex means the record was wrong: 記録誤り (CPS §4.9.1.1(2)).
	Correction: "record-error",
}

// CAEvent returns the CA's event name for kind (kind InvalidInput for an unknown kind).
func CAEvent(kind ChangeKind) (string, error) {
	e, ok := caEvents[kind]
	if !ok {
		return "", apperr.New(apperr.InvalidInput, "resident: change kind %q has no CA event", kind)
	}
	return e, nil
}

// RecordChange applies c to the register and puts it in the outbox for change-driven revocation.
func RecordChange(ctx context.Context, tx *sql.Tx, c Change, by string, now time.Time) error {
	r, err := SQLRegister{Q: tx}.Get(ctx, c.RecordCode)
	if err != nil {
		return err
	}
	if !datePattern.MatchString(c.Effective) {
		return apperr.New(apperr.InvalidInput, "resident: effective date must be YYYY-MM-DD")
	}
	if r.Status == StatusDeceased {
		return apperr.New(apperr.ResidentNotEligible, "resident: %s is deceased", c.RecordCode)
	}
	switch c.Kind {
	case MoveIn:
		if c.NewAddress == "" {
			return apperr.New(apperr.InvalidInput, "resident: move-in needs the new address")
		}
		r.Status, r.Address, r.FuhyoAddress, r.Honseki = StatusResident, c.NewAddress, "", ""
	case MoveOut:
		r.Status = StatusMovedOut
	case NameChange:
		if c.NewName == "" || c.NewKana == "" {
			return apperr.New(apperr.InvalidInput, "resident: name change needs the new name and kana")
		}
		r.Name, r.NameKana = c.NewName, c.NewKana
	case AddressChange:
		if c.NewAddress == "" {
			return apperr.New(apperr.InvalidInput, "resident: address change needs the new address")
		}
		r.Address = c.NewAddress
	case Death:
		r.Status = StatusDeceased
	case Emigration:
		if r.FuhyoAddress == "" {
			r.FuhyoAddress = r.Address
		}
		if r.Honseki == "" {
			r.Honseki = "（附票管理市町村で管理）"
		}
		r.Status, r.Address = StatusAbroad, ""
	case Correction:
	default:
		return apperr.New(apperr.InvalidInput, "resident: unknown change kind %q", c.Kind)
	}
	if err := Put(ctx, tx, r, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO resident_changes(record_code, kind, effective, recorded_by, recorded_at) VALUES (?,?,?,?,?)`,
		c.RecordCode, string(c.Kind), c.Effective, by, now.UTC().Format(time.RFC3339Nano)); err != nil {
		return apperr.Wrap(apperr.Internal, err, "resident: record change")
	}
	return nil
}

// Pending returns the outbox entries not yet sent, oldest first.
func Pending(ctx context.Context, q Querier) ([]PendingChange, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, record_code, kind, effective, recorded_at, recorded_by, attempts, next_attempt_at, last_error
		FROM resident_changes WHERE sent_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "resident: pending changes")
	}
	defer rows.Close()
	var out []PendingChange
	for rows.Next() {
		var p PendingChange
		var at, next string
		if err := rows.Scan(&p.ID, &p.RecordCode, &p.Kind, &p.Effective, &at, &p.RecordedBy, &p.Attempts, &next, &p.LastError); err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "resident: pending changes")
		}
		p.RecordedAt, _ = time.Parse(time.RFC3339Nano, at)
		if next != "" {
			p.NextAttemptAt, _ = time.Parse(time.RFC3339Nano, next)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// MarkSent marks an outbox entry as delivered to the CA.
func MarkSent(ctx context.Context, tx *sql.Tx, id int64, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE resident_changes SET sent_at = ? WHERE id = ? AND sent_at IS NULL`, now.UTC().Format(time.RFC3339Nano), id)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "resident: mark sent")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.NotFound, "resident: no pending change %d", id)
	}
	return nil
}

// MarkDelivered marks an outbox entry as delivered, with the CA's change id.
func MarkDelivered(ctx context.Context, tx *sql.Tx, id, caChangeID int64, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE resident_changes SET sent_at = ?, ca_change_id = ?, last_error = '' WHERE id = ? AND sent_at IS NULL`,
		now.UTC().Format(time.RFC3339Nano), caChangeID, id)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "resident: mark delivered")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.NotFound, "resident: no pending change %d", id)
	}
	return nil
}

// MarkFailed records a failed delivery: one more attempt, the error, and when to try again.
func MarkFailed(ctx context.Context, tx *sql.Tx, id int64, failure string, next time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE resident_changes SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ? AND sent_at IS NULL`,
		failure, next.UTC().Format(time.RFC3339Nano), id)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "resident: mark failed")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.NotFound, "resident: no pending change %d", id)
	}
	return nil
}
