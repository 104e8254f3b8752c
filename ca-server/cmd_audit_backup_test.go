package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/internal/testenv"
)

// TestAuditBackupDaily: CPS §5.4 (audit kept at least one year, backed up
// daily), against a real SoftHSM-backed CA: serve makes the day's backup at
// start (after a checkpoint signed in the HSM), a restart the same day does
// not make another, the copy verifies on its own with the public key from
// the ceremony state, the auditor's `audit backup --to` adds a copy without
// replacing it, every backup is itself recorded, a tampered log is not
// backed up, and there is no command that deletes audit records.
func TestAuditBackupDaily(t *testing.T) {
	testenv.SoftHSM(t)
	data := t.TempDir()
	bdir := filepath.Join(t.TempDir(), "offsite")
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016")

	_, stop := serveFor(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0",
		"--public-listen", "127.0.0.1:0", "--audit-backup-dir", bdir)
	stop() // waits for the backup in progress
	day := time.Now().UTC().Format(time.DateOnly)
	first := filepath.Join(bdir, "audit-"+day+".db")
	fi, err := os.Stat(first)
	if err != nil {
		t.Fatalf("serve made no backup: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(first)
	code, out := runExit("audit", "verify", "--data-dir", data, "--backup", first)
	if code != 0 || !strings.Contains(out, "0 records after the last checkpoint") || strings.Contains(out, " 0 checkpoints") {
		t.Fatalf("backup does not verify on its own: %d\n%s", code, out)
	}

	_, stop = serveFor(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0",
		"--public-listen", "127.0.0.1:0", "--audit-backup-dir", bdir)
	stop()
	if ents, _ := os.ReadDir(bdir); len(ents) != 1 {
		t.Fatalf("a restart the same day made another backup: %d files", len(ents))
	}

	out = runCmd(t, "audit", "backup", "--data-dir", data, "--to", bdir, "--operator", "auditor-1")
	second := filepath.Join(bdir, "audit-"+day+".2.db")
	if !strings.Contains(out, second) || !strings.Contains(out, "verified") {
		t.Fatalf("audit backup: %s", out)
	}
	if after, _ := os.ReadFile(first); string(after) != string(before) {
		t.Error("the first backup changed")
	}
	if out := runCmd(t, "audit", "show", "--data-dir", data, "--operator", "ca-server"); !strings.Contains(out, "audit.backup\taudit-"+day+".db\tok") {
		t.Errorf("serve's backup not recorded:\n%s", out)
	}
	if out := runCmd(t, "audit", "show", "--data-dir", data, "--operator", "auditor-1"); !strings.Contains(out, "audit.backup\taudit-"+day+".2.db\tok") {
		t.Errorf("the auditor's backup not recorded:\n%s", out)
	}
	if code, _ := runExit("audit", "backup", "--data-dir", data); code != 2 {
		t.Errorf("audit backup without --to: exit %d", code)
	}
	for _, sub := range []string{"prune", "delete", "purge"} {
		if code, _ := runExit("audit", sub, "--data-dir", data); code != 2 {
			t.Errorf("audit %s: exit %d, want a usage error (no deletion path)", sub, code)
		}
	}

	raw, err := sql.Open("sqlite", "file:"+filepath.Join(data, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	dropAuditTriggers(t, raw) // an attacker with the file
	if _, err := raw.Exec(`UPDATE audit_records SET operator = 'someone-else' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	if code, out := runExit("audit", "backup", "--data-dir", data, "--to", bdir); code != 1 || !strings.Contains(out, "does not verify") {
		t.Fatalf("backup of a tampered log: exit %d\n%s", code, out)
	}
	if ents, _ := os.ReadDir(bdir); len(ents) != 2 {
		t.Errorf("a refused backup left files: %d entries", len(ents))
	}
	if code, _ := runExit("audit", "verify", "--data-dir", data, "--backup", second); code != 0 {
		t.Error("the earlier backup stopped verifying")
	}
}
