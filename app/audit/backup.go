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
// an existing backup is never replaced.
//
// The terminal never deletes audit records or application records (cases,
// their events, the issuance journal): no statement in app does
// (app TestApplicationRecordsAreNeverDeleted).

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"madoguchi/app/apperr"
)

// BackupResult describes a written backup.
type BackupResult struct {
	Path    string
	At      time.Time
	Records int64 // records in the copy, verified
}

const backupFormat = "madoguchi terminal audit backup v1"

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
CREATE TABLE backup.backup_info (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
INSERT INTO backup.audit_log SELECT seq, at, operator, action, target, result, detail, prev_hash, hash FROM main.audit_log ORDER BY seq;
INSERT INTO backup.audit_head SELECT id, seq, hash FROM main.audit_head;
`

// Backup copies the audit chain of the terminal database db into a new file
// in dir (created 0700 if missing), dated by at's UTC date, and returns it
// after it verified on its own. A chain that does not verify is not backed
// up (kind AuditBroken) and nothing is left in dir.
//
// db must be the terminal's *sql.DB; Backup takes one of its connections
// for the copy, so it must not run inside a transaction of db (store.DB.Tx).
func Backup(ctx context.Context, db *sql.DB, dir string, at time.Time) (BackupResult, error) {
	if dir == "" {
		return BackupResult{}, apperr.New(apperr.InvalidInput, "audit: backup needs a directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return BackupResult{}, apperr.Wrap(apperr.Internal, err, "audit: backup directory")
	}
	at = at.UTC()
	tmp, err := os.CreateTemp(dir, ".audit-backup-*.tmp") // mode 0600
	if err != nil {
		return BackupResult{}, apperr.Wrap(apperr.Internal, err, "audit: backup")
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer func() {
		for _, p := range []string{tmpPath, tmpPath + "-journal"} {
			os.Remove(p)
		}
	}()
	if err := copyChain(ctx, db, tmpPath, at); err != nil {
		return BackupResult{}, err
	}
	rep, err := VerifyBackup(ctx, tmpPath)
	if err != nil {
		return BackupResult{}, err
	}
	if err := syncPath(tmpPath); err != nil {
		return BackupResult{}, err
	}
	final, err := linkNew(tmpPath, dir, at)
	if err != nil {
		return BackupResult{}, err
	}
	if err := syncPath(dir); err != nil {
		return BackupResult{}, err
	}
	return BackupResult{Path: final, At: at, Records: rep.Records}, nil
}

func copyChain(ctx context.Context, db *sql.DB, tmpPath string, at time.Time) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "audit: backup")
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS backup`, tmpPath); err != nil {
		return apperr.Wrap(apperr.Internal, err, "audit: backup: attach")
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE backup`)
	if _, err := conn.ExecContext(ctx, `PRAGMA backup.synchronous = FULL`); err != nil {
		return apperr.Wrap(apperr.Internal, err, "audit: backup")
	}
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		return apperr.Wrap(apperr.Internal, err, "audit: backup: begin")
	}
	_, err = conn.ExecContext(ctx, backupSchema)
	if err == nil {
		_, err = conn.ExecContext(ctx, `INSERT INTO backup.backup_info (name, value) VALUES ('format', ?), ('made_at', ?)`,
			backupFormat, at.Format(timeLayout))
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, `COMMIT`)
	}
	if err != nil {
		conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		return apperr.Wrap(apperr.Internal, err, "audit: backup: copy")
	}
	return nil
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
	day := at.UTC().Format(time.DateOnly)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, apperr.Wrap(apperr.Internal, err, "audit: backup directory")
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "audit-"+day+".") && strings.HasSuffix(n, ".db") {
			return false, nil
		}
	}
	return true, nil
}

// linkNew names tmp by the date without ever replacing a file (link(2)
// fails on an existing name).
func linkNew(tmp, dir string, at time.Time) (string, error) {
	day := at.Format(time.DateOnly)
	for n := 1; n < 1000; n++ {
		name := "audit-" + day + ".db"
		if n > 1 {
			name = "audit-" + day + "." + strconv.Itoa(n) + ".db"
		}
		final := filepath.Join(dir, name)
		err := os.Link(tmp, final)
		if err == nil {
			return final, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", apperr.Wrap(apperr.Internal, err, "audit: backup")
		}
	}
	return "", apperr.New(apperr.Internal, "audit: too many backups dated %s", day)
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "audit: backup")
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "audit: backup: sync")
	}
	return nil
}
