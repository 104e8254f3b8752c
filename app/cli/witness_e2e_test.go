package cli

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"madoguchi/app/auth"
	"madoguchi/app/internal/e2e"
)

// TestAuditRewriteDetectedAgainstCAWitness is the attack of issue 13 threat 2 against a real
// SoftHSM-backed `ca-server serve` over mutual TLS.
//
// Attack: someone with the file terminal.db edits an audit record (here: the supervisor's
// history shows a different operator created), recomputes every later hash and the head row
// with the public algorithm, and deletes the CA receipts the terminal kept. On the code before
// this change the attack succeeded: the chain was an unkeyed SHA-256 chain and `audit verify`
// answered "audit chain intact" for the forged file.
//
// Now every log-out sends the chain head to the CA, which records it in its own audit log and
// returns a receipt signed with the audit checkpoint key; `audit verify` with the CA reachable
// asks the CA for the last head it witnessed for this terminal and finds the rewrite, even
// with the local receipts gone; so does an older copy of the file put back. Without the CA it
// says so and checks the receipts it has. The heads of the tampered files are refused by the CA
// (409) and recorded in its audit log.
func TestAuditRewriteDetectedAgainstCAWitness(t *testing.T) {
	ca := e2e.StartCA(t)
	dir := t.TempDir()
	files := map[string][]byte{"terminal.crt": ca.CertPEM, "terminal.key": ca.KeyPEM, "tls-ca.crt": ca.RootPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caFlags := []string{"-ca-url", ca.Base, "-ca-cert", filepath.Join(dir, "terminal.crt"), "-ca-key", filepath.Join(dir, "terminal.key"),
		"-ca-root", filepath.Join(dir, "tls-ca.crt")}
	dbPath := filepath.Join(dir, "terminal.db")
	cfg := testConfig(dbPath, auth.NewFake())
	run := func(stdin string, withCA bool, args ...string) (int, string) {
		t.Helper()
		if withCA {
			args = append(append([]string{}, caFlags...), args...)
		}
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Config: cfg})
		return code, out.String() + errb.String()
	}
	must := func(stdin string, withCA bool, args ...string) string {
		t.Helper()
		code, out := run(stdin, withCA, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
		return out
	}
	must(supStdin, false, "bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "指紋装置の設置前")
	must(supStdin, true, "-user", "sup", "operator", "grant", "sup", "audit")
	must(supStdin, true, "-user", "sup", "operator", "create", "rc1", "受付 花子")
	// The attacker's other move: keep a copy of the file now and put it back later (every record
	// after the copy gone, the chain intact on its own).
	early, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dbPath + "-wal"); err == nil {
		t.Fatal("terminal.db has a WAL file after the CLI exited: copying the main file is not a copy")
	}
	must(supStdin, true, "-user", "sup", "operator", "list") // its log-out is witnessed too
	out := must(supStdin, true, "-user", "sup", "audit", "verify")
	if !strings.Contains(out, "audit chain intact") || strings.Contains(out, "up to record 0,") || !strings.Contains(out, "checked against the CA's last witnessed head") {
		t.Fatalf("honest verify: %s", out)
	}
	t.Logf("honest verify:\n%s", out)

	e2e.RewriteAuditChain(t, dbPath, "operator.create", "rc1", "rc9", true)

	// Offline the terminal cannot tell (the receipts are gone), and it says so.
	out = must(supStdin, false, "-user", "sup", "audit", "verify")
	if !strings.Contains(out, "CA not consulted") || !strings.Contains(out, "up to record 0,") {
		t.Fatalf("offline verify of the rewritten file does not say the CA was not consulted:\n%s", out)
	}
	// The next log-out's head contradicts the head the CA witnessed: refused, and recorded by
	// the CA.
	must(supStdin, true, "-user", "sup", "operator", "list")
	caDB, err := sql.Open("sqlite", "file:"+filepath.Join(ca.Data, "ca.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer caDB.Close()
	var refused int
	if err := caDB.QueryRow(`SELECT count(*) FROM audit_records WHERE action = 'terminal.audit.head' AND result = 'audit_head_forked'`).Scan(&refused); err != nil || refused != 1 {
		t.Fatalf("the CA recorded %d refused heads (%v), want 1", refused, err)
	}

	code, out := run(supStdin, true, "-user", "sup", "audit", "verify")
	if code == 0 {
		t.Fatalf("ATTACK SUCCEEDED: the rewritten chain verifies with the CA reachable:\n%s", out)
	}
	if !strings.Contains(out, "rewritten before a witnessed head") {
		t.Fatalf("verify does not say the CA's witnessed head disagrees:\n%s", out)
	}
	t.Logf("verify of the rewritten file:\n%s", out)

	if err := os.WriteFile(dbPath, early, 0o600); err != nil {
		t.Fatal(err)
	}
	must(supStdin, true, "-user", "sup", "operator", "create", "rc2", "受付 次郎") // its head goes backwards: refused
	code, out = run(supStdin, true, "-user", "sup", "audit", "verify")
	if code == 0 || !strings.Contains(out, "truncated before a witnessed head") && !strings.Contains(out, "rewritten before a witnessed head") {
		t.Fatalf("ATTACK SUCCEEDED: an older copy of terminal.db put back verifies with the CA reachable (exit %d):\n%s", code, out)
	}
	t.Logf("verify of an older copy put back:\n%s", out)
	if err := caDB.QueryRow(`SELECT count(*) FROM audit_records WHERE action = 'terminal.audit.head' AND result IN ('audit_head_backwards', 'audit_head_forked')`).Scan(&refused); err != nil || refused < 2 {
		t.Fatalf("the CA recorded %d refused heads (%v), want at least 2", refused, err)
	}
}
