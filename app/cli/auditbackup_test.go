package cli

import (
	"path/filepath"
	"testing"

	"madoguchi/app/auth"
)

// TestCLIAuditBackup: `madoguchi cli audit backup -to DIR` (CPS §5.4): the
// auditor's verified copy, a second one the same day beside it, refused
// without the audit permission and without -to.
func TestCLIAuditBackup(t *testing.T) {
	dir := t.TempDir()
	fp := auth.NewFake()
	to := filepath.Join(dir, "offsite")
	runSteps(t, testConfig(filepath.Join(dir, "t.db"), fp), fp, []step{
		{"supervisor-pass-1\n", []string{"bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "指紋装置の設置前"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "create", "cs1", "窓口 一郎"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "grant", "cs1", "cs"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "enroll", "cs1", "right-index-finger"}, 0, "", "", "print-cs1"},
		{"", []string{"-user", "cs1", "audit", "backup", "-to", to}, 1, "", "権限がありません", "print-cs1"},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "backup"}, 2, "", "audit backup -to DIR", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "backup", "-to", to}, 0, "records, verified", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "backup", "-to", to}, 0, ".2.db", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "history", "sup"}, 0, "audit.backup", "", ""},
	})
	matches, _ := filepath.Glob(filepath.Join(to, "audit-*.db"))
	if len(matches) != 2 {
		t.Fatalf("backups %v", matches)
	}
}
