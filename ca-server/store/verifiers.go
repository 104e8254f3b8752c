package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrVerifierRevoked: the verifier's registration was withdrawn.
var ErrVerifierRevoked = errors.New("store: verifier registration revoked")

// Verifier is a registered relying party (署名検証者 / 利用者証明検証者) that
// may fetch CRLs and query OCSP (CPS §1.3.4, §2.4; TS Arts. 33, 36),
// identified by the SHA-256 of its TLS client certificate.
type Verifier struct {
	ID           string
	Name         string
	CertSHA256   []byte
	CertSerial   string
	NotAfter     time.Time
	IssuedHere   bool // the internal TLS CA issued the certificate
	RegisteredAt time.Time
	RevokedAt    time.Time
}

// Revoked reports whether the registration was withdrawn.
func (v Verifier) Revoked() bool { return !v.RevokedAt.IsZero() }

const verifierCols = `id, name, cert_sha256, cert_serial, not_after, issued_here, registered_at, revoked_at`

func scanVerifier(row interface{ Scan(...any) error }) (Verifier, error) {
	var v Verifier
	var notAfter, reg int64
	var revoked sql.NullInt64
	err := row.Scan(&v.ID, &v.Name, &v.CertSHA256, &v.CertSerial, &notAfter, &v.IssuedHere, &reg, &revoked)
	v.NotAfter, v.RegisteredAt, v.RevokedAt = time.Unix(0, notAfter).UTC(), time.Unix(0, reg).UTC(), tfrom(revoked)
	return v, err
}

// AddVerifier registers a verifier. ErrConflict if the name or the
// certificate is registered already.
func (s *sqlStore) AddVerifier(ctx context.Context, v Verifier) error {
	if v.ID == "" || v.Name == "" || len(v.Name) > 128 || len(v.CertSHA256) != 32 || v.CertSerial == "" || v.NotAfter.IsZero() || v.RegisteredAt.IsZero() {
		return errors.New("store: verifier lacks id, name (1–128 bytes), certificate hash, serial, expiry or registration time")
	}
	return s.tx(ctx, func(tx *dbTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO verifiers (`+verifierCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`,
			v.ID, v.Name, v.CertSHA256, v.CertSerial, v.NotAfter.UnixNano(), v.IssuedHere, v.RegisteredAt.UnixNano())
		if isUnique(err, "") {
			return fmt.Errorf("%w: verifier name or certificate already registered", ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: add verifier: %w", err)
		}
		return nil
	})
}

// VerifierByFingerprint returns the verifier holding the certificate with
// the SHA-256, revoked or not, or ErrNotFound.
func (s *sqlStore) VerifierByFingerprint(ctx context.Context, certSHA256 []byte) (Verifier, error) {
	v, err := scanVerifier(s.r.QueryRowContext(ctx, `SELECT `+verifierCols+` FROM verifiers WHERE cert_sha256 = ?`, certSHA256))
	if err != nil {
		return Verifier{}, notFound(err, "verifier")
	}
	return v, nil
}

// Verifiers lists every registration, oldest first.
func (s *sqlStore) Verifiers(ctx context.Context) ([]Verifier, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+verifierCols+` FROM verifiers ORDER BY registered_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: verifiers: %w", err)
	}
	defer rows.Close()
	var out []Verifier
	for rows.Next() {
		v, err := scanVerifier(rows)
		if err != nil {
			return nil, fmt.Errorf("store: verifiers: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// RevokeVerifier withdraws the registration named name. ErrNotFound,
// ErrVerifierRevoked (no change) if it was withdrawn before.
func (s *sqlStore) RevokeVerifier(ctx context.Context, name string, now time.Time) (Verifier, error) {
	var v Verifier
	err := s.tx(ctx, func(tx *dbTx) error {
		var err error
		v, err = scanVerifier(tx.QueryRowContext(ctx, `SELECT `+verifierCols+` FROM verifiers WHERE name = ?`, name))
		if err != nil {
			return notFound(err, fmt.Sprintf("verifier %q", name))
		}
		if v.Revoked() {
			return fmt.Errorf("%w: %q at %s", ErrVerifierRevoked, name, v.RevokedAt.Format(time.RFC3339))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE verifiers SET revoked_at = ? WHERE id = ?`, now.UnixNano(), v.ID); err != nil {
			return fmt.Errorf("store: revoke verifier: %w", err)
		}
		v.RevokedAt = now.UTC()
		return nil
	})
	return v, err
}
