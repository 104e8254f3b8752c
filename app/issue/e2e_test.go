package issue_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/internal/e2e"
	"madoguchi/app/issue"
	"madoguchi/app/operator"
	"madoguchi/app/pinrule"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
	"madoguchi/cardio"
	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// TestMain removes the ca-server binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	e2e.Cleanup()
	os.Exit(code)
}

// The applicant of the end-to-end tests: 鈴木 一郎 from the fixture register (no 外字), born
// 1985-03-15. PINs valid and not easily guessed for him (TS Art. 4).
const (
	e2eRecordCode = "90000000088"
	e2eAuthPIN    = "4826"
	e2eSignPIN    = "SAKURA73"
)

var cheapArgon = auth.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func applicantPINs(ctx context.Context, req issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
	p := e2eAuthPIN
	if req.Kind == pinrule.Signature {
		p = e2eSignPIN
	}
	return pinrule.New(p), pinrule.New(p), nil
}

// openCase makes the CS export of the e2e resident and the reception case up to the
// explanations (the fixtures imported first).
func openCase(t *testing.T, rc *app.Session, types ...workflow.CertType) int64 {
	t.Helper()
	if _, err := rc.ImportResidentFixtures(context.Background()); err != nil {
		t.Fatal(err)
	}
	return newCase(t, rc, e2eRecordCode, types...)
}

// newCase opens a new-issuance case for the resident with code (fixtures imported already)
// up to the explanations.
func newCase(tb testing.TB, rc *app.Session, code string, types ...workflow.CertType) int64 {
	tb.Helper()
	return openIssuanceCase(tb, rc, code, app.CaseRequest{Kind: workflow.NewIssuance, CertTypes: types})
}

// fingerCounter starts fprintd's virtual device and opens a terminal with cfg on it (DBPath,
// Fingerprint and Argon2 set here; closed when the test ends); supervisor "sup" bootstraps with
// a finger, logs in with it and sets up "rc1" (reception and CS) with a finger. It returns the
// terminal and rc1 logged in by finger.
func fingerCounter(t *testing.T, cfg app.Config) (*app.Terminal, *app.Session) {
	t.Helper()
	fp := testenv.Fprintd(t)
	ctx := context.Background()
	cfg.DBPath, cfg.Fingerprint, cfg.Argon2 = filepath.Join(t.TempDir(), "terminal.db"), &auth.Fprintd{BusAddress: fp.BusAddress}, cheapArgon
	term, err := app.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	press := func(print string) func(auth.EnrollProgress) {
		return func(e auth.EnrollProgress) {
			if e.Stage < e.Total {
				go fp.Scan(print)
			}
		}
	}
	if err := term.Bootstrap(ctx, app.BootstrapRequest{ID: "sup", Name: "管理 太郎", Finger: "right-index-finger", Progress: press("print-sup")}); err != nil {
		t.Fatal(err)
	}
	login := func(id, print string) *app.Session {
		s, err := term.LoginFingerprint(ctx, id, func(e auth.ScanEvent) {
			if e == auth.ScanWaiting {
				go fp.Scan(print)
			}
		})
		if err != nil {
			t.Fatalf("finger login %s: %v", id, err)
		}
		return s
	}
	sup := login("sup", "print-sup")
	for _, step := range []error{
		sup.CreateOperator(ctx, "rc1", "受付 花子"),
		sup.Grant(ctx, "rc1", operator.Reception),
		sup.Grant(ctx, "rc1", operator.CS),
		sup.EnrollFinger(ctx, "rc1", "left-index-finger", press("print-rc1")),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	return term, login("rc1", "print-rc1")
}

// TestIssueEndToEnd is the issue's "done when": a real SoftHSM-backed ca-server, pcscd + vpcd
// with the virtual card in reader 0, fprintd's virtual device. An operator logs in by finger,
// imports a resident-record file, issues both certificates onto the card; the card is read
// back through the JPKI read protocol and by OpenSC's pkcs15-tool.
func TestIssueEndToEnd(t *testing.T) {
	ca := e2e.StartCA(t)
	pc := testenv.PCSCD(t)
	ctx := context.Background()
	term, rc := fingerCounter(t, app.Config{})

	caseID := openCase(t, rc, workflow.SignatureCert, workflow.UserAuthCert)

	ca.PlugInStockCard(t, pc, 0)
	pcard, release := e2e.ConnectCard(t, pc.Readers[0])
	card := cardio.New(pcard)

	o, err := term.NewIssuer(ctx, ca.Client, ca.CACerts)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := term.RecoverIssuances(ctx, o); err != nil || len(res) != 0 {
		t.Fatalf("recover on a fresh terminal: %v %v", res, err)
	}
	var asked []pinrule.Kind
	began := time.Now()
	res, err := rc.IssueWith(ctx, o, app.IssueRequest{CaseID: caseID, Card: card, CardExpiry: time.Now().AddDate(10, 0, 0),
		PINs: func(ctx context.Context, req issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
			asked = append(asked, req.Kind)
			return applicantPINs(ctx, req)
		}})
	if err != nil {
		t.Fatalf("Issue: %v (%s)", err, translations.ErrorText("ja", err))
	}
	t.Logf("both certificates issued, written, read back and confirmed in %v", time.Since(began).Round(time.Millisecond))
	if len(res.Delivered) != 2 || len(asked) != 2 {
		t.Fatalf("delivered %d, PIN screens %v", len(res.Delivered), asked)
	}
	for _, d := range res.Delivered {
		st, err := ca.Client.Status(ctx, "rc1", d.IssuanceID)
		if err != nil || st.State != "delivered" {
			t.Errorf("%s at the CA: %+v %v", d.CertType, st, err)
		}
		leaf, err := x509.ParseCertificate(d.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		caCert, _ := x509.ParseCertificate(ca.CACerts[d.CertType])
		if err := leaf.CheckSignatureFrom(caCert); err != nil {
			t.Errorf("%s certificate does not verify under the ceremony's CA certificate: %v", d.CertType, err)
		}
	}
	entries, err := issue.List(ctx, term.DB(), issue.Filter{CaseID: caseID})
	if err != nil || len(entries) != 2 {
		t.Fatalf("journal: %v %v", entries, err)
	}
	for _, e := range entries {
		if e.State != workflow.IssDelivered {
			t.Errorf("journal %s %s", e.CertType, e.State)
		}
	}
	c, err := rc.Case(ctx, caseID)
	if err != nil || c.State != workflow.Completed {
		t.Errorf("case: %v %v", c.State, err)
	}

	// Read back through the JPKI read protocol on a new card session.
	if err := card.VerifyPIN(ctx, cardio.Signature, []byte(e2eSignPIN)); err != nil {
		t.Fatal(err)
	}
	certs, err := card.ReadCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byType := map[workflow.CertType][]byte{}
	for _, d := range res.Delivered {
		byType[d.CertType] = d.Certificate
	}
	if string(certs.Signature) != string(byType[workflow.SignatureCert]) || string(certs.UserAuth) != string(byType[workflow.UserAuthCert]) ||
		string(certs.SignatureCA) != string(ca.CACerts[workflow.SignatureCert]) || string(certs.UserAuthCA) != string(ca.CACerts[workflow.UserAuthCert]) {
		t.Error("card read back differs from what the CA issued")
	}
	if n, err := card.PINTriesLeft(ctx, cardio.UserAuth); err != nil || n != 3 {
		t.Errorf("user-auth PIN: %d tries, %v", n, err)
	}

	// OpenSC's jpki driver, the standard client, sees both certificates.
	release()
	out, err := exec.Command("pkcs15-tool", "--reader", pc.Readers[0], "--list-certificates").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs15-tool: %v\n%s", err, out)
	}
	for _, title := range []string{"User Authentication Certificate", "Digital Signature Certificate", "User Authentication Certificate CA", "Digital Signature Certificate CA"} {
		if !strings.Contains(string(out), "X.509 Certificate ["+title+"]") {
			t.Errorf("pkcs15-tool does not list %q:\n%s", title, out)
		}
	}
	pemOut, err := exec.Command("pkcs15-tool", "--reader", pc.Readers[0], "--read-certificate", "01").Output()
	if blk, _ := pem.Decode(pemOut); err != nil || blk == nil || string(blk.Bytes) != string(byType[workflow.UserAuthCert]) {
		t.Errorf("pkcs15-tool --read-certificate 01 differs from the delivered user-auth certificate (%v)", err)
	}

	recs, err := audit.List(ctx, term.DB(), audit.Filter{Operator: "rc1"})
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, r := range recs {
		if r.Action == "issuance.delivered" && r.Result == audit.ResultOK {
			delivered++
		}
		for _, v := range r.Detail {
			if strings.Contains(v, e2eSignPIN) {
				t.Errorf("PIN in audit record %s", r.Action)
			}
		}
	}
	if delivered != 2 {
		t.Errorf("%d issuance.delivered audit records, want 2", delivered)
	}
	if _, err := audit.Verify(ctx, term.DB()); err != nil {
		t.Error(err)
	}
}

// The crash child: runs one issuance from a separate process so the parent can kill -9 it.
const crashChildEnv = "MADOGUCHI_ISSUE_CRASH_CHILD"

// TestCrashChild is not a test on its own: TestKilledMidIssuanceRecovers re-executes the test
// binary with crashChildEnv set, and this runs the terminal's issuance in that process. The
// applicant's PIN screen never answers, so the child is still inside the issuance when killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		return
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx := context.Background()
	term, err := app.Open(ctx, app.Config{DBPath: string(read("db")), Fingerprint: auth.NewFake()})
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(read("key.pem"))
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ = pem.Decode(read("cert.pem"))
	tc, err := raclient.TLSCertificate(wire.EnrollResponse{Certificate: blk.Bytes}, key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(read("root.pem"))
	client, err := raclient.New(raclient.Config{BaseURL: string(read("base")), Certificate: tc, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	s, err := term.LoginPassword(ctx, "rc1", string(read("password")))
	if err != nil {
		t.Fatal(err)
	}
	pcard, _ := e2e.ConnectCard(t, string(read("reader")))
	o, err := term.NewIssuer(ctx, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	caseID, err := strconv.ParseInt(string(read("case")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.IssueWith(ctx, o, app.IssueRequest{CaseID: caseID, Card: cardio.New(pcard), CardExpiry: time.Now().AddDate(10, 0, 0),
		PINs: func(ctx context.Context, req issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
			select {} // the applicant never answers: the parent kills this process first
		}})
	t.Fatalf("the child was not killed: %v", err)
}

// TestKilledMidIssuanceRecovers kills -9 the terminal process in the middle of the card
// script (the journal says "prepared", the virtual card answers slowly), restarts, and shows
// that Recover revokes the issuance at the real CA with reason 0 and ends the journal
// "aborted", with the journal, the audit chain and the case intact; the case is then issued
// on a new card.
func TestKilledMidIssuanceRecovers(t *testing.T) {
	ca := e2e.StartCA(t)
	pc := testenv.PCSCD(t)
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "terminal.db")
	term, err := app.Open(ctx, app.Config{DBPath: dbPath, Fingerprint: auth.NewFake(), Argon2: cheapArgon})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	const password = "correct horse battery staple"
	if err := term.Bootstrap(ctx, app.BootstrapRequest{ID: "sup", Name: "管理 太郎", Password: "sup " + password, ExemptReason: "指紋装置の設置前"}); err != nil {
		t.Fatal(err)
	}
	sup, err := term.LoginPassword(ctx, "sup", "sup "+password)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{
		sup.CreateOperator(ctx, "rc1", "受付 花子"),
		sup.Grant(ctx, "rc1", operator.Reception),
		sup.Grant(ctx, "rc1", operator.CS),
		sup.GrantPasswordExemption(ctx, "rc1", "指紋の読み取りが困難", password),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	rc, err := term.LoginPassword(ctx, "rc1", password)
	if err != nil {
		t.Fatal(err)
	}
	caseID := openCase(t, rc, workflow.UserAuthCert)

	link := ca.PlugInStockCard(t, pc, 0)
	link.Faults.SetDelay(300 * time.Millisecond) // the script takes seconds: the kill lands inside it

	dir := t.TempDir()
	for name, v := range map[string][]byte{"db": []byte(dbPath), "key.pem": ca.KeyPEM, "cert.pem": ca.CertPEM, "root.pem": ca.RootPEM,
		"base": []byte(ca.Base), "password": []byte(password), "reader": []byte(pc.Readers[0]), "case": []byte(strconv.FormatInt(caseID, 10))} {
		if err := os.WriteFile(filepath.Join(dir, name), v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	child := exec.Command(os.Args[0], "-test.run", "^TestCrashChild$", "-test.v")
	child.Env = append(os.Environ(), crashChildEnv+"="+dir)
	childOut := &e2e.LockedBuffer{}
	child.Stdout, child.Stderr = childOut, childOut
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	// Kill -9 as soon as the journal says "prepared": the CA has issued, the script is on its
	// way to the card.
	var killedAt issue.Entry
	deadline := time.After(3 * time.Minute)
poll:
	for {
		select {
		case err := <-exited:
			t.Fatalf("child exited before the kill: %v\n%s", err, childOut.String())
		case <-deadline:
			child.Process.Kill()
			t.Fatalf("journal never reached prepared\n%s", childOut.String())
		case <-time.After(10 * time.Millisecond):
		}
		es, err := issue.List(ctx, term.DB(), issue.Filter{CaseID: caseID})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 1 && es[0].State == workflow.IssPrepared {
			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killedAt = es[0]
			break poll
		}
	}
	if err := <-exited; err == nil {
		t.Fatal("child exited cleanly despite kill -9")
	}
	link.Faults.SetDelay(0)
	t.Logf("killed with the journal at %s (issuance %s)", killedAt.State, killedAt.IssuanceID)

	// The CA still has it prepared: the terminal died before confirming or aborting.
	if st, err := ca.Client.Status(ctx, "rc1", killedAt.IssuanceID); err != nil || st.State != "prepared" {
		t.Fatalf("CA status before recovery: %+v %v", st, err)
	}

	// Restart: a new terminal process opens the same database and recovers at start.
	term2, err := app.Open(ctx, app.Config{DBPath: dbPath, Fingerprint: auth.NewFake(), Argon2: cheapArgon})
	if err != nil {
		t.Fatal(err)
	}
	defer term2.Close()
	o, err := term2.NewIssuer(ctx, ca.Client, ca.CACerts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := term2.RecoverIssuances(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Outcome != issue.OutcomeAborted || res[0].CAState != "revoked" || res[0].RevocationReason == nil ||
		*res[0].RevocationReason != 0 || !res[0].CardCleanup {
		t.Fatalf("resolution %+v", res)
	}
	t.Logf("operator told: %s", translations.MessageText("ja", res[0].Message()))
	st, err := ca.Client.Status(ctx, "rc1", killedAt.IssuanceID)
	if err != nil || st.State != "revoked" || st.RevocationReason == nil || *st.RevocationReason != 0 {
		t.Fatalf("CA status after recovery: %+v %v, want revoked reason 0", st, err)
	}
	e, err := issue.Lookup(ctx, term2.DB(), killedAt.RequestID)
	if err != nil || e.State != workflow.IssAborted || e.IssuanceID != killedAt.IssuanceID || e.CardCleanup != issue.CleanupRepersonalise {
		t.Fatalf("journal after recovery: %+v %v", e, err)
	}
	if _, err := audit.Verify(ctx, term2.DB()); err != nil {
		t.Fatalf("audit chain after the kill: %v", err)
	}
	recs, _ := audit.List(ctx, term2.DB(), audit.Filter{Operator: "-"})
	if last := recs[len(recs)-1]; last.Action != "issuance.aborted" || last.Detail["revocation_reason"] != "0" {
		t.Errorf("last audit record %+v", last)
	}

	// Nothing lost: the case is still approved and is issued on a second card.
	rc2, err := term2.LoginPassword(ctx, "rc1", password)
	if err != nil {
		t.Fatal(err)
	}
	ca.PlugInStockCard(t, pc, 1)
	pcard, _ := e2e.ConnectCard(t, pc.Readers[1])
	if _, err := rc2.IssueWith(ctx, o, app.IssueRequest{CaseID: caseID, Card: cardio.New(pcard), CardExpiry: time.Now().AddDate(10, 0, 0), PINs: applicantPINs}); err != nil {
		t.Fatalf("issue after recovery: %v (%s)", err, translations.ErrorText("ja", err))
	}
}
