package audit

// Daily backup of the audit log (CPS §5.4: audit records are kept at least
// one year and backed up daily).
//
// A backup is one SQLite file holding only the audit tables (audit_records
// and audit_checkpoints, the same columns as the store) and a backup_info
// table. It is copied inside one SQLite transaction on a connection of its
// own (the source attached read-only in effect: only the backup file is
// written), so it is a consistent snapshot of the chain even while the
// server and local commands append. It carries no issuance data, person
// keys or certificates: the backup medium need not be trusted with them.
//
// Before the copy gets its final name it is verified on its own (OpenBackup
// + VerifyKeys: chain, sequence and every checkpoint signature under the
// given public keys); a copy that does not verify is removed and the error
// wraps ErrTampered. The file is written under a temporary name (mode
// 0600), synced, then linked to its final name, which never replaces an
// existing file: audit-YYYY-MM-DD.db by the UTC date, audit-YYYY-MM-DD.2.db
// and so on for a second backup of the same day.
// The file handling is shared with the terminal's backups
// (internal/auditbackup); this file keeps the CA's tables, format and
// verification.
//
// Retention: nothing in ca-server deletes audit records, from the store or
// from a backup directory (no delete method exists in Store or store.Writer;
// TestNoAuditDeletionPath). Keeping them longer than one year satisfies
// "at least one year"; deleting would also cut the hash chain's anchor.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"madoguchi/ca-server/store"
	"madoguchi/internal/auditbackup"
	"madoguchi/internal/wallclock"
	_ "modernc.org/sqlite" // driver "sqlite"
)

// ErrNotABackup: the file is not an audit backup.
var ErrNotABackup = errors.New("audit: not an audit backup file")

// BackupOptions configures Backup.
type BackupOptions struct {
	// Keys verify the copy's checkpoints (the audit checkpoint key's public
	// key and earlier keys, as for VerifyKeys). Required when the log has
	// checkpoints.
	Keys []Key
	// Clock names the file by its UTC date; default time.Now.
	Clock func() time.Time
	// Anchors are what earlier backups hold (NewestBackupAnchor): the copy
	// is refused unless it extends them (the same records and checkpoint
	// chain up to their end), so the backups are checked against each
	// other, not only each on its own.
	Anchors []Anchor
}

// BackupResult describes a written backup.
type BackupResult struct {
	Path   string
	At     time.Time
	Report Report // the copy's own verification
}

// backupFormat is backup_info's "format": what OpenBackup recognises.
// v2 added the checkpoint chain (number, prev_hash); v1 files still open.
const (
	backupFormat   = "madoguchi ca audit backup v2"
	backupFormatV1 = "madoguchi ca audit backup v1"
)

// auditTables are the store's audit tables (0001_init.sql) in schema
// "%[1]s" ("backup." for the copy, "" for a staging file).
const auditTables = `
CREATE TABLE %[1]saudit_records (
	seq       INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	terminal  TEXT NOT NULL,
	operator  TEXT NOT NULL,
	action    TEXT NOT NULL,
	target    TEXT NOT NULL,
	result    TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash BLOB NOT NULL,
	hash      BLOB NOT NULL
) STRICT;
CREATE TABLE %[1]saudit_checkpoints (
	seq       INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	hash      BLOB NOT NULL,
	key_id    TEXT NOT NULL,
	signature BLOB NOT NULL,
	number    INTEGER,
	prev_hash BLOB
) STRICT;
`

// backupSchema is the copy's schema, filled from the main database;
// auditbackup.Write adds backup_info, what the copy is.
var backupSchema = fmt.Sprintf(auditTables, "backup.") + `
CREATE INDEX backup.audit_records_operator ON audit_records (operator, seq);
INSERT INTO backup.audit_records SELECT seq, at, terminal, operator, action, target, result, detail, prev_hash, hash FROM main.audit_records ORDER BY seq;
INSERT INTO backup.audit_checkpoints SELECT seq, at, hash, key_id, signature, number, prev_hash FROM main.audit_checkpoints ORDER BY seq;
`

// Backup copies the audit log of the SQLite store at dbPath into a new file
// in dir (created 0700 if missing) and returns it after it verified on its
// own. dbPath must exist (it is never created here). Safe to call while
// other processes append; two Backups into one dir get different names.
func Backup(ctx context.Context, dbPath, dir string, opts BackupOptions) (BackupResult, error) {
	if dbPath == "" || dir == "" {
		return BackupResult{}, errors.New("audit: backup needs the database path and a backup directory")
	}
	if opts.Clock == nil {
		opts.Clock = wallclock.Now
	}
	if _, err := os.Stat(dbPath); err != nil {
		return BackupResult{}, fmt.Errorf("audit: backup source: %w", err)
	}
	at := opts.Clock().UTC()
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("mode", "rw") // never create the source
	src, err := sql.Open("sqlite", "file:"+dbPath+"?"+q.Encode())
	if err != nil {
		return BackupResult{}, fmt.Errorf("audit: backup source: %w", err)
	}
	defer src.Close()
	conn, err := src.Conn(ctx)
	if err != nil {
		return BackupResult{}, fmt.Errorf("audit: backup source: %w", err)
	}
	defer conn.Close()
	return writeBackup(ctx, conn, filepath.Base(dbPath), dir, at, opts)
}

// writeBackup copies the audit tables of conn's main database into a new
// backup file in dir (auditbackup.Write) and verifies it.
func writeBackup(ctx context.Context, conn *sql.Conn, source, dir string, at time.Time, opts BackupOptions) (BackupResult, error) {
	var rep Report
	final, err := auditbackup.Write(ctx, conn, dir, at, auditbackup.Copy{
		Script: backupSchema,
		Info:   [][2]string{{"format", backupFormat}, {"made_at", at.Format(time.RFC3339Nano)}, {"source", source}},
		Verify: func(path string) error { return verifyCopy(ctx, path, opts, &rep) },
	})
	var fileErr *auditbackup.Error
	if errors.As(err, &fileErr) {
		return BackupResult{}, fmt.Errorf("audit: backup: %w", err)
	}
	if err != nil { // verifyCopy's
		return BackupResult{Report: rep}, err
	}
	return BackupResult{Path: final, At: at, Report: rep}, nil
}

// stageSchema holds the records read from a store that is not a SQLite
// file, in the store's column layout, so that writeBackup copies them with
// the same script as from the store file.
var stageSchema = fmt.Sprintf(auditTables, "")

// BackupFrom is Backup for a store read through its interface (the
// PostgreSQL store, store.Postgres): it writes the same backup file, named
// and verified the same way, with source as backup_info's "source" (name
// the database without credentials). The records are read up to the last
// one at the start, and the checkpoints over them: audit records are
// append-only and never change, so that prefix of the chain is a
// consistent snapshot even while other processes append. They are staged
// in a temporary SQLite file in dir, removed afterwards.
func BackupFrom(ctx context.Context, src Reader, source, dir string, opts BackupOptions) (BackupResult, error) {
	if src == nil || source == "" || dir == "" {
		return BackupResult{}, errors.New("audit: backup needs the store, its name and a backup directory")
	}
	if opts.Clock == nil {
		opts.Clock = wallclock.Now
	}
	at := opts.Clock().UTC()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return BackupResult{}, fmt.Errorf("audit: backup directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".audit-stage-*.tmp") // mode 0600
	if err != nil {
		return BackupResult{}, fmt.Errorf("audit: backup staging: %w", err)
	}
	stage := f.Name()
	f.Close()
	defer func() {
		for _, p := range []string{stage, stage + "-journal", stage + "-wal", stage + "-shm"} {
			os.Remove(p)
		}
	}()
	db, err := sql.Open("sqlite", "file:"+stage)
	if err != nil {
		return BackupResult{}, fmt.Errorf("audit: backup staging: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return BackupResult{}, fmt.Errorf("audit: backup staging: %w", err)
	}
	defer conn.Close()
	if err := stageRecords(ctx, conn, src); err != nil {
		return BackupResult{}, err
	}
	return writeBackup(ctx, conn, source, dir, at, opts)
}

// stageRecords copies src's records up to its last one now, and the
// checkpoints over them, into conn's staging tables in one transaction.
func stageRecords(ctx context.Context, conn *sql.Conn, src Reader) error {
	var last int64
	switch r, err := src.LastAuditRecord(ctx); {
	case err == nil:
		last = r.Seq
	case errors.Is(err, store.ErrNotFound):
	default:
		return fmt.Errorf("audit: backup source: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: backup staging: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, stageSchema); err != nil {
		return fmt.Errorf("audit: backup staging: %w", err)
	}
	for after := int64(0); after < last; {
		rs, err := src.AuditRecords(ctx, after, 1000)
		if err != nil {
			return fmt.Errorf("audit: backup source: %w", err)
		}
		if len(rs) == 0 {
			return fmt.Errorf("audit: backup source: records end at %d before the last record %d", after, last)
		}
		for _, r := range rs {
			if r.Seq > last {
				break
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.Seq, r.At.UnixNano(), r.Terminal, r.Operator, r.Action, r.Target, r.Result, r.Detail, r.PrevHash, r.Hash); err != nil {
				return fmt.Errorf("audit: backup staging: %w", err)
			}
		}
		after = rs[len(rs)-1].Seq
	}
	cps, err := src.AuditCheckpoints(ctx)
	if err != nil {
		return fmt.Errorf("audit: backup source: %w", err)
	}
	for _, c := range cps {
		if c.Seq > last {
			continue
		}
		var number any // NULL for an unchained (v1) checkpoint, as in the store
		if Chained(c) {
			number = c.Number
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.Seq, c.At.UnixNano(), c.Hash, c.KeyID, c.Signature, number, c.PrevHash); err != nil {
			return fmt.Errorf("audit: backup staging: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: backup staging: %w", err)
	}
	return nil
}

// verifyCopy verifies the copy at path on its own (OpenBackup + VerifyKeys)
// and against the earlier backups' anchors into rep. A copy that does not verify is refused with an error that
// wraps VerifyKeys's (ErrTampered for a broken chain or checkpoint).
func verifyCopy(ctx context.Context, path string, opts BackupOptions, rep *Report) error {
	bf, err := OpenBackup(path)
	if err != nil {
		return err
	}
	var verr error
	*rep, verr = VerifyWith(ctx, bf, VerifyOptions{Keys: opts.Keys, Anchors: opts.Anchors})
	if cerr := bf.Close(); verr == nil && cerr != nil {
		verr = cerr
	}
	if verr != nil {
		return fmt.Errorf("audit: backup copy refused: %w", verr)
	}
	return nil
}

// BackupDue reports whether dir holds no backup dated at's UTC date, so a
// daily schedule that checks more often than daily (and across restarts)
// makes one backup per day.
func BackupDue(dir string, at time.Time) (bool, error) {
	due, err := auditbackup.Due(dir, at)
	if err != nil {
		return false, fmt.Errorf("audit: backup directory: %w", err)
	}
	return due, nil
}

// BackupFile reads an audit backup (Reader), opened read-only, so a backup
// verifies on its own: VerifyKeys(ctx, bf, keys).
type BackupFile struct {
	db *sql.DB
	v1 bool // format v1: checkpoints without number and prev_hash
}

var _ Reader = (*BackupFile)(nil)

// OpenBackup opens the backup file at path read-only. It returns
// ErrNotABackup for a file that is not one.
func OpenBackup(path string) (*BackupFile, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("audit: backup: %w", err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("audit: backup: %w", err)
	}
	var format string
	if err := db.QueryRow(`SELECT value FROM backup_info WHERE name = 'format'`).Scan(&format); err != nil || (format != backupFormat && format != backupFormatV1) {
		db.Close()
		return nil, fmt.Errorf("%w: %s", ErrNotABackup, path)
	}
	return &BackupFile{db: db, v1: format == backupFormatV1}, nil
}

// Close closes the file.
func (b *BackupFile) Close() error { return b.db.Close() }

// MadeAt is when the backup was taken.
func (b *BackupFile) MadeAt(ctx context.Context) (time.Time, error) {
	var s string
	if err := b.db.QueryRowContext(ctx, `SELECT value FROM backup_info WHERE name = 'made_at'`).Scan(&s); err != nil {
		return time.Time{}, fmt.Errorf("audit: backup: %w", err)
	}
	return time.Parse(time.RFC3339Nano, s)
}

const backupCols = `seq, at, terminal, operator, action, target, result, detail, prev_hash, hash`

func (b *BackupFile) records(ctx context.Context, q string, args ...any) ([]store.AuditRecord, error) {
	rows, err := b.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: backup records: %w", err)
	}
	defer rows.Close()
	var out []store.AuditRecord
	for rows.Next() {
		var r store.AuditRecord
		var at int64
		if err := rows.Scan(&r.Seq, &at, &r.Terminal, &r.Operator, &r.Action, &r.Target, &r.Result, &r.Detail, &r.PrevHash, &r.Hash); err != nil {
			return nil, fmt.Errorf("audit: backup records: %w", err)
		}
		r.At = time.Unix(0, at).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// LastAuditRecord returns the newest record, or store.ErrNotFound.
func (b *BackupFile) LastAuditRecord(ctx context.Context) (store.AuditRecord, error) {
	rs, err := b.records(ctx, `SELECT `+backupCols+` FROM audit_records ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return store.AuditRecord{}, err
	}
	if len(rs) == 0 {
		return store.AuditRecord{}, fmt.Errorf("%w: audit record", store.ErrNotFound)
	}
	return rs[0], nil
}

// AuditRecords returns up to limit records with seq > after, in order.
func (b *BackupFile) AuditRecords(ctx context.Context, after int64, limit int) ([]store.AuditRecord, error) {
	return b.records(ctx, `SELECT `+backupCols+` FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
}

// AuditRecordsByOperator returns one operator's records (TS Art. 20(2)).
func (b *BackupFile) AuditRecordsByOperator(ctx context.Context, operator string, after int64, limit int) ([]store.AuditRecord, error) {
	return b.records(ctx, `SELECT `+backupCols+` FROM audit_records WHERE operator = ? AND seq > ? ORDER BY seq LIMIT ?`, operator, after, limit)
}

// AuditCheckpoints returns every checkpoint in seq order.
func (b *BackupFile) AuditCheckpoints(ctx context.Context) ([]store.AuditCheckpoint, error) {
	q := `SELECT seq, at, hash, key_id, signature, coalesce(number, 0), prev_hash FROM audit_checkpoints ORDER BY seq`
	if b.v1 {
		q = `SELECT seq, at, hash, key_id, signature, 0, NULL FROM audit_checkpoints ORDER BY seq`
	}
	rows, err := b.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit: backup checkpoints: %w", err)
	}
	defer rows.Close()
	var out []store.AuditCheckpoint
	for rows.Next() {
		var c store.AuditCheckpoint
		var at int64
		if err := rows.Scan(&c.Seq, &at, &c.Hash, &c.KeyID, &c.Signature, &c.Number, &c.PrevHash); err != nil {
			return nil, fmt.Errorf("audit: backup checkpoints: %w", err)
		}
		c.At = time.Unix(0, at).UTC()
		if c.Number == 0 {
			c.Number = int64(len(out) + 1)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
