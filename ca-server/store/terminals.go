package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const terminalCols = `id, municipality, cert_serial, cert_sha256, cert_not_after, enrolled_at, revoked_at`

func scanTerminal(row interface{ Scan(...any) error }) (Terminal, error) {
	var t Terminal
	var notAfter, enrolled, revoked sql.NullInt64
	err := row.Scan(&t.ID, &t.Municipality, &t.CertSerial, &t.CertSHA256, &notAfter, &enrolled, &revoked)
	t.CertNotAfter, t.EnrolledAt, t.RevokedAt = tfrom(notAfter), tfrom(enrolled), tfrom(revoked)
	return t, err
}

// Terminal returns the terminal with the given id.
func (s *sqlStore) Terminal(ctx context.Context, id string) (Terminal, error) {
	t, err := scanTerminal(s.r.QueryRowContext(ctx, `SELECT `+terminalCols+` FROM terminals WHERE id = ?`, id))
	if err != nil {
		return Terminal{}, notFound(err, fmt.Sprintf("terminal %q", id))
	}
	return t, nil
}

// TerminalBySerial returns the terminal whose client certificate has the serial.
func (s *sqlStore) TerminalBySerial(ctx context.Context, certSerial string) (Terminal, error) {
	t, err := scanTerminal(s.r.QueryRowContext(ctx, `SELECT `+terminalCols+` FROM terminals WHERE cert_serial = ?`, certSerial))
	if err != nil {
		return Terminal{}, notFound(err, fmt.Sprintf("terminal with certificate serial %q", certSerial))
	}
	return t, nil
}

// CreateEnrolmentToken stores a token's hash.
func (s *sqlStore) CreateEnrolmentToken(ctx context.Context, tok EnrolmentToken) error {
	if len(tok.TokenSHA256) != 32 {
		return errors.New("store: enrolment token hash must be 32 bytes")
	}
	return s.tx(ctx, func(tx *dbTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO enrolment_tokens (token_sha256, municipality, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			tok.TokenSHA256, tok.Municipality, tok.CreatedAt.UnixNano(), tok.ExpiresAt.UnixNano())
		if isUnique(err, "") {
			return fmt.Errorf("%w: enrolment token exists", ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: insert enrolment token: %w", err)
		}
		return nil
	})
}

// EnrolTerminal consumes a token and inserts the terminal (see Writer).
func (s *sqlStore) EnrolTerminal(ctx context.Context, tokenSHA256 []byte, t Terminal, now time.Time) (Terminal, error) {
	err := s.tx(ctx, func(tx *dbTx) error {
		var muni string
		var expires int64
		var used sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT municipality, expires_at, used_at FROM enrolment_tokens WHERE token_sha256 = ?`, tokenSHA256).
			Scan(&muni, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: unknown token", ErrTokenInvalid)
		}
		if err != nil {
			return fmt.Errorf("store: read enrolment token: %w", err)
		}
		if used.Valid {
			return fmt.Errorf("%w: token already used", ErrTokenInvalid)
		}
		if now.UnixNano() >= expires {
			return fmt.Errorf("%w: token expired", ErrTokenInvalid)
		}
		t.Municipality = muni
		t.EnrolledAt = now
		_, err = tx.ExecContext(ctx, `INSERT INTO terminals (id, municipality, cert_serial, enrolled_at) VALUES (?, ?, ?, ?)`,
			t.ID, t.Municipality, t.CertSerial, now.UnixNano())
		if isUnique(err, "") {
			return fmt.Errorf("%w: terminal id or certificate serial exists", ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: insert terminal: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE enrolment_tokens SET used_at = ?, terminal_id = ? WHERE token_sha256 = ?`,
			now.UnixNano(), t.ID, tokenSHA256)
		if err != nil {
			return fmt.Errorf("store: consume enrolment token: %w", err)
		}
		return nil
	})
	if err != nil {
		return Terminal{}, err
	}
	return t, nil
}

// SetTerminalCertificate records the signed certificate of a terminal.
func (s *sqlStore) SetTerminalCertificate(ctx context.Context, id string, certSHA256 []byte, notAfter time.Time) error {
	if len(certSHA256) != 32 {
		return errors.New("store: certificate hash must be 32 bytes")
	}
	return s.tx(ctx, func(tx *dbTx) error {
		res, err := tx.ExecContext(ctx, `UPDATE terminals SET cert_sha256 = ?, cert_not_after = ? WHERE id = ? AND cert_sha256 IS NULL`,
			certSHA256, notAfter.UnixNano(), id)
		if err != nil {
			return fmt.Errorf("store: set terminal certificate: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: terminal %q unknown or its certificate already set", ErrState, id)
		}
		return nil
	})
}

// RevokeTerminal marks the terminal with the certificate serial revoked.
// Revoking an already revoked terminal returns it unchanged.
func (s *sqlStore) RevokeTerminal(ctx context.Context, certSerial string, now time.Time) (Terminal, error) {
	var t Terminal
	err := s.tx(ctx, func(tx *dbTx) error {
		_, err := tx.ExecContext(ctx, `UPDATE terminals SET revoked_at = ? WHERE cert_serial = ? AND revoked_at IS NULL`, now.UnixNano(), certSerial)
		if err != nil {
			return fmt.Errorf("store: revoke terminal: %w", err)
		}
		t, err = scanTerminal(tx.QueryRowContext(ctx, `SELECT `+terminalCols+` FROM terminals WHERE cert_serial = ?`, certSerial))
		if err != nil {
			return notFound(err, fmt.Sprintf("terminal with certificate serial %q", certSerial))
		}
		return nil
	})
	return t, err
}

// CreateChannel stores a new channel opening.
func (s *sqlStore) CreateChannel(ctx context.Context, c Channel) error {
	return s.tx(ctx, func(tx *dbTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO channels (id, terminal_id, host_challenge, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			c.ID, c.TerminalID, c.HostChallenge, c.CreatedAt.UnixNano(), c.ExpiresAt.UnixNano())
		if isUnique(err, "") {
			return fmt.Errorf("%w: channel %q exists", ErrConflict, c.ID)
		}
		if err != nil {
			return fmt.Errorf("store: insert channel: %w", err)
		}
		return nil
	})
}

// Channel returns a channel opening.
func (s *sqlStore) Channel(ctx context.Context, id string) (Channel, error) {
	var c Channel
	var created, expires int64
	var used sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT id, terminal_id, host_challenge, created_at, expires_at, used_at FROM channels WHERE id = ?`, id).
		Scan(&c.ID, &c.TerminalID, &c.HostChallenge, &created, &expires, &used)
	if err != nil {
		return Channel{}, notFound(err, fmt.Sprintf("channel %q", id))
	}
	c.CreatedAt = time.Unix(0, created).UTC()
	c.ExpiresAt = time.Unix(0, expires).UTC()
	c.UsedAt = tfrom(used)
	return c, nil
}
