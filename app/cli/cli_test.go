package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"madoguchi/app"
	"madoguchi/app/auth"
)

type result struct {
	code        int
	out, errOut string
}

func run(t *testing.T, cfg app.Config, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Config: cfg})
	return result{code, out.String(), errOut.String()}
}

// testConfig is the terminal at dbPath with fp as the reader and cheap password hashing.
func testConfig(dbPath string, fp auth.Fingerprint) app.Config {
	return app.Config{DBPath: dbPath, Fingerprint: fp, Argon2: auth.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}}
}

// step is one command of a scripted session: its stdin and arguments, the exit code and what
// stdout and stderr must contain, and the finger on the fake reader while it runs.
type step struct {
	stdin   string
	args    []string
	code    int
	outHas  string
	errHas  string
	present string
}

// runSteps runs steps in order against cfg with fp as its reader; the first that does not
// answer as expected fails the test.
func runSteps(t *testing.T, cfg app.Config, fp *auth.Fake, steps []step) {
	t.Helper()
	for i, s := range steps {
		fp.Present(s.present)
		r := run(t, cfg, s.stdin, s.args...)
		if r.code != s.code || !strings.Contains(r.out, s.outHas) || !strings.Contains(r.errOut, s.errHas) {
			t.Fatalf("step %d %v: code %d\nstdout: %s\nstderr: %s", i, s.args, r.code, r.out, r.errOut)
		}
	}
}

func TestCLIFlow(t *testing.T) {
	dir := t.TempDir()
	fp := auth.NewFake()
	cfg := testConfig(filepath.Join(dir, "t.db"), fp)
	runSteps(t, cfg, fp, []step{
		{"supervisor-pass-1\n", []string{"bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "指紋装置の設置前"}, 0, "supervisor sup created", "", ""},
		{"x\n", []string{"bootstrap", "-id", "sup2", "-name", "x", "-reason", "r"}, 1, "", "既に登録", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "create", "cs1", "窓口 一郎"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "grant", "cs1", "cs"}, 0, "", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "enroll", "cs1", "right-index-finger"}, 0, "", "(5/5)", "print-cs1"},
		{"wrong-password\n", []string{"-user", "sup", "operator", "list"}, 1, "", "パスワードが正しくありません", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "operator", "list"}, 0, "cs1", "", ""},
		{"", []string{"-user", "cs1", "resident", "import-fixtures"}, 0, "8 residents imported", "指紋認証装置に指を置いてください", "print-cs1"},
		{"", []string{"-user", "cs1", "resident", "search", "-kana", "ヨシノ"}, 0, "𠮷野 次郎", "", "print-cs1"},
		{"", []string{"-user", "cs1", "resident", "export", "90000000011", "-o", filepath.Join(dir, "f.json")}, 0, "", "", "print-cs1"},
		{"", []string{"-user", "cs1", "resident", "import-file", filepath.Join(dir, "f.json")}, 1, "", "権限がありません", "print-cs1"},
		{"", []string{"-user", "cs1", "audit", "verify"}, 1, "", "権限がありません", "print-cs1"},
		{"", []string{"-user", "cs1", "resident", "search"}, 1, "", "指紋が一致しません", "wrong-finger"},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "verify"}, 0, "audit chain intact", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "history", "cs1"}, 0, "resident.export_file", "", ""},
		{"supervisor-pass-1\n", []string{"-user", "sup", "audit", "export", "-format", "csv", "-operator", "cs1"}, 0, "seq,at,operator", "", ""},
		{"", []string{"-user", "sup", "nonsense", "x"}, 2, "", "usage", ""},
	})
	data, err := os.ReadFile(filepath.Join(dir, "f.json"))
	if err != nil || !bytes.Contains(data, []byte("髙橋")) {
		t.Fatalf("exported file: %s %v", data, err)
	}
	// The password never reaches the audit trail.
	r := run(t, cfg, "supervisor-pass-1\n", "-user", "sup", "audit", "export")
	if strings.Contains(r.out, "supervisor-pass-1") || !strings.Contains(r.out, `"action":"login.password"`) {
		t.Fatalf("audit export: %s", r.out)
	}
}
