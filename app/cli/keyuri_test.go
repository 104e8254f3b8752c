package cli

import (
	"os"
	"path/filepath"
	"testing"

	"madoguchi/app/auth"
	"madoguchi/internal/testenv"
)

// With -key-uri the resident-record file is made and checked with the HMAC key in the
// terminal's PKCS#11 token (SoftHSM here): the CLI without the token, on the same database,
// cannot check it, because terminal.db holds no file key.
func TestCLIKeyURIResidentFile(t *testing.T) {
	h := testenv.SoftHSM(t)
	dir := t.TempDir()
	pin := filepath.Join(dir, "token.pin")
	if err := os.WriteFile(pin, []byte(h.UserPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "pkcs11:token=" + h.TokenLabel + "?module-path=" + h.Module + "&pin-source=file:" + pin
	fp := auth.NewFake()
	cfg := testConfig(filepath.Join(dir, "t.db"), fp)
	file := filepath.Join(dir, "f.json")
	runSteps(t, cfg, fp, []step{
		{"supervisor-pass-1\n", []string{"bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "指紋装置の設置前"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "create", "cs1", "窓口 一郎"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "grant", "cs1", "cs"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "grant", "cs1", "reception"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "enroll", "cs1", "right-index-finger"}, 0, "", "", "print-cs1"},
		{"", []string{"-user", "cs1", "resident", "import-fixtures"}, 0, "", "", "print-cs1"},
		{"", []string{"-key-uri", uri, "-user", "cs1", "resident", "export", "90000000011", "-o", file}, 0, "", "", "print-cs1"},
		{"", []string{"-user", "cs1", "resident", "import-file", file}, 1, "", "改ざん", "print-cs1"},
		{"", []string{"-key-uri", uri, "-user", "cs1", "resident", "import-file", file}, 0, "", "", "print-cs1"},
		{"", []string{"-key-uri", "pkcs11:token=x?pin-value=1234&module-path=" + h.Module, "-user", "cs1", "resident", "search"}, 1, "", "pin-value", "print-cs1"},
	})
}
