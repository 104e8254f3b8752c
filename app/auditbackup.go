package app

import (
	"context"
	"path/filepath"
	"strconv"

	"madoguchi/app/audit"
	"madoguchi/app/operator"
)

// Retention of records at the terminal (DOMAIN §6, §9):
//   - the audit chain is kept (never deleted) and backed up daily
//     (CPS §5.4): BackupAuditIfDue, run from the terminal's periodic loop,
//     and Session.BackupAudit for the auditor (`madoguchi cli audit backup`);
//   - application records — cases with their identity evidence, decisions
//     and refusal reasons, case events and the issuance journal — are kept
//     at least 10 years after the certificates expire (R02 II-8-1(3)). The
//     terminal has no purge: nothing in app deletes them
//     (TestApplicationRecordsAreNeverDeleted). Removing them after the
//     period is a records-management step outside the terminal.

// AuditBackupDir is where the daily backups of the audit chain go: the
// directory "audit-backup" beside the terminal database. In production it
// is a mount of other media.
func (t *Terminal) AuditBackupDir() string {
	return filepath.Join(filepath.Dir(t.cfg.DBPath), "audit-backup")
}

// BackupAuditIfDue makes today's (UTC) backup of the audit chain into
// AuditBackupDir unless one exists, and records it (operator "-": the
// terminal itself). It returns whether a backup was made. Safe to call as
// often as wanted; meant for a periodic loop (app/terminal).
func (t *Terminal) BackupAuditIfDue(ctx context.Context) (audit.BackupResult, bool, error) {
	dir := t.AuditBackupDir()
	due, err := audit.BackupDue(dir, t.now())
	if err != nil || !due {
		return audit.BackupResult{}, false, err
	}
	res, err := t.backupAudit(ctx, "-", dir)
	return res, err == nil, err
}

// BackupAudit copies the audit chain into dir for the auditor (Audit
// permission; CPS §5.4), verified on its own; an existing backup is never
// replaced. The backup and its result are recorded.
func (s *Session) BackupAudit(ctx context.Context, dir string) (audit.BackupResult, error) {
	if err := s.precheck(ctx, "audit.backup", dir, operator.Audit, nil); err != nil {
		return audit.BackupResult{}, err
	}
	return s.t.backupAudit(ctx, s.operatorID, dir)
}

func (t *Terminal) backupAudit(ctx context.Context, actor, dir string) (audit.BackupResult, error) {
	res, err := audit.Backup(ctx, t.db.DB, dir, t.now())
	e := audit.Entry{Operator: actor, Action: "audit.backup", Target: filepath.Base(res.Path), Result: audit.ResultOK,
		Detail: map[string]string{"records": strconv.FormatInt(res.Records, 10)}}
	if err != nil {
		e.Target, e.Result, e.Detail = dir, resultOf(err), refusalDetail(nil, err)
	}
	if rerr := t.record(ctx, e); rerr != nil && err == nil {
		return res, rerr
	}
	return res, err
}
