package cli

import (
	"bytes"
	"context"
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
	"madoguchi/cardio"
	"madoguchi/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	e2e.Cleanup()
	os.Exit(code)
}

// TestCLIAgainstRealCA drives the counter headless against the real stack: a SoftHSM-backed
// `ca-server serve` child process with this terminal enrolled over mutual TLS, pcscd+vpcd with
// a virtual card from the CA's card stock. Issuance with the applicant's PINs from a file
// descriptor (a weak PIN is asked again), the certificate copy to PDF from the card read-back,
// a hold set by the CA's call centre released at the counter, revocation at the holder's
// request, a name change sent to the CA that revokes the signature certificate, and the audit
// chain intact at the end.
// The CLI end-to-end tests' operators' passwords, as typed on stdin.
const supStdin, rcStdin = "supervisor-pass-1\n", "reception-pass-1\n"

// counter is the headless counter on the real stack of startCounter.
type counter struct {
	t       *testing.T
	ca      *e2e.CA
	pc      *testenv.PCSC
	dir     string // the terminal's files: TLS identity, database, exports
	cfg     app.Config
	caFlags []string // the flags that connect a command to the CA as this terminal
}

// startCounter starts the CA (e2e.StartCA) and pcscd, writes the terminal's TLS files, and
// brings the counter to case 1: supervisor "sup" and operator "rc1" (reception and CS,
// password-exempt) set up, the fixture register imported, a new issuance of both certificates
// for 90000000088 opened from the CS export, identity checked and explained. extraCAFlags
// follow the CA connection flags.
func startCounter(t *testing.T, extraCAFlags ...string) *counter {
	t.Helper()
	c := &counter{t: t, ca: e2e.StartCA(t), pc: testenv.PCSCD(t), dir: t.TempDir()}
	files := map[string][]byte{"terminal.crt": c.ca.CertPEM, "terminal.key": c.ca.KeyPEM, "tls-ca.crt": c.ca.RootPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.caFlags = append([]string{"-ca-url", c.ca.Base, "-ca-cert", filepath.Join(c.dir, "terminal.crt"), "-ca-key", filepath.Join(c.dir, "terminal.key"),
		"-ca-root", filepath.Join(c.dir, "tls-ca.crt")}, extraCAFlags...)
	c.cfg = testConfig(filepath.Join(c.dir, "terminal.db"), auth.NewFake())
	sup, rc := supStdin, rcStdin
	c.must(sup, false, "bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "指紋装置の設置前")
	c.must(sup, false, "-user", "sup", "operator", "create", "rc1", "受付 花子")
	c.must(sup, false, "-user", "sup", "operator", "grant", "rc1", "reception")
	c.must(sup, false, "-user", "sup", "operator", "grant", "rc1", "cs")
	c.must(sup+strings.TrimSuffix(rc, "\n")+"\n", false, "-user", "sup", "operator", "exempt", "rc1", "指紋の読み取りが困難")
	c.must(rc, false, "-user", "rc1", "resident", "import-fixtures")
	file := filepath.Join(c.dir, "resident.json")
	c.must(rc, false, "-user", "rc1", "resident", "export", "90000000088", "-o", file)
	c.must(rc, false, "-user", "rc1", "case", "open", "-kind", "new_issuance", "-file", file, "-types", "signature,user_auth")
	c.must(rc, false, "-user", "rc1", "case", "identity", "1", "-document", "drivers_licence", "-ref", "5678")
	c.must(rc, false, "-user", "rc1", "case", "explain", "1")
	return c
}

// must runs the command (after the CA flags when withCA) and fails the test unless it exits 0.
func (c *counter) must(stdin string, withCA bool, args ...string) result {
	c.t.Helper()
	if withCA {
		args = append(append([]string{}, c.caFlags...), args...)
	}
	r := run(c.t, c.cfg, stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.out, r.errOut)
	}
	return r
}

// issue plugs card 0 of the CA's stock into reader 0 and issues case 1 onto it as rc1, the
// applicant's PIN lines read from -pin-fd; it returns the run and the delivered serials by
// certificate type ("signature", "user_auth"), failing the test unless both are delivered.
func (c *counter) issue(pins string) (result, map[string]string) {
	c.t.Helper()
	c.ca.PlugInStockCard(c.t, c.pc, 0)
	r := c.must(rcStdin, true, "-pin-fd", pinFD(c.t, pins), "-user", "rc1", "issue", "-case", "1", "-reader", c.pc.Readers[0],
		"-card-expiry", time.Now().AddDate(10, 0, 0).Format("2006-01-02"))
	serials := map[string]string{}
	for _, m := range regexp.MustCompile(`delivered (\w+) serial ([0-9a-fA-F]+)`).FindAllStringSubmatch(r.out, -1) {
		serials[m[1]] = m[2]
	}
	if serials["signature"] == "" || serials["user_auth"] == "" {
		c.t.Fatalf("issue output: %s", r.out)
	}
	return r, serials
}

// pinFD is the -pin-fd value of a pipe that holds pins and is closed for writing; the read end
// is closed when the test ends. PINs never go on the command line.
func pinFD(t *testing.T, pins string) string {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	pw.WriteString(pins)
	pw.Close()
	return strconv.Itoa(int(pr.Fd()))
}

func TestCLIAgainstRealCA(t *testing.T) {
	c := startCounter(t, "-municipality", "東京都架空区長")
	ca, pc, dir, cfg, caFlags := c.ca, c.pc, c.dir, c.cfg, c.caFlags
	const sup, rc = supStdin, rcStdin
	must := c.must

	// Issuance: the applicant's PINs arrive on a pipe (-pin-fd), never on the command line.
	began := time.Now()
	r, serials := c.issue("signature:SAKURA73\nsignature:SAKURA73\nuser-auth:1234\nuser-auth:1234\nuser-auth:4826\nuser-auth:4826\n")
	t.Logf("headless issuance of both certificates in %v", time.Since(began).Round(time.Millisecond))
	if !strings.Contains(r.errOut, "連続した数字や文字") {
		t.Errorf("the weak PIN 1234 was not refused on the applicant's screen:\n%s", r.errOut)
	}
	if strings.Contains(r.out+r.errOut, "SAKURA73") || strings.Contains(r.out+r.errOut, "4826") {
		t.Error("a PIN was echoed")
	}

	// Certificate copy from the card read-back (the holder enters the signature PIN).
	pdfPath := filepath.Join(dir, "copy.pdf")
	must(rc+"signature:SAKURA73\n", true, "-user", "rc1", "copy", "-reader", pc.Readers[0], "-type", "signature", "-o", pdfPath)
	if pdf, err := os.ReadFile(pdfPath); err != nil || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("certificate copy PDF: %v", err)
	}

	// A phone report puts the signature certificate on hold (local call-centre command); the
	// holder comes to the counter and the hold is released after the identity check.
	e2e.CACmd(t, ca.Bin, "hold", "--data-dir", ca.Data, "--serial", serials["signature"], "--note", "本人から電話で紛失の届出")
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "hold_release", "-code", "90000000088")
	must(rc, false, "-user", "rc1", "case", "identity", "2", "-document", "passport")
	must(rc, false, "-user", "rc1", "case", "approve", "2")
	r = must(rc, true, "-user", "rc1", "release-hold", "-case", "2", "-cert", "signature:"+serials["signature"])
	if !strings.Contains(r.out, "is delivered") {
		t.Errorf("release-hold: %s", r.out)
	}

	// Revocation of the user-authentication certificate at the holder's request.
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "revocation", "-code", "90000000088")
	must(rc, false, "-user", "rc1", "case", "identity", "3", "-document", "my_number_card")
	must(rc, false, "-user", "rc1", "case", "approve", "3")
	r = must(rc, true, "-user", "rc1", "revoke", "-case", "3", "-cert", "user_auth:"+serials["user_auth"], "-written", "失効申請書 No.1")
	if !strings.Contains(r.out, "reason 5") || !strings.Contains(r.out, "written acknowledgement: true") {
		t.Errorf("revoke: %s", r.out)
	}
	// Revocation is never undone nor repeated.
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "revocation", "-code", "90000000088")
	must(rc, false, "-user", "rc1", "case", "identity", "4", "-document", "my_number_card")
	must(rc, false, "-user", "rc1", "case", "approve", "4")
	if r := run(t, cfg, rc, append(append([]string{}, caFlags...), "-user", "rc1", "revoke", "-case", "4", "-cert", "user_auth:"+serials["user_auth"], "-written", "x")...); r.code != 1 ||
		!strings.Contains(r.errOut, "既に失効") {
		t.Errorf("second revocation: %d %s", r.code, r.errOut)
	}

	// PIN reset at the counter: the holder locked the user-auth PIN; the CA authorises the
	// reset for this card and the applicant sets the new PIN from the PIN descriptor.
	pcard, closeCard := e2e.ConnectCard(t, pc.Readers[0])
	card := cardio.New(pcard)
	for range 3 {
		card.VerifyPIN(context.Background(), cardio.UserAuth, []byte("0000"))
	}
	closeCard()
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "pin_reset", "-code", "90000000088")
	must(rc, false, "-user", "rc1", "case", "identity", "5", "-document", "my_number_card")
	must(rc, false, "-user", "rc1", "case", "approve", "5")
	r = must(rc, true, "-pin-fd", pinFD(t, "user-auth:5931\nuser-auth:5931\n"), "-user", "rc1", "pin-reset", "-case", "5", "-reader", pc.Readers[0], "-pin", "user-auth")
	if !strings.Contains(r.out, "user-auth PIN reset") || strings.Contains(r.out+r.errOut, "5931") {
		t.Errorf("pin-reset: %s %s", r.out, r.errOut)
	}
	// Key destruction: the signature certificate is still valid, so its key is not destroyed;
	// the user-auth certificate was revoked above, so its key is.
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "key_destruction", "-code", "90000000088", "-types", "signature")
	must(rc, false, "-user", "rc1", "case", "identity", "6", "-document", "my_number_card")
	must(rc, false, "-user", "rc1", "case", "approve", "6")
	if r := run(t, cfg, rc, append(append([]string{}, caFlags...), "-user", "rc1", "destroy-keys", "-case", "6", "-reader", pc.Readers[0])...); r.code != 1 ||
		!strings.Contains(r.errOut, "先に電子証明書を失効") {
		t.Errorf("destroy-keys with a valid certificate: %d %s", r.code, r.errOut)
	}
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "key_destruction", "-code", "90000000088", "-types", "user_auth")
	must(rc, false, "-user", "rc1", "case", "identity", "7", "-document", "my_number_card")
	must(rc, false, "-user", "rc1", "case", "approve", "7")
	r = must(rc, true, "-user", "rc1", "destroy-keys", "-case", "7", "-reader", pc.Readers[0])
	if !strings.Contains(r.out, "keys destroyed") {
		t.Errorf("destroy-keys: %s", r.out)
	}

	// A name change recorded by the CS reaches the CA and revokes the signature certificate.
	today := time.Now().In(time.FixedZone("JST", 9*3600)).Format("2006-01-02")
	must(rc, false, "-user", "rc1", "resident", "change", "90000000088", "name_change", today, "-name", "鈴木 一朗", "-kana", "スズキ イチロウ")
	r = must(rc, true, "-user", "rc1", "resident", "send-changes")
	if !strings.Contains(r.out, "name-changed\tdelivered\trevoked=sign") {
		t.Errorf("send-changes: %s", r.out)
	}
	r = must(rc, false, "-user", "rc1", "resident", "pending")
	if strings.TrimSpace(r.out) != "" {
		t.Errorf("outbox after delivery: %s", r.out)
	}
	// Start-up recovery with the CA: nothing unfinished.
	r = must("", true, "recover")
	if !strings.Contains(r.out, "0 unfinished issuances resolved") {
		t.Errorf("recover: %s", r.out)
	}
	must(sup, false, "-user", "sup", "audit", "verify")
}
