package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"
)

// SignTerminal signs a terminal's client certificate for the municipality
// its enrolment token names, and returns the certificate's SHA-256 and
// notAfter. It runs inside the enrolment transaction.
type SignTerminal func(municipality string) (certSHA256 []byte, notAfter time.Time, err error)

// EnrolTerminalSigned consumes the enrolment token and records the terminal
// together with its signed certificate in one write transaction: sign is
// called inside it, after the token was found unused and unexpired, and if
// sign or any write fails nothing changes and the token stays usable. A
// spent token therefore always has a terminal with a certificate (TS Art.
// 7(i): a terminal that could not be given its certificate must be able to
// enrol again with the same token).
//
// sign holds the single write connection (SQLite) or a connection in an
// open transaction (PostgreSQL) while it runs, so it must be short (one HSM
// signature) and must not use the store. On PostgreSQL a transaction that
// loses a serialisation race runs again, calling sign again for the same
// terminal and serial: only the certificate of the committed run is
// recorded and returned.

func (s *sqlStore) EnrolTerminalSigned(ctx context.Context, tokenSHA256 []byte, t Terminal, now time.Time, sign SignTerminal) (Terminal, error) {
	if sign == nil {
		return Terminal{}, errors.New("store: enrolment needs a signing function")
	}
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
		fp, notAfter, err := sign(muni)
		if err != nil {
			return err
		}
		if len(fp) != 32 {
			return errors.New("store: certificate hash must be 32 bytes")
		}
		t.Municipality, t.EnrolledAt, t.CertSHA256, t.CertNotAfter = muni, now, fp, notAfter
		_, err = tx.ExecContext(ctx, `INSERT INTO terminals (id, municipality, cert_serial, cert_sha256, cert_not_after, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)`,
			t.ID, t.Municipality, t.CertSerial, fp, notAfter.UnixNano(), now.UnixNano())
		if isUnique(err, "") {
			return fmt.Errorf("%w: terminal id, certificate serial or certificate exists", ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: insert terminal: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE enrolment_tokens SET used_at = ?, terminal_id = ? WHERE token_sha256 = ?`,
			now.UnixNano(), t.ID, tokenSHA256); err != nil {
			return fmt.Errorf("store: consume enrolment token: %w", err)
		}
		return nil
	})
	if err != nil {
		return Terminal{}, err
	}
	return t, nil
}

// PrivateFileMode is the mode of the database file and of SQLite's -wal and
// -shm files: they hold terminal, issuance and audit records (CPS §5.4:
// records protected against alteration; only the CA's own account reads
// them).
const PrivateFileMode os.FileMode = 0o600

// MakePrivate creates the database file at path with PrivateFileMode if it
// does not exist, and narrows an existing database file and its -wal and
// -shm files to PrivateFileMode (data dirs made when the file was created
// 0644). SQLite creates -wal and -shm with the database file's mode, so
// creating the database file 0600 first keeps all three private.
func MakePrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, PrivateFileMode)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if fi.Mode().Perm() != PrivateFileMode {
			if err := os.Chmod(p, PrivateFileMode); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
	}
	return nil
}
