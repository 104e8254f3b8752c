package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/auth"
	"madoguchi/app/internal/e2e"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

// TestCLIHolderRecordsAgainstRealCA: R02 II-8 on the real stack (SoftHSM-backed ca-server child
// process, pcscd+vpcd, a virtual card from the CA's stock): both certificates are issued, the
// user-authentication one is revoked at the holder's request, and on a new identity-checked
// case the holder's record lists both issuances and the revocation with the CA's reason.
func TestCLIHolderRecordsAgainstRealCA(t *testing.T) {
	ca := e2e.StartCA(t)
	pc := testenv.PCSCD(t)
	dir := t.TempDir()
	files := map[string][]byte{"terminal.crt": ca.CertPEM, "terminal.key": ca.KeyPEM, "tls-ca.crt": ca.RootPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caFlags := []string{"-ca-url", ca.Base, "-ca-cert", filepath.Join(dir, "terminal.crt"), "-ca-key", filepath.Join(dir, "terminal.key"),
		"-ca-root", filepath.Join(dir, "tls-ca.crt")}
	cfg := app.Config{DBPath: filepath.Join(dir, "terminal.db"), Fingerprint: auth.NewFake(), Argon2: auth.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}}
	const sup, rc = "supervisor-pass-1\n", "reception-pass-1\n"
	must := func(stdin string, withCA bool, args ...string) result {
		t.Helper()
		if withCA {
			args = append(append([]string{}, caFlags...), args...)
		}
		r := run(t, cfg, stdin, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.out, r.errOut)
		}
		return r
	}
	must(sup, false, "bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "指紋装置の設置前")
	must(sup, false, "-user", "sup", "operator", "create", "rc1", "受付 花子")
	must(sup, false, "-user", "sup", "operator", "grant", "rc1", "reception")
	must(sup, false, "-user", "sup", "operator", "grant", "rc1", "cs")
	must(sup+strings.TrimSuffix(rc, "\n")+"\n", false, "-user", "sup", "operator", "exempt", "rc1", "指紋の読み取りが困難")
	must(rc, false, "-user", "rc1", "resident", "import-fixtures")
	file := filepath.Join(dir, "resident.json")
	must(rc, false, "-user", "rc1", "resident", "export", "90000000088", "-o", file)
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "new_issuance", "-file", file, "-types", "signature,user_auth")
	must(rc, false, "-user", "rc1", "case", "identity", "1", "-document", "drivers_licence", "-ref", "5678")
	must(rc, false, "-user", "rc1", "case", "explain", "1")

	vc := ca.StockCard(t, 0, t.TempDir())
	vcardtest.PlugIn(t, vc, pc.Ports[0], pc.Readers[0])
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	pw.WriteString("signature:SAKURA73\nsignature:SAKURA73\nuser-auth:4826\nuser-auth:4826\n")
	pw.Close()
	r := must(rc, true, "-pin-fd", strconv.Itoa(int(pr.Fd())), "-user", "rc1", "issue", "-case", "1", "-reader", pc.Readers[0],
		"-card-expiry", time.Now().AddDate(10, 0, 0).Format("2006-01-02"))
	serials := map[string]string{}
	for _, m := range regexp.MustCompile(`delivered (\w+) serial ([0-9a-fA-F]+)`).FindAllStringSubmatch(r.out, -1) {
		serials[m[1]] = m[2]
	}
	if serials["signature"] == "" || serials["user_auth"] == "" {
		t.Fatalf("issue output: %s", r.out)
	}
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "revocation", "-code", "90000000088")
	must(rc, false, "-user", "rc1", "case", "identity", "2", "-document", "my_number_card")
	must(rc, false, "-user", "rc1", "case", "approve", "2")
	must(rc, true, "-user", "rc1", "revoke", "-case", "2", "-cert", "user_auth:"+serials["user_auth"], "-written", "失効申請書 No.1")

	// The holder asks to see their records: a new case, identity checked and approved first.
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "certificate_copy", "-code", "90000000088")
	if r := run(t, cfg, rc, "-user", "rc1", "holder-records", "-case", "3"); r.code != 1 {
		t.Fatalf("holder-records before the identity check: exit %d\n%s", r.code, r.errOut)
	}
	must(rc, false, "-user", "rc1", "case", "identity", "3", "-document", "my_number_card")
	must(rc, false, "-user", "rc1", "case", "approve", "3")
	out := must(rc, false, "-user", "rc1", "holder-records", "-case", "3").out
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "3 records at this terminal") {
		t.Fatalf("holder-records:\n%s", out)
	}
	for _, want := range []*regexp.Regexp{ // issued in the order the orchestration chose
		regexp.MustCompile(`(?m)^.*issued\s+signature\s+` + serials["signature"] + `\s+1 new_issuance$`),
		regexp.MustCompile(`(?m)^.*issued\s+user_auth\s+` + serials["user_auth"] + `\s+1 new_issuance$`),
	} {
		if !want.MatchString(strings.Join(lines[2:4], "\n")) {
			t.Errorf("no line matches %v:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`revoked\s+user_auth\s+` + serials["user_auth"] + `\s+5\s+2 revocation`).MatchString(lines[4]) {
		t.Errorf("revocation line %q", lines[4])
	}
	if strings.Contains(out, "rc1") {
		t.Error("the holder's record names a staff member")
	}
}
