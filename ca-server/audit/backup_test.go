package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/store"
)

// TestBackupIsAVerifiedCopy: CPS §5.4 (backed up daily): the copy verifies
// on its own, is private, named by date, and a second backup never
// replaces the first.
func TestBackupIsAVerifiedCopy(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 250, 100) // checkpoints at 100 and 200; 50 records after
	dir := filepath.Join(t.TempDir(), "backups")
	day := time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC)
	keys := []Key{{ID: "audit-1", Public: f.key.Public()}}
	if due, err := BackupDue(dir, day); err != nil || !due {
		t.Fatalf("BackupDue before any backup = %v, %v", due, err)
	}
	res, err := Backup(ctx, f.path, dir, BackupOptions{Keys: keys, Clock: func() time.Time { return day }})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(res.Path) != "audit-2026-11-22.db" {
		t.Errorf("backup name %q", res.Path)
	}
	if res.Report.Records != 250 || res.Report.Checkpoints != 2 || res.Report.LastCheckpoint != 200 {
		t.Errorf("backup report %+v", res.Report)
	}
	fi, err := os.Stat(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}

	// On its own: the live store is closed and gone; the copy verifies.
	f.st.Close()
	f.raw.Close()
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	bf, err := OpenBackup(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyKeys(ctx, bf, keys)
	if err != nil || rep.Records != 250 {
		t.Fatalf("copy alone: %+v, %v", rep, err)
	}
	if bob, err := bf.AuditRecordsByOperator(ctx, "bob", 0, 1000); err != nil || len(bob) != 83 {
		t.Errorf("bob's records in the copy: %d, %v", len(bob), err)
	}
	if at, err := bf.MadeAt(ctx); err != nil || !at.Equal(day) {
		t.Errorf("MadeAt = %v, %v", at, err)
	}
	// a checkpoint under another key does not verify: the copy is not
	// trusted for its own keys
	if _, err := VerifyKeys(ctx, bf, nil); !errors.Is(err, ErrTampered) {
		t.Errorf("copy verified without the checkpoint key: %v", err)
	}
	bf.Close()

	if due, err := BackupDue(dir, day); err != nil || due {
		t.Errorf("BackupDue the same day = %v, %v", due, err)
	}
	if due, _ := BackupDue(dir, day.Add(time.Minute)); !due {
		t.Error("BackupDue the next UTC day = false")
	}
	if _, err := OpenBackup(filepath.Join(dir, "nothing.db")); err == nil {
		t.Error("OpenBackup of a missing file succeeded")
	}
}

func TestSecondBackupOfTheDayNeverOverwrites(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 20, 10)
	dir := t.TempDir()
	day := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	opts := BackupOptions{Keys: []Key{{ID: "audit-1", Public: f.key.Public()}}, Clock: func() time.Time { return day }}
	a, err := Backup(ctx, f.path, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(a.Path)
	record(t, f.log, 5, "carol")
	b, err := Backup(ctx, f.path, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(b.Path) != "audit-2026-11-22.2.db" || b.Report.Records != 25 {
		t.Errorf("second backup %q with %d records", b.Path, b.Report.Records)
	}
	after, _ := os.ReadFile(a.Path)
	if !bytes.Equal(before, after) {
		t.Error("the first backup of the day changed")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("backup dir holds %d entries (temporary files left?)", len(ents))
	}
}

// TestBackupRefusesATamperedLog: a copy that does not verify on its own
// never gets a backup name, and nothing is left behind.
func TestBackupRefusesATamperedLog(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 30, 10)
	f.exec(t, `UPDATE audit_records SET target = 'forged' WHERE seq = 5`)
	dir := t.TempDir()
	_, err := Backup(ctx, f.path, dir, BackupOptions{Keys: []Key{{ID: "audit-1", Public: f.key.Public()}}})
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("backup of a tampered log: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused backup left %d files", len(ents))
	}
	if _, err := Backup(ctx, filepath.Join(t.TempDir(), "missing.db"), dir, BackupOptions{}); err == nil {
		t.Error("backup of a missing database succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("backup created the missing source")
	}
}

// TestBackupWhileAppending: the copy is one transaction's snapshot, so it
// verifies while another writer appends and checkpoints.
func TestBackupWhileAppending(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 50, 7)
	keys := []Key{{ID: "audit-1", Public: f.key.Public()}}
	dir := t.TempDir()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := f.log.Record(ctx, Entry{Terminal: "t2", Operator: "dave", Action: "issuance.confirm", Target: "x", Result: "ok"}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 5; i++ {
		if _, err := Backup(ctx, f.path, dir, BackupOptions{Keys: keys}); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if ents, _ := os.ReadDir(dir); len(ents) != 5 {
		t.Errorf("%d backups, want 5", len(ents))
	}
}

// TestNoAuditDeletionPath: CPS §5.4 keeps records at least one year; this
// CA never deletes them (see backup.go), so no part of the audit log's
// store interface, nor any statement in ca-server's code, deletes or
// rewrites audit records or checkpoints.
func TestNoAuditDeletionPath(t *testing.T) {
	bad := regexp.MustCompile(`(?i)^(delete|prune|purge|remove|truncate|drop|rewrite|update).*audit|audit.*(delete|prune|purge|remove|truncate)`)
	for _, typ := range []reflect.Type{reflect.TypeFor[store.Writer](), reflect.TypeFor[Store](), reflect.TypeFor[*store.SQLite](), reflect.TypeFor[*Log]()} {
		for i := 0; i < typ.NumMethod(); i++ {
			if m := typ.Method(i).Name; bad.MatchString(m) {
				t.Errorf("%v has %s: a path that deletes audit records", typ, m)
			}
		}
	}
	// Adding a column rewrites no record (0005_audit_anchor.sql); dropping,
	// renaming or altering one, or switching triggers off, could.
	sqlBad := regexp.MustCompile(`(?i)((delete\s+from|update|drop\s+table|truncate(\s+table)?)\s+(\w+\.)?audit_(records|checkpoints)|alter\s+table\s+(\w+\.)?audit_(records|checkpoints)\s+(drop|rename|alter|disable))`)
	root := filepath.Join("..") // ca-server
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		if !strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, ".sql") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if loc := sqlBad.FindIndex(b); loc != nil {
			t.Errorf("%s deletes or rewrites audit records: %q", p, b[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBackupFromAStoreInterface: BackupFrom (the PostgreSQL store's path,
// here fed the SQLite store through the same Reader interface) writes the
// same verified, dated copy as Backup, leaves no staging file behind, and
// refuses a tampered log without giving it a backup name.
func TestBackupFromAStoreInterface(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2500, 1000) // more than one page of 1000 records
	dir := t.TempDir()
	day := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	keys := []Key{{ID: "audit-1", Public: f.key.Public()}}
	res, err := BackupFrom(ctx, f.st, "postgres://ca@db.example/ca", dir, BackupOptions{Keys: keys, Clock: func() time.Time { return day }})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(res.Path) != "audit-2026-12-04.db" || res.Report.Records != 2500 || res.Report.Checkpoints != 2 {
		t.Errorf("backup %q, report %+v", res.Path, res.Report)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("backup dir holds %d entries, want only the backup (staging file left?)", len(ents))
	}
	bf, err := OpenBackup(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := VerifyKeys(ctx, bf, keys); err != nil || rep.Records != 2500 {
		t.Errorf("copy alone: %+v, %v", rep, err)
	}
	bf.Close()

	f.exec(t, `UPDATE audit_records SET operator = 'mallory' WHERE seq = 1500`)
	tampered := t.TempDir()
	if _, err := BackupFrom(ctx, f.st, "ca", tampered, BackupOptions{Keys: keys}); !errors.Is(err, ErrTampered) {
		t.Fatalf("BackupFrom of a tampered log: %v", err)
	}
	if ents, _ := os.ReadDir(tampered); len(ents) != 0 {
		t.Errorf("refused backup left %d files", len(ents))
	}
	if _, err := BackupFrom(ctx, nil, "ca", dir, BackupOptions{}); err == nil {
		t.Error("BackupFrom without a store succeeded")
	}
}
