package store

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"
)

// Revocation errors callers branch on (errors.Is).
var (
	// ErrAlreadyRevoked: CPS §4.9: revocation is never undone, and a revoked
	// certificate is not revoked, held or released again.
	ErrAlreadyRevoked = errors.New("store: certificate already revoked")
	// ErrNotHeld: only a certificate on hold can be released.
	ErrNotHeld = errors.New("store: certificate is not on hold")
	// ErrAlreadyHeld: a held certificate is not held again.
	ErrAlreadyHeld = errors.New("store: certificate already on hold")
)

// Revocation reasons used by the revocation additions (CPS §4.9.9).
const (
	ReasonCACompromise    = 2
	ReasonCertificateHold = 6
)

// StatusAction is what a status request does to a certificate.
type StatusAction string

const (
	ActionRevoke  StatusAction = "revoke"
	ActionHold    StatusAction = "hold"
	ActionRelease StatusAction = "release"
)

// StatusRequest is one revocation, hold or release of one certificate, as
// recorded (TS Arts. 12–16: revocation requests are kept). Reason is
// ignored for a release.
type StatusRequest struct {
	ID        int64
	Serial    string // lowercase hex without leading zeros (tlsca.SerialHex, issuance)
	Action    StatusAction
	Kind      string // request kind of ca-server/revocation, or "change:<event>"
	Reason    int
	Channel   string // counter, online-signed, phone, system
	Terminal  string // terminal id, or "local"
	Operator  string
	RequestID string // idempotency key of the terminal; may be empty
	Evidence  string // identity document, written request reference, phone note
	At        time.Time

	// Municipality, when set (a terminal's request), must act for the
	// certificate's holder (authority.go), or the request fails with
	// ErrOtherMunicipality; PersonHash, when set, must be the holder's
	// (ErrPersonMismatch). Neither is recorded: the status request keeps the
	// terminal, which names its municipality.
	Municipality string
	PersonHash   []byte
}

// Certificate is an issuance with its revocation status.
type Certificate struct {
	Issuance
	HeldAt time.Time // zero unless State == StateHeld
}

// NormalizeSerial parses a hexadecimal certificate serial and returns it as
// the store keeps it (lowercase, no leading zeros). ok is false for
// anything but a positive hexadecimal number of at most 20 octets.
func NormalizeSerial(s string) (string, bool) {
	if s == "" || len(s) > 42 {
		return "", false
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 || n.BitLen() > 160 {
		return "", false
	}
	return n.Text(16), true
}

type queryer interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func getCertificate(ctx context.Context, q queryer, serial string) (Certificate, error) {
	row := q.QueryRowContext(ctx, `SELECT `+issuanceCols+`, held_at FROM issuances WHERE serial = ?`, serial)
	var held sql.NullInt64
	var c Certificate
	is, err := scanIssuance(scanWithExtra{row, &held})
	if err != nil {
		return Certificate{}, notFound(err, fmt.Sprintf("certificate %q", serial))
	}
	c.Issuance, c.HeldAt = is, tfrom(held)
	return c, nil
}

// scanWithExtra appends destinations after the issuance columns.
type scanWithExtra struct {
	row   interface{ Scan(...any) error }
	extra *sql.NullInt64
}

func (s scanWithExtra) Scan(dest ...any) error { return s.row.Scan(append(dest, s.extra)...) }

// CertificateBySerial returns the certificate with the serial (any state),
// or ErrNotFound.
func (s *sqlStore) CertificateBySerial(ctx context.Context, serial string) (Certificate, error) {
	return getCertificate(ctx, s.r, serial)
}

func insertStatusRequest(ctx context.Context, tx *dbTx, r StatusRequest) error {
	var reason any = r.Reason
	if r.Action == ActionRelease {
		reason = nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO status_requests (serial, action, kind, reason, channel, terminal, operator, request_id, evidence, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Serial, string(r.Action), r.Kind, reason, r.Channel, r.Terminal, r.Operator, snull(r.RequestID), r.Evidence, r.At.UnixNano())
	if isUnique(err, "") {
		return fmt.Errorf("%w: request id %q", ErrDuplicateReq, r.RequestID)
	}
	if err != nil {
		return fmt.Errorf("store: record status request: %w", err)
	}
	return nil
}

// replayed reports whether the terminal's request id already did action to
// serial (an idempotent retry).
func replayed(ctx context.Context, tx *dbTx, r StatusRequest) (bool, error) {
	if r.RequestID == "" {
		return false, nil
	}
	var serial, action string
	err := tx.QueryRowContext(ctx, `SELECT serial, action FROM status_requests WHERE terminal = ? AND request_id = ?`, r.Terminal, r.RequestID).
		Scan(&serial, &action)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: read status request: %w", err)
	}
	if serial != r.Serial || action != string(r.Action) {
		return false, fmt.Errorf("%w: request id %q was used for another request", ErrDuplicateReq, r.RequestID)
	}
	return true, nil
}

func checkStatusRequest(r StatusRequest) error {
	if r.Serial == "" || r.Kind == "" || r.Channel == "" || r.Terminal == "" || r.Operator == "" || r.At.IsZero() {
		return errors.New("store: status request lacks serial, kind, channel, terminal, operator or time")
	}
	if r.Action != ActionRelease && (r.Reason < 0 || r.Reason > 6) {
		return fmt.Errorf("store: reason %d outside 0–6 (CPS §4.9.9)", r.Reason)
	}
	return nil
}

// RevokeCertificate revokes a delivered or held certificate with r.Reason at
// r.At and records the request, in one transaction. A retry with the same
// terminal and request id returns the certificate unchanged. Errors:
// ErrNotFound, ErrAlreadyRevoked (no change: revocation is never undone),
// ErrState (not yet delivered: such issuances end by abort), ErrDuplicateReq.
func (s *sqlStore) RevokeCertificate(ctx context.Context, r StatusRequest) (Certificate, error) {
	r.Action = ActionRevoke
	if r.Reason == ReasonCertificateHold {
		return Certificate{}, errors.New("store: a hold is not a revocation (use HoldCertificate)")
	}
	return s.changeStatus(ctx, r, func(cur Certificate) error {
		switch cur.State {
		case StateRevoked:
			return fmt.Errorf("%w: %s at %s, reason %d", ErrAlreadyRevoked, r.Serial, cur.RevokedAt.Format(time.RFC3339), cur.RevocationReason)
		case StateDelivered, StateHeld:
			return nil
		}
		return fmt.Errorf("%w: certificate %s is %s, not delivered", ErrState, r.Serial, cur.State)
	}, "revoke", `UPDATE issuances SET state = 'revoked', revoked_at = ?, revocation_reason = ?, script = NULL WHERE serial = ?`,
		r.At.UnixNano(), r.Reason, r.Serial)
}

// HoldCertificate puts a delivered certificate on hold (reason 6) at r.At
// and records the request. Errors: ErrNotFound, ErrAlreadyRevoked,
// ErrAlreadyHeld, ErrState, ErrDuplicateReq; a retry with the same request
// id returns the certificate unchanged.
func (s *sqlStore) HoldCertificate(ctx context.Context, r StatusRequest) (Certificate, error) {
	r.Action, r.Reason = ActionHold, ReasonCertificateHold
	return s.changeStatus(ctx, r, func(cur Certificate) error {
		switch cur.State {
		case StateRevoked:
			return fmt.Errorf("%w: %s", ErrAlreadyRevoked, r.Serial)
		case StateHeld:
			return fmt.Errorf("%w: %s since %s", ErrAlreadyHeld, r.Serial, cur.HeldAt.Format(time.RFC3339))
		case StateDelivered:
			return nil
		}
		return fmt.Errorf("%w: certificate %s is %s, not delivered", ErrState, r.Serial, cur.State)
	}, "hold", `UPDATE issuances SET state = 'held', held_at = ? WHERE serial = ?`, r.At.UnixNano(), r.Serial)
}

// ReleaseHold returns a held certificate to delivered and records the
// request. Errors: ErrNotFound, ErrAlreadyRevoked, ErrNotHeld (no change),
// ErrDuplicateReq; a retry with the same request id returns the certificate
// unchanged.
func (s *sqlStore) ReleaseHold(ctx context.Context, r StatusRequest) (Certificate, error) {
	r.Action = ActionRelease
	return s.changeStatus(ctx, r, func(cur Certificate) error {
		switch cur.State {
		case StateRevoked:
			return fmt.Errorf("%w: %s", ErrAlreadyRevoked, r.Serial)
		case StateHeld:
			return nil
		}
		return fmt.Errorf("%w: %s is %s", ErrNotHeld, r.Serial, cur.State)
	}, "release hold", `UPDATE issuances SET state = 'delivered', held_at = NULL WHERE serial = ?`, r.Serial)
}

// changeStatus is one status request in one transaction: an idempotent retry
// (same terminal and request id) returns the certificate unchanged; otherwise
// allowed judges the current state, update (with args) changes it and the
// request is recorded beside it, or nothing changes.
func (s *sqlStore) changeStatus(ctx context.Context, r StatusRequest, allowed func(cur Certificate) error, what, update string, args ...any) (Certificate, error) {
	if err := checkStatusRequest(r); err != nil {
		return Certificate{}, err
	}
	var c Certificate
	err := s.tx(ctx, func(tx *dbTx) error {
		cur, err := getCertificate(ctx, tx, r.Serial)
		if err != nil {
			return err
		}
		if err := checkAuthority(ctx, tx, r, cur); err != nil {
			return err
		}
		if again, err := replayed(ctx, tx, r); err != nil {
			return err
		} else if again {
			c = cur
			return nil
		}
		if err := allowed(cur); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, update, args...); err != nil {
			return fmt.Errorf("store: %s: %w", what, err)
		}
		if err := insertStatusRequest(ctx, tx, r); err != nil {
			return err
		}
		c, err = getCertificate(ctx, tx, r.Serial)
		return err
	})
	return c, err
}

// StatusRequests returns the requests recorded for serial, oldest first.
func (s *sqlStore) StatusRequests(ctx context.Context, serial string) ([]StatusRequest, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, serial, action, kind, reason, channel, terminal, operator, request_id, evidence, at
		FROM status_requests WHERE serial = ? ORDER BY id`, serial)
	if err != nil {
		return nil, fmt.Errorf("store: status requests: %w", err)
	}
	defer rows.Close()
	var out []StatusRequest
	for rows.Next() {
		var r StatusRequest
		var reason sql.NullInt64
		var reqID sql.NullString
		var at int64
		if err := rows.Scan(&r.ID, &r.Serial, &r.Action, &r.Kind, &reason, &r.Channel, &r.Terminal, &r.Operator, &reqID, &r.Evidence, &at); err != nil {
			return nil, fmt.Errorf("store: status requests: %w", err)
		}
		r.Reason, r.RequestID, r.At = int(reason.Int64), reqID.String, time.Unix(0, at).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// CompromiseCA revokes, in one transaction, every certificate of type t not
// yet revoked with reason 2 (cACompromise) at now — whatever its state,
// since the compromised key signed it — records one system request per
// certificate, and lists the CA certificate caSerial in the ARL series
// arlSeries (CPS §4.9.1.1(3), §4.9.12(1)). It returns how many certificates
// it revoked. Certificates revoked before keep their reason and time.
func (s *sqlStore) CompromiseCA(ctx context.Context, t CertType, arlSeries, caSerial, operator, evidence string, now time.Time) (int64, error) {
	if !t.Valid() || arlSeries == "" || caSerial == "" || operator == "" {
		return 0, errors.New("store: CA compromise needs a certificate type, ARL series, CA serial and operator")
	}
	var n int64
	err := s.tx(ctx, func(tx *dbTx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO status_requests (serial, action, kind, reason, channel, terminal, operator, evidence, at)
			SELECT serial, 'revoke', 'ca-compromise', ?, 'system', 'local', ?, ?, ? FROM issuances WHERE cert_type = ? AND state <> 'revoked'`,
			ReasonCACompromise, operator, evidence, now.UnixNano(), string(t)); err != nil {
			return fmt.Errorf("store: record CA compromise requests: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE issuances SET state = 'revoked', revoked_at = ?, revocation_reason = ?, script = NULL
			WHERE cert_type = ? AND state <> 'revoked'`, now.UnixNano(), ReasonCACompromise, string(t))
		if err != nil {
			return fmt.Errorf("store: CA compromise: %w", err)
		}
		n, _ = res.RowsAffected()
		if _, err := tx.ExecContext(ctx, `INSERT INTO authority_revocations (series, serial, revoked_at, reason) VALUES (?, ?, ?, ?)
			ON CONFLICT (series, serial) DO NOTHING`, arlSeries, caSerial, now.UnixNano(), ReasonCACompromise); err != nil {
			return fmt.Errorf("store: ARL entry: %w", err)
		}
		return nil
	})
	return n, err
}

// AuthorityRevocation is one ARL entry: a revoked CA or link certificate.
type AuthorityRevocation struct {
	Series    string
	Serial    string
	RevokedAt time.Time
	Reason    int
}

// AuthorityRevocations returns the ARL entries of series in ascending
// serial order.
func (s *sqlStore) AuthorityRevocations(ctx context.Context, series string) ([]AuthorityRevocation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT series, serial, revoked_at, reason FROM authority_revocations
		WHERE series = ? ORDER BY length(serial), serial`, series)
	if err != nil {
		return nil, fmt.Errorf("store: authority revocations: %w", err)
	}
	defer rows.Close()
	var out []AuthorityRevocation
	for rows.Next() {
		var a AuthorityRevocation
		var at int64
		if err := rows.Scan(&a.Series, &a.Serial, &at, &a.Reason); err != nil {
			return nil, fmt.Errorf("store: authority revocations: %w", err)
		}
		a.RevokedAt = time.Unix(0, at).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// RevokedSnapshot is a consistent read of one CA's revoked and held
// certificates, for the two passes of the streaming CRL writer. Close it.
type RevokedSnapshot struct {
	tx *dbTx
	q  SnapshotQuery
}

// SnapshotQuery selects the entries of one CRL.
type SnapshotQuery struct {
	Type CertType
	// OnlyIssuer, when set, keeps certificates whose authority key
	// identifier is OnlyIssuer; ExceptIssuers drops those signed by the
	// listed keys. Certificates whose issuer is not known (no DER, or facts
	// not filled) are kept by both: a serial too many on a CRL is harmless,
	// one missing is not (CPS §5.6: one CRL per CA key generation).
	OnlyIssuer    []byte
	ExceptIssuers [][]byte
	// ValidAt, when set, drops certificates that expired before it (CPS
	// glossary: the CRL lists certificates revoked within their validity;
	// RFC 5280 §3.3). Certificates whose expiry is not known are kept.
	ValidAt time.Time
	// SerialFrom and SerialBelow, when set, keep serials s with
	// SerialFrom ≤ s < SerialBelow: one shard of a partitioned CRL
	// (crl.Partition.Range; RFC 5280 §5.2.5), filtered in the database so
	// a shard reads only its rows.
	SerialFrom, SerialBelow *big.Int
}

// RevokedSnapshot opens a read transaction over the revoked and held
// certificates of type t. The snapshot does not block writers (SQLite: WAL
// mode; PostgreSQL: a REPEATABLE READ read-only transaction).
func (s *sqlStore) RevokedSnapshot(ctx context.Context, t CertType) (*RevokedSnapshot, error) {
	return s.RevokedSnapshotFor(ctx, SnapshotQuery{Type: t})
}

// RevokedSnapshotFor is RevokedSnapshot narrowed by q. Call
// FillCertificateFacts first, or new certificates count as of unknown
// issuer and expiry.
func (s *sqlStore) RevokedSnapshotFor(ctx context.Context, q SnapshotQuery) (*RevokedSnapshot, error) {
	if !q.Type.Valid() {
		return nil, fmt.Errorf("store: unknown certificate type %q", q.Type)
	}
	opts := &sql.TxOptions{ReadOnly: true}
	if s.r.dialect == dialectPostgres {
		// both passes of the CRL writer must see the same rows
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.r.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("store: begin snapshot: %w", err)
	}
	return &RevokedSnapshot{tx: tx, q: q}, nil
}

// Each yields (serial hex, instant, reason) in ascending serial order: the
// revocation instant and reason of revoked certificates, the hold instant
// and reason 6 of held ones. It stops when yield returns false.
func (r *RevokedSnapshot) Each(ctx context.Context, yield func(serial string, at time.Time, reason int) bool) error {
	// serials are lowercase hex without leading zeros: ordering by length
	// then text is numeric order
	query := `SELECT serial, CASE state WHEN 'held' THEN held_at ELSE revoked_at END,
		CASE state WHEN 'held' THEN 6 ELSE revocation_reason END
		FROM issuances WHERE cert_type = ? AND state IN ('revoked', 'held')`
	args := []any{string(r.q.Type)}
	if r.q.OnlyIssuer != nil {
		query += ` AND (issuer_key_id IS NULL OR issuer_key_id = ?)`
		args = append(args, r.q.OnlyIssuer)
	}
	for _, k := range r.q.ExceptIssuers {
		query += ` AND (issuer_key_id IS NULL OR issuer_key_id <> ?)`
		args = append(args, k)
	}
	if !r.q.ValidAt.IsZero() {
		query += ` AND (not_after IS NULL OR not_after >= ?)`
		args = append(args, r.q.ValidAt.UnixNano())
	}
	// serials are lowercase hex without leading zeros: numeric order is
	// length, then text
	if r.q.SerialFrom != nil {
		h := r.q.SerialFrom.Text(16)
		query += ` AND (length(serial) > ? OR (length(serial) = ? AND serial >= ?))`
		args = append(args, len(h), len(h), h)
	}
	if r.q.SerialBelow != nil {
		h := r.q.SerialBelow.Text(16)
		query += ` AND (length(serial) < ? OR (length(serial) = ? AND serial < ?))`
		args = append(args, len(h), len(h), h)
	}
	rows, err := r.tx.QueryContext(ctx, query+` ORDER BY length(serial), serial`, args...)
	if err != nil {
		return fmt.Errorf("store: revoked certificates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var serial string
		var at, reason int64
		if err := rows.Scan(&serial, &at, &reason); err != nil {
			return fmt.Errorf("store: revoked certificates: %w", err)
		}
		if !yield(serial, time.Unix(0, at).UTC(), int(reason)) {
			return nil
		}
	}
	return rows.Err()
}

// Close ends the snapshot.
func (r *RevokedSnapshot) Close() error { return r.tx.Rollback() }

// neverExpires marks a certificate whose DER does not parse: kept on every
// CRL for good rather than dropped.
const neverExpires = int64(math.MaxInt64)

// FillCertificateFacts reads notAfter and the authority key identifier from
// the DER of every certificate that lacks them (migration 0003) and stores
// them, in batches. It returns how many it filled. Safe to call often: with
// nothing to fill it is one indexed query.
func (s *sqlStore) FillCertificateFacts(ctx context.Context) (int, error) {
	total := 0
	for {
		type fact struct {
			serial   string
			notAfter int64
			keyID    []byte
		}
		var batch []fact
		rows, err := s.r.QueryContext(ctx, `SELECT serial, der FROM issuances WHERE der IS NOT NULL AND not_after IS NULL LIMIT 500`)
		if err != nil {
			return total, fmt.Errorf("store: certificates without facts: %w", err)
		}
		for rows.Next() {
			var serial string
			var der []byte
			if err := rows.Scan(&serial, &der); err != nil {
				rows.Close()
				return total, fmt.Errorf("store: certificates without facts: %w", err)
			}
			f := fact{serial: serial, notAfter: neverExpires}
			if c, err := x509.ParseCertificate(der); err == nil {
				f.notAfter, f.keyID = c.NotAfter.UnixNano(), c.AuthorityKeyId
			}
			batch = append(batch, f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return total, fmt.Errorf("store: certificates without facts: %w", err)
		}
		if len(batch) == 0 {
			return total, nil
		}
		err = s.tx(ctx, func(tx *dbTx) error {
			for _, f := range batch {
				if _, err := tx.ExecContext(ctx, `UPDATE issuances SET not_after = ?, issuer_key_id = ? WHERE serial = ? AND not_after IS NULL`,
					f.notAfter, f.keyID, f.serial); err != nil {
					return fmt.Errorf("store: fill certificate facts: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += len(batch)
	}
}

// ExpireHolds ends the hold of every held certificate that expired at or
// before now (CPS §4.9.16: a hold lasts only while the certificate is
// valid): the certificate returns to delivered — expired, so no longer on
// any CRL — and a system release request "hold-expired" is recorded for
// it, in one transaction. Call FillCertificateFacts first. It returns the
// certificates released.
func (s *sqlStore) ExpireHolds(ctx context.Context, operator string, now time.Time) ([]Certificate, error) {
	if operator == "" || now.IsZero() {
		return nil, errors.New("store: expiring holds needs an operator and a time")
	}
	var out []Certificate
	err := s.tx(ctx, func(tx *dbTx) error {
		out = nil // a retried transaction starts afresh
		rows, err := tx.QueryContext(ctx, `SELECT serial, not_after FROM issuances WHERE state = 'held' AND not_after <= ? ORDER BY not_after`, now.UnixNano())
		if err != nil {
			return fmt.Errorf("store: expired holds: %w", err)
		}
		type due struct {
			serial   string
			notAfter int64
		}
		var ds []due
		for rows.Next() {
			var d due
			if err := rows.Scan(&d.serial, &d.notAfter); err != nil {
				rows.Close()
				return fmt.Errorf("store: expired holds: %w", err)
			}
			ds = append(ds, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: expired holds: %w", err)
		}
		for _, d := range ds {
			if _, err := tx.ExecContext(ctx, `UPDATE issuances SET state = 'delivered', held_at = NULL WHERE serial = ? AND state = 'held'`, d.serial); err != nil {
				return fmt.Errorf("store: end expired hold: %w", err)
			}
			if err := insertStatusRequest(ctx, tx, StatusRequest{Serial: d.serial, Action: ActionRelease, Kind: "hold-expired", Channel: "system",
				Terminal: "local", Operator: operator, Evidence: "certificate expired " + time.Unix(0, d.notAfter).UTC().Format(time.RFC3339), At: now}); err != nil {
				return err
			}
			c, err := getCertificate(ctx, tx, d.serial)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddAuthorityRevocation lists a revoked CA or link certificate in the ARL
// series (CPS §7.2(2)(3)). Listing one twice keeps the first entry.
func (s *sqlStore) AddAuthorityRevocation(ctx context.Context, a AuthorityRevocation) error {
	if a.Series == "" || a.Reason < 0 || a.Reason > 6 || a.RevokedAt.IsZero() {
		return errors.New("store: ARL entry lacks series, reason 0–6 or time")
	}
	norm, ok := NormalizeSerial(a.Serial)
	if !ok {
		return fmt.Errorf("store: ARL entry serial %q is not hexadecimal", a.Serial)
	}
	return s.tx(ctx, func(tx *dbTx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO authority_revocations (series, serial, revoked_at, reason) VALUES (?, ?, ?, ?)
			ON CONFLICT (series, serial) DO NOTHING`, a.Series, norm, a.RevokedAt.UnixNano(), a.Reason); err != nil {
			return fmt.Errorf("store: ARL entry: %w", err)
		}
		return nil
	})
}
