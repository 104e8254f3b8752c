// Package operator keeps the terminal's operators and their permissions.
//
// Permissions are granted one by one: Reception (受付窓口端末アプリケーション), CS (コミュニケーション
// サーバ端末アプリケーション), Supervisor (manages operators) and Audit (reads and exports the
// audit trail). TS Art. 3(4): the CS permission and the reception permission are kept apart and
// given only to the staff who need them; nothing here implies one from another.
//
// Every mutating function runs inside the caller's write transaction and checks, before it
// returns, that at least one active supervisor remains; the caller rolls back on error, so a
// refused change leaves no trace but its audit record.
//
// Concurrency: functions are safe for concurrent use as far as the transaction they are given.
package operator

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"sort"
	"strings"
	"time"

	"madoguchi/app/apperr"
)

// Permission names one duty.
type Permission string

// The permissions (TS Art. 3(4), Art. 20(1)(i): each operator's permissions are set and can be
// checked).
const (
	Reception  Permission = "reception"
	CS         Permission = "cs"
	Supervisor Permission = "supervisor"
	Audit      Permission = "audit"
)

// AllPermissions in display order.
var AllPermissions = []Permission{Reception, CS, Supervisor, Audit}

// Valid reports whether p is one of the known permissions.
func (p Permission) Valid() bool {
	switch p {
	case Reception, CS, Supervisor, Audit:
		return true
	}
	return false
}

// Operator is one member of staff. It holds no password material.
type Operator struct {
	ID             string
	Name           string
	Active         bool
	Permissions    []Permission
	Finger         string // enrolled fprintd finger name; "" if not enrolled
	PasswordExempt bool   // TS Art. 3(3): biometrics impracticable, exemption recorded
	ExemptReason   string
	ExemptBy       string
	Locked         bool
	FailedLogins   int
	CreatedAt      time.Time
	CreatedBy      string
}

// Has reports whether o holds permission p.
func (o Operator) Has(p Permission) bool {
	for _, q := range o.Permissions {
		if q == p {
			return true
		}
	}
	return false
}

// Querier reads (a *sql.Tx, *sql.DB or store.DB).
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateID checks an operator id: 1–64 ASCII letters, digits, '.', '_' or '-', starting
// with a letter or digit (it is also the fprintd storage key, so it must be a plain name).
func ValidateID(id string) error {
	if !idPattern.MatchString(id) {
		return apperr.New(apperr.InvalidInput, "operator: invalid operator id %q", id)
	}
	return nil
}

const timeLayout = time.RFC3339Nano

// Create adds an active operator without permissions.
func Create(ctx context.Context, tx *sql.Tx, by string, at time.Time, id, name string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return apperr.New(apperr.InvalidInput, "operator: empty name")
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM operators WHERE id = ?`, id).Scan(&n); err != nil {
		return apperr.Wrap(apperr.Internal, err, "operator: create")
	}
	if n > 0 {
		return apperr.New(apperr.AlreadyExists, "operator: operator %q already exists", id)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO operators(id, name, created_at, created_by) VALUES (?,?,?,?)`,
		id, name, at.UTC().Format(timeLayout), by)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "operator: create")
	}
	return nil
}

// Count returns the number of operators (0 before bootstrap).
func Count(ctx context.Context, q Querier) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM operators`).Scan(&n); err != nil {
		return 0, apperr.Wrap(apperr.Internal, err, "operator: count")
	}
	return n, nil
}

const selectCols = `id, name, active, finger, password_exempt, exempt_reason, exempt_by, locked, failed_logins, created_at, created_by`

func scan(row interface{ Scan(...any) error }) (Operator, error) {
	var o Operator
	var finger, reason, by sql.NullString
	var created string
	err := row.Scan(&o.ID, &o.Name, &o.Active, &finger, &o.PasswordExempt, &reason, &by, &o.Locked, &o.FailedLogins, &created, &o.CreatedBy)
	if err != nil {
		return o, err
	}
	o.Finger, o.ExemptReason, o.ExemptBy = finger.String, reason.String, by.String
	o.CreatedAt, _ = time.Parse(timeLayout, created)
	return o, nil
}

func loadPermissions(ctx context.Context, q Querier, o *Operator) error {
	rows, err := q.QueryContext(ctx, `SELECT permission FROM operator_permissions WHERE operator_id = ?`, o.ID)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "operator: permissions")
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return apperr.Wrap(apperr.Internal, err, "operator: permissions")
		}
		o.Permissions = append(o.Permissions, Permission(p))
	}
	sort.Slice(o.Permissions, func(i, j int) bool { return order(o.Permissions[i]) < order(o.Permissions[j]) })
	return rows.Err()
}

func order(p Permission) int {
	for i, q := range AllPermissions {
		if q == p {
			return i
		}
	}
	return len(AllPermissions)
}

// Get returns one operator, or an error of kind NotFound.
func Get(ctx context.Context, q Querier, id string) (Operator, error) {
	o, err := scan(q.QueryRowContext(ctx, `SELECT `+selectCols+` FROM operators WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return o, apperr.New(apperr.NotFound, "operator: no operator %q", id)
	}
	if err != nil {
		return o, apperr.Wrap(apperr.Internal, err, "operator: get")
	}
	return o, loadPermissions(ctx, q, &o)
}

// List returns all operators ordered by id.
func List(ctx context.Context, q Querier) ([]Operator, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+selectCols+` FROM operators ORDER BY id`)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "operator: list")
	}
	var out []Operator
	for rows.Next() {
		o, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, apperr.Wrap(apperr.Internal, err, "operator: list")
		}
		out = append(out, o)
	}
	rows.Close()
	for i := range out {
		if err := loadPermissions(ctx, q, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func exec(ctx context.Context, tx *sql.Tx, op, id, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "operator: "+op)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.NotFound, "operator: no operator %q", id)
	}
	return nil
}

// SetActive enables or disables an operator. Disabling the last active supervisor is refused
// with kind LastSupervisor.
func SetActive(ctx context.Context, tx *sql.Tx, id string, active bool) error {
	if err := exec(ctx, tx, "set active", id, `UPDATE operators SET active = ? WHERE id = ?`, active, id); err != nil {
		return err
	}
	return SupervisorRemains(ctx, tx)
}

// Grant gives permission p to operator id (no effect if already held).
func Grant(ctx context.Context, tx *sql.Tx, by string, at time.Time, id string, p Permission) error {
	if !p.Valid() {
		return apperr.New(apperr.InvalidInput, "operator: unknown permission %q", p)
	}
	if _, err := Get(ctx, tx, id); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO operator_permissions(operator_id, permission, granted_by, granted_at) VALUES (?,?,?,?)
		ON CONFLICT DO NOTHING`, id, string(p), by, at.UTC().Format(timeLayout))
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "operator: grant")
	}
	return nil
}

// Withdraw takes permission p from operator id. Withdrawing Supervisor from the last active
// supervisor is refused with kind LastSupervisor.
func Withdraw(ctx context.Context, tx *sql.Tx, id string, p Permission) error {
	if !p.Valid() {
		return apperr.New(apperr.InvalidInput, "operator: unknown permission %q", p)
	}
	if _, err := Get(ctx, tx, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM operator_permissions WHERE operator_id = ? AND permission = ?`, id, string(p)); err != nil {
		return apperr.Wrap(apperr.Internal, err, "operator: withdraw")
	}
	return SupervisorRemains(ctx, tx)
}

// SupervisorRemains returns an error of kind LastSupervisor when no active operator holds the
// Supervisor permission: without one nobody could grant permissions, enrol or unlock anyone.
func SupervisorRemains(ctx context.Context, q Querier) error {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM operators o JOIN operator_permissions p
		ON p.operator_id = o.id AND p.permission = 'supervisor' WHERE o.active = 1`).Scan(&n)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "operator: count supervisors")
	}
	if n == 0 {
		return apperr.New(apperr.LastSupervisor, "operator: the change would leave no active supervisor")
	}
	return nil
}

// SetFinger records the fprintd finger enrolled for id ("" clears it).
func SetFinger(ctx context.Context, tx *sql.Tx, id, finger string) error {
	var v any
	if finger != "" {
		v = finger
	}
	return exec(ctx, tx, "set finger", id, `UPDATE operators SET finger = ? WHERE id = ?`, v, id)
}

// SetExemption records the ID+password exemption for id with the supervisor's reason and the
// password verifier (TS Art. 3(3), CPS §5.1.2.2). The reason is required.
func SetExemption(ctx context.Context, tx *sql.Tx, by, id, reason string, hash, salt []byte) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return apperr.New(apperr.ReasonRequired, "operator: an exemption from biometric log-in needs a recorded reason")
	}
	if len(hash) == 0 || len(salt) == 0 {
		return apperr.New(apperr.InvalidInput, "operator: exemption without password verifier")
	}
	return exec(ctx, tx, "set exemption", id, `UPDATE operators SET password_exempt = 1, exempt_reason = ?, exempt_by = ?,
		password_hash = ?, password_salt = ? WHERE id = ?`, reason, by, hash, salt, id)
}

// ClearExemption withdraws the exemption and erases the password verifier.
func ClearExemption(ctx context.Context, tx *sql.Tx, id string) error {
	return exec(ctx, tx, "clear exemption", id, `UPDATE operators SET password_exempt = 0, exempt_reason = NULL,
		exempt_by = NULL, password_hash = NULL, password_salt = NULL WHERE id = ?`, id)
}

// PasswordVerifier returns the stored argon2id hash and salt of id (nil when none).
func PasswordVerifier(ctx context.Context, q Querier, id string) (hash, salt []byte, err error) {
	err = q.QueryRowContext(ctx, `SELECT password_hash, password_salt FROM operators WHERE id = ?`, id).Scan(&hash, &salt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, apperr.New(apperr.NotFound, "operator: no operator %q", id)
	}
	if err != nil {
		return nil, nil, apperr.Wrap(apperr.Internal, err, "operator: password verifier")
	}
	return hash, salt, nil
}

// RecordFailure counts one failed log-in and locks the operator when the count reaches max.
// It reports whether the operator is now locked.
func RecordFailure(ctx context.Context, tx *sql.Tx, id string, max int) (bool, error) {
	if err := exec(ctx, tx, "record failure", id, `UPDATE operators SET failed_logins = failed_logins + 1,
		locked = CASE WHEN failed_logins + 1 >= ? THEN 1 ELSE locked END WHERE id = ?`, max, id); err != nil {
		return false, err
	}
	o, err := Get(ctx, tx, id)
	return o.Locked, err
}

// ResetFailures clears the failure count after a successful log-in.
func ResetFailures(ctx context.Context, tx *sql.Tx, id string) error {
	return exec(ctx, tx, "reset failures", id, `UPDATE operators SET failed_logins = 0 WHERE id = ?`, id)
}

// Unlock lifts a lockout (supervisor action) and clears the failure count.
func Unlock(ctx context.Context, tx *sql.Tx, id string) error {
	return exec(ctx, tx, "unlock", id, `UPDATE operators SET failed_logins = 0, locked = 0 WHERE id = ?`, id)
}
