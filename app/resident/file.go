package resident

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"time"

	"madoguchi/app/apperr"
)

// The resident-record file (住民票記載事項ファイル, TS Art. 3(1)): the CS application writes it for
// one applicant; the reception application imports it. It is
//   - integrity-protected: HMAC-SHA256 under a key that never leaves the terminal database, or,
//     when the terminal has a PKCS#11 token (--key-uri, app/termkey), under a key that never
//     leaves the token (FileKey), so a file edited on the way (name, address, birth date) is
//     refused (kind FileTampered);
//   - short-lived: refused after its expiry (kind FileExpired);
//   - single use: the first import marks it used, a second import is refused (kind FileUsed).

// FileFormat is the version tag of the file.
const FileFormat = "madoguchi-resident-file/1"

// File is the content of a resident-record file.
type File struct {
	ID         string    `json:"id"`
	Resident   Resident  `json:"resident"`
	ExportedBy string    `json:"exported_by"`
	ExportedAt time.Time `json:"exported_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

type envelope struct {
	Format  string          `json:"format"`
	Payload json.RawMessage `json:"payload"`
	MAC     string          `json:"mac"`
}

const keyName = "resident_file_hmac"

// FileKey computes the file's HMAC-SHA256 with a key held outside the terminal database
// (app/termkey: a generic secret in a PKCS#11 token, so a copy of terminal.db cannot forge a
// file). nil means the key in terminal_secrets.
type FileKey interface {
	MAC(msg []byte) ([]byte, error)
}

// fileMAC is the MAC of payload under key, or under the database key when key is nil (created
// from rnd on first use; rnd nil: no key yet is an error).
func fileMAC(ctx context.Context, tx *sql.Tx, key FileKey, rnd io.Reader, payload []byte) ([]byte, error) {
	if key != nil {
		m, err := key.MAC(append([]byte(FileFormat), payload...))
		if err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "resident: file MAC")
		}
		return m, nil
	}
	k, err := fileKey(ctx, tx, rnd)
	if err != nil {
		return nil, err
	}
	return mac(k, payload), nil
}

// fileKey returns the terminal's file key, creating it from rnd on first use.
func fileKey(ctx context.Context, tx *sql.Tx, rnd io.Reader) ([]byte, error) {
	var key []byte
	err := tx.QueryRowContext(ctx, `SELECT value FROM terminal_secrets WHERE name = ?`, keyName).Scan(&key)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Wrap(apperr.Internal, err, "resident: read file key")
	}
	if rnd == nil {
		return nil, apperr.New(apperr.Internal, "resident: no file key yet")
	}
	key = make([]byte, 32)
	if _, err := io.ReadFull(rnd, key); err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "resident: generate file key")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO terminal_secrets(name, value) VALUES (?, ?)`, keyName, key); err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "resident: store file key")
	}
	return key, nil
}

func mac(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(FileFormat))
	m.Write(payload)
	return m.Sum(nil)
}

// ExportFile writes the resident-record file for recordCode, valid for ttl from now, and records
// it as issued, its MAC made with key (nil: the database key). Residents who are deceased or
// moved out are refused (kind ResidentNotEligible).
func ExportFile(ctx context.Context, tx *sql.Tx, key FileKey, rnd io.Reader, recordCode, by string, now time.Time, ttl time.Duration) ([]byte, File, error) {
	res, err := SQLRegister{Q: tx}.Get(ctx, recordCode)
	if err != nil {
		return nil, File{}, err
	}
	if res.Status == StatusDeceased || res.Status == StatusMovedOut {
		return nil, File{}, apperr.New(apperr.ResidentNotEligible, "resident: %s is %s", recordCode, res.Status)
	}
	id := make([]byte, 16)
	if _, err := io.ReadFull(rnd, id); err != nil {
		return nil, File{}, apperr.Wrap(apperr.Internal, err, "resident: file id")
	}
	f := File{ID: hex.EncodeToString(id), Resident: res, ExportedBy: by, ExportedAt: now.UTC(), ExpiresAt: now.Add(ttl).UTC()}
	payload, err := json.Marshal(f)
	if err != nil {
		return nil, File{}, apperr.Wrap(apperr.Internal, err, "resident: encode file")
	}
	sum, err := fileMAC(ctx, tx, key, rnd, payload)
	if err != nil {
		return nil, File{}, err
	}
	out, err := json.Marshal(envelope{Format: FileFormat, Payload: payload, MAC: hex.EncodeToString(sum)})
	if err != nil {
		return nil, File{}, apperr.Wrap(apperr.Internal, err, "resident: encode file")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO resident_files(id, record_code, exported_by, exported_at, expires_at) VALUES (?,?,?,?,?)`,
		f.ID, recordCode, by, f.ExportedAt.Format(time.RFC3339Nano), f.ExpiresAt.Format(time.RFC3339Nano)); err != nil {
		return nil, File{}, apperr.Wrap(apperr.Internal, err, "resident: record file")
	}
	return out, f, nil
}

// ImportFile checks a resident-record file's MAC with key (nil: the database key) and marks it
// used. Refusals: kind FileTampered (malformed, bad MAC, unknown id), FileExpired, FileUsed.
func ImportFile(ctx context.Context, tx *sql.Tx, key FileKey, data []byte, by string, now time.Time) (File, error) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Format != FileFormat {
		return File{}, apperr.New(apperr.FileTampered, "resident: not a resident-record file")
	}
	// Whitespace outside strings does not change meaning: compact before checking, so a file
	// re-indented by a viewer is still accepted while any change of content is not.
	var payload bytes.Buffer
	if err := json.Compact(&payload, env.Payload); err != nil {
		return File{}, apperr.New(apperr.FileTampered, "resident: file payload is not JSON")
	}
	want, err := fileMAC(ctx, tx, key, nil, payload.Bytes())
	if err != nil {
		if key == nil {
			return File{}, apperr.Wrap(apperr.FileTampered, err, "resident: no file was exported by this terminal")
		}
		return File{}, err
	}
	got, err := hex.DecodeString(env.MAC)
	if err != nil || !hmac.Equal(got, want) {
		return File{}, apperr.New(apperr.FileTampered, "resident: file integrity check failed")
	}
	var f File
	if err := json.Unmarshal(payload.Bytes(), &f); err != nil {
		return File{}, apperr.Wrap(apperr.FileTampered, err, "resident: file payload")
	}
	if !now.Before(f.ExpiresAt) {
		return f, apperr.New(apperr.FileExpired, "resident: file %s expired at %s", f.ID, f.ExpiresAt.Format(time.RFC3339))
	}
	var used sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT used_at FROM resident_files WHERE id = ?`, f.ID).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return f, apperr.New(apperr.FileTampered, "resident: file %s was not issued by this terminal", f.ID)
	}
	if err != nil {
		return f, apperr.Wrap(apperr.Internal, err, "resident: look up file")
	}
	if used.Valid {
		return f, apperr.New(apperr.FileUsed, "resident: file %s was already imported at %s", f.ID, used.String)
	}
	// Conditional on used_at still being empty, so single use holds even if a second import
	// read the row before this one committed (it then changes nothing and is refused).
	res, err := tx.ExecContext(ctx, `UPDATE resident_files SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL`,
		now.UTC().Format(time.RFC3339Nano), by, f.ID)
	if err != nil {
		return f, apperr.Wrap(apperr.Internal, err, "resident: mark file used")
	}
	if n, err := res.RowsAffected(); err != nil {
		return f, apperr.Wrap(apperr.Internal, err, "resident: mark file used")
	} else if n != 1 {
		return f, apperr.New(apperr.FileUsed, "resident: file %s was already imported", f.ID)
	}
	return f, nil
}
