package audit_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
)

// TestBackupOfTheTerminalChain: the terminal's audit chain is copied into a
// private file named by date that verifies on its own (the terminal
// database gone), a second copy the same day never replaces the first, and
// a broken chain is not backed up.
func TestBackupOfTheTerminalChain(t *testing.T) {
	ctx := context.Background()
	db, path := seed(t, 12)
	dir := filepath.Join(t.TempDir(), "audit-backup")
	day := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	if due, err := audit.BackupDue(dir, day); err != nil || !due {
		t.Fatalf("BackupDue before any backup = %v, %v", due, err)
	}
	res, err := audit.Backup(ctx, db.DB, dir, day)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(res.Path) != "audit-2026-11-22.db" || res.Records != 12 {
		t.Fatalf("backup %+v", res)
	}
	if fi, err := os.Stat(res.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi.Mode(), err)
	}
	first, _ := os.ReadFile(res.Path)
	if due, _ := audit.BackupDue(dir, day.Add(time.Hour)); due {
		t.Error("BackupDue the same day after a backup")
	}
	if due, _ := audit.BackupDue(dir, day.Add(24*time.Hour)); !due {
		t.Error("BackupDue the next day = false")
	}

	res2, err := audit.Backup(ctx, db.DB, dir, day)
	if err != nil || filepath.Base(res2.Path) != "audit-2026-11-22.2.db" {
		t.Fatalf("second backup %+v, %v", res2, err)
	}
	if again, _ := os.ReadFile(res.Path); !bytes.Equal(first, again) {
		t.Error("the first backup changed")
	}

	// On its own: the terminal database is removed.
	db.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
	rep, err := audit.VerifyBackup(ctx, res.Path)
	if err != nil || rep.Records != 12 {
		t.Fatalf("backup alone: %+v, %v", rep, err)
	}
	if _, err := audit.VerifyBackup(ctx, filepath.Join(dir, "none.db")); apperr.KindOf(err) != apperr.InvalidInput {
		t.Errorf("missing backup: %v", err)
	}

	// An edited copy is detected.
	tampered := bytes.Replace(first, []byte("resident.search"), []byte("resident.SEARCH"), 1)
	if err := os.WriteFile(filepath.Join(dir, "x.db"), tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.VerifyBackup(ctx, filepath.Join(dir, "x.db")); apperr.KindOf(err) != apperr.AuditBroken {
		t.Errorf("edited backup verified: %v", err)
	}
}

func TestBrokenChainIsNotBackedUp(t *testing.T) {
	ctx := context.Background()
	db, _ := seed(t, 5)
	if _, err := db.Exec(`UPDATE audit_log SET target = 'forged' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := audit.Backup(ctx, db.DB, dir, time.Now()); apperr.KindOf(err) != apperr.AuditBroken {
		t.Fatalf("backup of a broken chain: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused backup left %d files", len(ents))
	}
	// the database is usable afterwards (the connection was given back, detached)
	if _, err := audit.List(ctx, db, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
}
