package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"madoguchi/app"
	"madoguchi/app/auth"
)

// TestCLIAuditBackup: `madoguchi cli audit backup -to DIR` (CPS §5.4): the
// auditor's verified copy, a second one the same day beside it, refused
// without the audit permission and without -to.
func TestCLIAuditBackup(t *testing.T) {
	dir := t.TempDir()
	fp := auth.NewFake()
	cfg := app.Config{DBPath: filepath.Join(dir, "t.db"), Fingerprint: fp, Argon2: auth.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}}
	to := filepath.Join(dir, "offsite")
	steps := []struct {
		stdin   string
		args    []string
		code    int
		outHas  string
		errHas  string
		present string
	}{
		{"supervisor-pass-1\n", []string{"bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "指紋装置の設置前"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "create", "cs1", "窓口 一郎"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "grant", "cs1", "cs"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "enroll", "cs1", "right-index-finger"}, 0, "", "", "print-cs1"},
		{"", []string{"-user", "cs1", "audit", "backup", "-to", to}, 1, "", "権限がありません", "print-cs1"},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "backup"}, 2, "", "audit backup -to DIR", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "backup", "-to", to}, 0, "records, verified", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "backup", "-to", to}, 0, ".2.db", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "history", "sup"}, 0, "audit.backup", "", ""},
	}
	for i, s := range steps {
		fp.Present(s.present)
		r := run(t, cfg, s.stdin, s.args...)
		if r.code != s.code || !strings.Contains(r.out, s.outHas) || !strings.Contains(r.errOut, s.errHas) {
			t.Fatalf("step %d %v: code %d\nstdout: %s\nstderr: %s", i, s.args, r.code, r.out, r.errOut)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(to, "audit-*.db"))
	if len(matches) != 2 {
		t.Fatalf("backups %v", matches)
	}
}
