package audit

// Daily backup of the terminal's audit chain (CPS §5.4 as applied to the
// counter: records kept at least one year and backed up daily; DOMAIN §6).
//
// A backup is one SQLite file with only the audit tables (audit_log and
// audit_head, the terminal schema's columns) and a backup_info table:
// no resident records, password hashes or keys. It is copied in one SQLite
// transaction on the terminal's connection (the terminal database is read,
// only the backup file is written), so it is a consistent snapshot; it is
// verified on its own with Verify before it gets its name; it is written
// under a temporary name (mode 0600), synced, and linked to
// audit-YYYY-MM-DD.db (UTC date; .2, .3 … for more copies the same day):
// an existing backup is never replaced. The file handling is shared with
// the CA's backups (internal/auditbackup); this file keeps the terminal's
// tables, format and verification.
//
// The terminal never deletes audit records or application records (cases,
// their events, the issuance journal): no statement in app does
// (app TestApplicationRecordsAreNeverDeleted).

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/internal/auditbackup"
)

// BackupResult describes a written backup.
type BackupResult struct {
	Path    string
	At      time.Time
	Records int64 // records in the copy, verified
}

const backupFormat = "madoguchi terminal audit backup v1"

// backupSchema copies the terminal schema's audit tables (backup_info is
// created by auditbackup.Write).
const backupSchema = `
CREATE TABLE backup.audit_log (
	seq       INTEGER PRIMARY KEY,
	at        TEXT NOT NULL,
	operator  TEXT NOT NULL,
	action    TEXT NOT NULL,
	target    TEXT NOT NULL,
	result    TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash BLOB NOT NULL,
	hash      BLOB NOT NULL
) STRICT;
CREATE INDEX backup.audit_log_operator ON audit_log(operator, seq);
CREATE TABLE backup.audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB NOT NULL
) STRICT;
INSERT INTO backup.audit_log SELECT seq, at, operator, action, target, result, detail, prev_hash, hash FROM main.audit_log ORDER BY seq;
INSERT INTO backup.audit_head SELECT id, seq, hash FROM main.audit_head;
`

// Backup copies the audit chain of the terminal database db into a new file
// in dir (created 0700 if missing), dated by at's UTC date, and returns it
// after it verified on its own. A chain that does not verify is not backed
// up (kind AuditBroken) and nothing is left in dir. Failures of the file
// handling (internal/auditbackup) have kind Internal.
//
// db must be the terminal's *sql.DB; Backup takes one of its connections
// for the copy, so it must not run inside a transaction of db (store.DB.Tx).
func Backup(ctx context.Context, db *sql.DB, dir string, at time.Time) (BackupResult, error) {
	if dir == "" {
		return BackupResult{}, apperr.New(apperr.InvalidInput, "audit: backup needs a directory")
	}
	at = at.UTC()
	conn, err := db.Conn(ctx)
	if err != nil {
		return BackupResult{}, apperr.Wrap(apperr.Internal, err, "audit: backup")
	}
	defer conn.Close()
	var rep Report
	final, err := auditbackup.Write(ctx, conn, dir, at, auditbackup.Copy{
		Script: backupSchema,
		Info:   [][2]string{{"format", backupFormat}, {"made_at", at.Format(timeLayout)}},
		Verify: func(path string) (err error) {
			rep, err = VerifyBackup(ctx, path)
			return err
		},
	})
	if err != nil {
		return BackupResult{}, kindOfBackupError(err)
	}
	return BackupResult{Path: final, At: at, Records: rep.Records}, nil
}

// kindOfBackupError gives auditbackup's file-handling errors kind Internal
// and keeps VerifyBackup's kinds (AuditBroken, InvalidInput) as they are.
func kindOfBackupError(err error) error {
	var fileErr *auditbackup.Error
	if errors.As(err, &fileErr) {
		return apperr.Wrap(apperr.Internal, err, "audit: backup")
	}
	return err
}

// VerifyBackup opens the backup file at path read-only and verifies its
// chain on its own (Verify). It fails with kind InvalidInput for a file
// that is not a terminal audit backup, AuditBroken for a broken chain.
func VerifyBackup(ctx context.Context, path string) (Report, error) {
	if _, err := os.Stat(path); err != nil {
		return Report{}, apperr.Wrap(apperr.InvalidInput, err, "audit: backup")
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return Report{}, apperr.Wrap(apperr.Internal, err, "audit: backup")
	}
	defer db.Close()
	var format string
	if err := db.QueryRowContext(ctx, `SELECT value FROM backup_info WHERE name = 'format'`).Scan(&format); err != nil || format != backupFormat {
		return Report{}, apperr.New(apperr.InvalidInput, "audit: %s is not a terminal audit backup", filepath.Base(path))
	}
	return Verify(ctx, db)
}

// BackupDue reports whether dir holds no backup dated at's UTC date, so a
// check that runs more often than daily (and across restarts) makes one
// backup a day.
func BackupDue(dir string, at time.Time) (bool, error) {
	due, err := auditbackup.Due(dir, at)
	if err != nil {
		return false, apperr.Wrap(apperr.Internal, err, "audit: backup directory")
	}
	return due, nil
}
