package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/operator"
	"madoguchi/app/workflow"
)

// TestDailyAuditBackupAtTheTerminal: CPS §5.4 (backed up daily): the
// terminal's periodic call makes one backup per UTC day into the directory
// beside its database, each verifying on its own and recorded; the
// auditor's backup needs the audit permission and never replaces a file.
func TestDailyAuditBackupAtTheTerminal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dir := f.t.AuditBackupDir()
	res, made, err := f.t.BackupAuditIfDue(ctx)
	if err != nil || !made || filepath.Base(res.Path) != "audit-2026-04-01.db" {
		t.Fatalf("first daily backup: %+v %v %v", res, made, err)
	}
	if last := f.lastAudit(t); last.Action != "audit.backup" || last.Operator != "-" || last.Target != "audit-2026-04-01.db" || last.Result != audit.ResultOK {
		t.Fatalf("backup record %+v", last)
	}
	f.clock.Advance(10 * time.Hour) // still 2026-04-01 UTC
	if _, made, err := f.t.BackupAuditIfDue(ctx); err != nil || made {
		t.Fatalf("second call the same day made a backup: %v %v", made, err)
	}
	f.clock.Advance(6 * time.Hour) // 2026-04-02 01:00 UTC
	res2, made, err := f.t.BackupAuditIfDue(ctx)
	if err != nil || !made || filepath.Base(res2.Path) != "audit-2026-04-02.db" || res2.Records <= res.Records {
		t.Fatalf("next day's backup: %+v %v %v", res2, made, err)
	}
	if rep, err := audit.VerifyBackup(ctx, res2.Path); err != nil || rep.Records != res2.Records {
		t.Fatalf("backup alone: %+v %v", rep, err)
	}

	if f.sup, err = f.t.LoginPassword(ctx, "sup", supPassword); err != nil { // idle-logged out meanwhile
		t.Fatal(err)
	}
	rc := f.login(t, "rc1", "f-rc", operator.Reception)
	if _, err := rc.BackupAudit(ctx, t.TempDir()); !errors.Is(err, apperr.PermissionDenied) {
		t.Fatalf("reception backup: %v", err)
	}
	if last := f.lastAudit(t); last.Action != "audit.backup" || last.Result != audit.ResultRefused {
		t.Fatalf("refusal not recorded: %+v", last)
	}
	mine, err := f.sup.BackupAudit(ctx, dir)
	if err != nil || filepath.Base(mine.Path) != "audit-2026-04-02.2.db" {
		t.Fatalf("auditor's backup: %+v %v", mine, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("%d files in the backup dir, want 3", len(ents))
	}
}

// TestApplicationRecordsAreNeverDeleted: R02 II-8-1(3) keeps application
// records (cases with identity evidence and refusal reasons, their events,
// the issuance journal) about 10 years after the certificates expire, and
// CPS §5.4 keeps audit records at least a year. The terminal has no purge:
// a refused case with its reason is still there after 11 years of the
// terminal's daily work, and no statement in app's code deletes, drops or
// rewrites those tables.
func TestApplicationRecordsAreNeverDeleted(t *testing.T) {
	f, _, rc := counter(t)
	ctx := context.Background()
	c, err := rc.OpenCase(ctx, app.CaseRequest{Kind: workflow.LossReport, RecordCode: "90000000044"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.RecordIdentity(ctx, c.ID, licence); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Refuse(ctx, c.ID, "届出書の記載と本人確認書類が一致しない"); err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 11; y++ {
		f.clock.Advance(365 * 24 * time.Hour)
		if _, _, err := f.t.BackupAuditIfDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rc2 := f.loginFinger(t, "rc1", "f-rc")
	kept, err := rc2.Case(ctx, c.ID)
	if err != nil || kept.RefusalReason == "" || kept.Identity == nil || kept.Identity.Document != licence.Document {
		t.Fatalf("after 11 years: %+v, %v", kept, err)
	}
	if _, err := audit.Verify(ctx, f.t.DB()); err != nil {
		t.Fatal(err)
	}

	kept2 := regexp.MustCompile(`(?i)(delete\s+from|drop\s+table|truncate)\s+(\w+\.)?(cases|case_events|issuance_journal|audit_log|audit_head|audit_receipts)\b|update\s+(\w+\.)?audit_log\b`)
	err = filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		if filepath.Dir(p) == filepath.Join("internal", "e2e") && filepath.Base(p) == "tamper.go" {
			return nil // the attacker's tool of the tamper tests (tests only)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if loc := kept2.FindIndex(b); loc != nil {
			t.Errorf("%s deletes or rewrites kept records: %q", p, b[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
