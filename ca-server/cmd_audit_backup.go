package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/store"
	"madoguchi/internal/wallclock"
)

// defaultAuditBackupDir is where serve puts its daily audit backups when
// --audit-backup-dir is not given. In production it is a mount of other
// media (CPS §5.4: backed up daily), not the data dir's own disk.
func defaultAuditBackupDir(dataDir string) string { return filepath.Join(dataDir, "audit-backup") }

// runAuditBackup: "audit backup --to DIR": the internal auditor's local
// copy of the audit log (CPS §5.4: backed up daily; serve makes the daily
// one itself). The copy is verified on its own before it gets its name.
func runAuditBackup(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	database := databaseFlag(fs)
	to := fs.String("to", "", "backup directory (the file is named audit-YYYY-MM-DD[.N].db; an existing file is never replaced)")
	operator := fs.String("operator", defaultOperator(), "the internal auditor making the copy (audit record; checked against the role register)")
	var secrets dutySecrets
	secrets.register(fs)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *to == "" || fs.NArg() != 0 {
		return fmt.Errorf("%w: audit backup --data-dir DIR --to DIR", errUsage)
	}
	if _, err := requireRoles(*dataDir, *database, "audit.backup", &secrets, *operator); err != nil {
		return err
	}
	ctx := context.Background()
	l, err := openLocal(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer l.Close()
	res, err := backupAudit(ctx, l, *dataDir, *to, *operator, wallclock.Now)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d records, %d checkpoints (last at record %d), %d records after the last checkpoint; verified\n",
		res.Path, res.Report.Records, res.Report.Checkpoints, res.Report.LastCheckpoint, res.Report.Unprotected)
	return nil
}

// backupAudit checkpoints (when l.audit signs: serve), copies and verifies
// the log, and records the backup (or its failure) in the chain itself.
func backupAudit(ctx context.Context, l *local, dataDir, dir, operator string, clock func() time.Time) (audit.BackupResult, error) {
	if err := l.audit.Checkpoint(ctx); err != nil {
		return audit.BackupResult{}, err
	}
	keys, err := auditVerifyKeys(dataDir)
	if err != nil {
		return audit.BackupResult{}, err
	}
	// The backups are witnesses of each other: the new copy must extend
	// the newest one before it (which verified on its own when it was
	// made and is checked again here).
	opts := audit.BackupOptions{Keys: keys, Clock: clock}
	if a, ok, err := audit.NewestBackupAnchor(ctx, dir, keys); err != nil {
		return audit.BackupResult{}, fmt.Errorf("ca-server: audit backup: the newest backup in %s: %w", dir, err)
	} else if ok {
		opts.Anchors = []audit.Anchor{a}
	}
	var res audit.BackupResult
	if store.IsPostgresURL(l.database) {
		// No file to attach: the records are read through the store into
		// the same backup file format.
		res, err = audit.BackupFrom(ctx, l.st, store.RedactedURL(l.database), dir, opts)
	} else {
		res, err = audit.Backup(ctx, l.database, dir, opts)
	}
	e := audit.Entry{Terminal: "local", Operator: operator, Action: "audit.backup", Target: filepath.Base(res.Path), Result: "ok",
		Detail: "records " + strconv.FormatInt(res.Report.Records, 10)}
	if err != nil {
		e.Result, e.Target, e.Detail = "error", dir, err.Error()
	}
	if aerr := l.audit.Record(ctx, e); aerr != nil {
		return res, errors.Join(err, aerr)
	}
	return res, err
}

// startAuditBackups makes the daily backup of the audit log for serve: at
// start when none is dated today (UTC), then whenever checkEvery finds the
// day changed, so restarts neither skip a day nor pile up copies. stop
// waits for a backup in progress. Errors go to onError.
func startAuditBackups(ctx context.Context, l *local, dataDir, dir string, checkEvery time.Duration, clock func() time.Time,
	onError func(error)) (stop func()) {
	return startEvery(ctx, checkEvery, true, func() {
		due, err := audit.BackupDue(dir, clock())
		if err == nil && due {
			_, err = backupAudit(ctx, l, dataDir, dir, "ca-server", clock)
		}
		if err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
	})
}
