package app_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/app/printout"
	"madoguchi/app/workflow"
	"madoguchi/assets/fonts/printfonts"
	"madoguchi/assets/translations"
	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/issuer"
	"madoguchi/ca-server/profile"
	"madoguchi/cardio"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// counterCase opens a reception case of kind for record code, records the identity check and
// approves it.
func counterCase(t *testing.T, rc *app.Session, kind workflow.Kind, code string, e workflow.Evidence) int64 {
	t.Helper()
	ctx := context.Background()
	c, err := rc.OpenCase(ctx, app.CaseRequest{Kind: kind, RecordCode: code})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.RecordIdentity(ctx, c.ID, e); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Approve(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

var licence = workflow.Evidence{Document: workflow.DriversLicence, DocumentRef: "1234"}

// TestRevokeAtCounter: revocation at the holder's request and a loss report, each on an
// approved case after the identity check (CPS §4.9.3.1): the CA is asked with the written
// request and the identity document, the acknowledgement data come back ready to print
// (printout.RevocationNotice renders it), the case is completed, every step is audited. A
// repeat after a lost answer uses the same request id; refusals change nothing.
func TestRevokeAtCounter(t *testing.T) {
	var ca *fakeCA
	f, _, rc := counterWith(t, func(c *app.Config) { ca = newFakeCA(time.Now); c.CA = ca; c.Municipality = "東京都架空区長" })
	ctx := context.Background()

	// Not approved yet: refused before the CA is asked.
	open, err := rc.OpenCase(ctx, app.CaseRequest{Kind: workflow.Revocation, RecordCode: "90000000011"})
	if err != nil {
		t.Fatal(err)
	}
	certs := []app.CertRef{{Type: workflow.SignatureCert, Serial: "1A2B"}, {Type: workflow.UserAuthCert, Serial: "1A2C"}}
	if _, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: open.ID, Certificates: certs, WrittenRequest: "失効申請書 No.17"}); !errors.Is(err, apperr.InvalidTransition) {
		t.Fatalf("revoke before the identity check: %v", err)
	}
	// A doubt about identity stops the case: no revocation (CPS §4.1.2.1(3)).
	if _, err := rc.RecordIdentity(ctx, open.ID, workflow.Evidence{Document: workflow.Passport, Doubt: "写真と本人が一致しない"}); !errors.Is(err, apperr.IdentityDoubt) {
		t.Fatal(err)
	}
	if _, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: open.ID, Certificates: certs, WrittenRequest: "失効申請書 No.17"}); !errors.Is(err, apperr.InvalidTransition) {
		t.Fatalf("revoke on a stopped case: %v", err)
	}

	id := counterCase(t, rc, workflow.Revocation, "90000000011", licence)
	for _, bad := range []app.RevokeRequest{
		{CaseID: id, Certificates: certs},                                              // no written request
		{CaseID: id, Certificates: certs, WrittenRequest: "x", Kind: "key-compromise"}, // a loss report's kind
		{CaseID: id, WrittenRequest: "x"},                                              // no certificate
		{CaseID: id, Certificates: []app.CertRef{{Type: workflow.SignatureCert, Serial: "xyz"}}, WrittenRequest: "x"},
	} {
		if _, err := rc.Revoke(ctx, bad); !errors.Is(err, apperr.InvalidInput) {
			t.Errorf("bad request %+v: %v", bad, err)
		}
	}
	if len(ca.revokes) != 0 {
		t.Fatalf("refused requests reached the CA: %+v", ca.revokes)
	}

	// The CA cannot be reached: the case stays approved; the repeat uses the same request id.
	ca.failRevoke = []error{errUnreachable}
	if _, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: id, Certificates: certs, WrittenRequest: "失効申請書 No.17"}); !errors.Is(err, apperr.CAUnavailable) ||
		!strings.Contains(translations.ErrorText("ja", err), "認証局と通信できません") {
		t.Fatalf("unreachable CA: %v (%s)", err, translations.ErrorText("ja", err))
	}
	res, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: id, Certificates: certs, WrittenRequest: "失効申請書 No.17"})
	if err != nil {
		t.Fatal(err)
	}
	if ca.revokes[0].RequestID != ca.revokes[1].RequestID || ca.revokes[1].Kind != "stop-using" || ca.revokes[1].IdentityDocument != string(workflow.DriversLicence) ||
		ca.revokes[1].WrittenRequest != "失効申請書 No.17" || ca.revokes[1].CertType != "sign" || ca.revokes[2].CertType != "auth" ||
		ca.revokes[1].ResidentCode != "90000000011" || ca.revokes[2].ResidentCode != "90000000011" {
		t.Fatalf("CA requests (the case's resident-record code proves the person to the CA): %+v", ca.revokes)
	}
	if len(res.Acks) != 2 || res.Acks[0].Reason != 5 || res.Case.State != workflow.Completed {
		t.Fatalf("result: %+v", res)
	}
	n := res.Notice
	if n.Municipality != "東京都架空区長" || n.HolderName != "髙橋 一郎" || n.OperatorID != "rc1" || len(n.Revoked) != 2 ||
		n.Revoked[0].Kind != printout.Signature || n.Revoked[0].Serial.Cmp(big.NewInt(0x1A2B)) != 0 || n.Revoked[0].Reason != printout.CessationOfOperation {
		t.Fatalf("notice: %+v", n)
	}
	// The acknowledgement is printable as returned.
	n.Revoked[0].RevokedAt, n.Revoked[1].RevokedAt = n.ReceivedAt.Add(time.Minute), n.ReceivedAt.Add(time.Minute)
	if pdf, err := testPrinter(t).RevocationNotice(n); err != nil || len(pdf) == 0 {
		t.Fatalf("printing the acknowledgement: %v", err)
	}

	// Loss report (counter only, in writing): key-compromise by default, reason 1.
	loss := counterCase(t, rc, workflow.LossReport, "90000000022", licence)
	res, err = rc.Revoke(ctx, app.RevokeRequest{CaseID: loss, Certificates: []app.CertRef{{Type: workflow.UserAuthCert, Serial: "BEEF"}}, WrittenRequest: "紛失届 No.3"})
	if err != nil || res.Acks[0].Reason != 1 || ca.revokes[len(ca.revokes)-1].Kind != "key-compromise" {
		t.Fatalf("loss report: %+v %v", res, err)
	}
	// Revocation is never undone nor repeated: the CA's answer reaches the operator.
	again := counterCase(t, rc, workflow.Revocation, "90000000022", licence)
	_, err = rc.Revoke(ctx, app.RevokeRequest{CaseID: again, Certificates: []app.CertRef{{Type: workflow.UserAuthCert, Serial: "BEEF"}}, WrittenRequest: "x"})
	if !errors.Is(err, raclient.ErrAlreadyRevoked) || !errors.Is(err, apperr.InvalidTransition) || !strings.Contains(translations.ErrorText("ja", err), "既に失効") {
		t.Fatalf("already revoked: %v (%s)", err, translations.ErrorText("ja", err))
	}
	if c, _ := rc.Case(ctx, again); c.State != workflow.Approved {
		t.Errorf("case after a refusal: %s", c.State)
	}
	// The CA acts only for this municipality's residents and only for the holder (issue 13).
	for _, refusal := range []struct {
		err  error
		kind apperr.Kind
		ja   string
	}{
		{revProblem(raclient.ErrOtherMunicipality, 403, wire.CodeOtherMunicipality), apperr.PermissionDenied, "他の市区町村"},
		{revProblem(raclient.ErrPersonMismatch, 403, wire.CodePersonMismatch), apperr.InvalidInput, "申請者のものではありません"},
	} {
		ca.failRevoke = []error{refusal.err}
		_, err = rc.Revoke(ctx, app.RevokeRequest{CaseID: again, Certificates: []app.CertRef{{Type: workflow.SignatureCert, Serial: "D00D"}}, WrittenRequest: "x"})
		if !errors.Is(err, refusal.kind) || !strings.Contains(translations.ErrorText("ja", err), refusal.ja) {
			t.Errorf("CA refusal %v: %v (%s)", refusal.err, err, translations.ErrorText("ja", err))
		}
	}

	// Audited: requests, answers and refusals, by the reception operator.
	recs, _ := audit.List(ctx, f.t.DB(), audit.Filter{Operator: "rc1"})
	var ok, refused int
	for _, r := range recs {
		if r.Action == "certificate.revoke" {
			for k, v := range r.Detail {
				if strings.Contains(v, "90000000011") || strings.Contains(v, "90000000022") {
					t.Errorf("revocation record %d: detail %s carries the resident-record code", r.Seq, k)
				}
			}
			if r.Result == audit.ResultOK {
				ok++
				if r.Detail["serial"] == "" || r.Detail["reason"] == "" {
					t.Errorf("record %+v", r)
				}
			} else {
				refused++
			}
		}
	}
	if ok != 3 || refused < 8 {
		t.Errorf("audit: %d revocations, %d refusals", ok, refused)
	}
}

// TestReleaseHoldAtCounter: a hold is released only on an approved HoldRelease case, with the
// identity document sent to the CA (CPS §4.9.13–16); a certificate not on hold is refused.
func TestReleaseHoldAtCounter(t *testing.T) {
	var ca *fakeCA
	_, _, rc := counterWith(t, func(c *app.Config) { ca = newFakeCA(time.Now); c.CA = ca })
	ctx := context.Background()
	ca.state["C0FFEE"] = "held"
	wrong := counterCase(t, rc, workflow.Revocation, "90000000011", licence)
	if _, err := rc.ReleaseHold(ctx, wrong, app.CertRef{Type: workflow.SignatureCert, Serial: "C0FFEE"}); !errors.Is(err, apperr.InvalidTransition) {
		t.Fatalf("release on a revocation case: %v", err)
	}
	id := counterCase(t, rc, workflow.HoldRelease, "90000000011", workflow.Evidence{Document: workflow.MyNumberCard})
	st, err := rc.ReleaseHold(ctx, id, app.CertRef{Type: workflow.SignatureCert, Serial: "C0FFEE"})
	if err != nil || st.State != "delivered" || ca.releases[0].IdentityDocument != string(workflow.MyNumberCard) || ca.releases[0].CertType != "sign" ||
		ca.releases[0].ResidentCode != "90000000011" {
		t.Fatalf("release: %+v %v %+v", st, err, ca.releases)
	}
	if c, _ := rc.Case(ctx, id); c.State != workflow.Completed {
		t.Errorf("case %s", c.State)
	}
	id2 := counterCase(t, rc, workflow.HoldRelease, "90000000011", licence)
	if _, err := rc.ReleaseHold(ctx, id2, app.CertRef{Type: workflow.SignatureCert, Serial: "C0FFEE"}); !errors.Is(err, raclient.ErrNotOnHold) ||
		!strings.Contains(translations.ErrorText("ja", err), "保留") {
		t.Fatalf("release of a certificate not on hold: %v", err)
	}
}

// TestCardMaintenanceGates: the PIN reset and key destruction run the permission gate and the
// case checks before anything reaches the card or the CA, and every refusal is audited under
// the terminal's action names (the whole path against the real CA and card is in
// app/issue's TestCardMaintenanceEndToEnd).
func TestCardMaintenanceGates(t *testing.T) {
	f, _, rc := counterWith(t, func(c *app.Config) { c.CA = newFakeCA(time.Now) })
	ctx := context.Background()
	pin := counterCase(t, rc, workflow.PINReset, "90000000011", licence)
	if err := rc.ResetPIN(ctx, pin, pinrule.Signature, nil); !errors.Is(err, apperr.InvalidInput) {
		t.Fatalf("pin reset without a PIN entry: %v", err)
	}
	entry := func(context.Context, issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		t.Fatal("the applicant was asked for a PIN before the CA reset it")
		return pinrule.PIN{}, pinrule.PIN{}, nil
	}
	if err := rc.ResetPIN(ctx, pin, pinrule.Signature, entry); !errors.Is(err, apperr.CAUnavailable) || !strings.Contains(translations.ErrorText("ja", err), "認証局と通信できません") {
		t.Fatalf("pin reset without a CA: %v", err)
	}
	if last := f.lastAudit(t); last.Action != "card.pin_reset" || last.Result != audit.ResultRefused || last.Detail["error_kind"] != "ca unavailable" || last.Detail["pin"] != "signature" {
		t.Errorf("audit %+v", last)
	}
	if err := rc.DestroyKeys(ctx, pin); !errors.Is(err, apperr.InvalidTransition) {
		t.Fatalf("key destruction on a PIN-reset case: %v", err)
	}
	if last := f.lastAudit(t); last.Action != "card.key_destruction" || last.Result != audit.ResultRefused {
		t.Errorf("audit %+v", last)
	}
	kd := counterCase(t, rc, workflow.KeyDestruction, "90000000011", licence)
	if err := rc.ResetPIN(ctx, kd, pinrule.UserAuth, entry); !errors.Is(err, apperr.InvalidTransition) {
		t.Fatalf("pin reset on a key-destruction case: %v", err)
	}
	for k, want := range map[apperr.Kind]string{apperr.CardUnknown: "発行していない", apperr.CardOtherMunicipality: "他の市区町村",
		apperr.CertificateNotRevoked: "先に電子証明書を失効", apperr.CardRefused: "カード", apperr.PINNotSet: "暗証番号が設定されていません"} {
		if got := translations.ErrorText("ja", apperr.New(k, "x")); !strings.Contains(got, want) {
			t.Errorf("message of %v: %q", k, got)
		}
	}
}

// fakeCardCerts is a card read-back (cardio.Certificates) for the copy tests.
type fakeCardCerts struct{ certs cardio.Certificates }

func (f fakeCardCerts) ReadCertificates(context.Context) (*cardio.Certificates, error) {
	c := f.certs
	return &c, nil
}

// issuedCerts issues a signature and a user-authentication certificate with ca-server/issuer
// and the embedded profiles for 𠮷野 次郎 (a name outside the BMP, with a substitute).
func issuedCerts(t *testing.T) cardio.Certificates {
	t.Helper()
	caKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	userKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, OrganizationalUnit: []string{"Madoguchi Test CA"}},
		NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(10, 0, 0), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(der)
	iss, err := issuer.New(issuer.Config{Certificate: caCert, Signer: caKey, KeyUsableUntil: caCert.NotBefore.AddDate(4, 0, 0), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := profile.Default()
	out := cardio.Certificates{SignatureCA: der, UserAuthCA: der}
	for name, dst := range map[string]*[]byte{"signature": &out.Signature, "user-authentication": &out.UserAuth} {
		p, err := set.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := iss.Issue(context.Background(), issuer.Request{Profile: p, PublicKey: &userKey.PublicKey, Applicant: &applicant.Applicant{
			Name: applicant.Text{Value: "𠮷野 次郎", Substitutes: []int{0}}, BirthDate: applicant.NewDate(1978, 11, 30), Sex: applicant.SexMale,
			Address: applicant.Text{Value: "東京都架空区試験町三丁目6番7号"}, ResidentCode: "90000000033", CardExpiry: applicant.NewDate(2035, 4, 1)}})
		if err != nil {
			t.Fatal(err)
		}
		*dst = got.DER
	}
	return out
}

// TestCertificateCopyFromCard: the copy is made from the card's read-back (CPS §4.4.1.1): the
// signature certificate only after the holder's PIN opened it, verified under the card's CA
// certificate, refused when that is not this service's CA; the copy prints, 𠮷 and the
// substitute position included (R02 II-2-5(4)).
func TestCertificateCopyFromCard(t *testing.T) {
	certs := issuedCerts(t)
	f, cs, rc := counterWith(t, func(c *app.Config) {
		c.Municipality = "東京都架空区長"
		c.CACertificates = map[workflow.CertType][]byte{workflow.SignatureCert: certs.SignatureCA}
	})
	ctx := context.Background()
	if _, err := cs.CertificateCopy(ctx, fakeCardCerts{certs}, workflow.SignatureCert); !errors.Is(err, apperr.PermissionDenied) {
		t.Fatalf("CS operator: %v", err)
	}
	locked := certs
	locked.Signature = nil // the signature PIN was not entered in this card session
	if _, err := rc.CertificateCopy(ctx, fakeCardCerts{locked}, workflow.SignatureCert); !errors.Is(err, apperr.InvalidInput) {
		t.Fatalf("signature certificate without the PIN: %v", err)
	}
	c, err := rc.CertificateCopy(ctx, fakeCardCerts{certs}, workflow.SignatureCert)
	if err != nil {
		t.Fatal(err)
	}
	if c.Personal == nil || c.Personal.Name.Value != "𠮷野\u3000次郎" || len(c.Personal.Name.Substitutes) != 1 || c.OperatorID != "rc1" || c.Municipality != "東京都架空区長" {
		t.Fatalf("copy %+v", c)
	}
	if pdf, err := testPrinter(t).CertificateCopy(c); err != nil || len(pdf) == 0 {
		t.Fatalf("print: %v", err)
	}
	if last := f.lastAudit(t); last.Action != "certificate.copy" || last.Result != audit.ResultOK || last.Detail["serial"] == "" {
		t.Errorf("audit %+v", last)
	}
	u, err := rc.CertificateCopy(ctx, fakeCardCerts{certs}, workflow.UserAuthCert)
	if err != nil || u.Personal != nil {
		t.Fatalf("user-auth copy carries personal data or failed: %+v %v", u.Personal, err)
	}
	foreign := issuedCerts(t) // another CA
	if _, err := rc.CertificateCopy(ctx, fakeCardCerts{foreign}, workflow.SignatureCert); !errors.Is(err, apperr.InvalidInput) {
		t.Fatalf("certificate of another CA: %v", err)
	}
}

var (
	printerOnce sync.Once
	printer     *printout.Printer
	printerErr  error
)

// testPrinter loads the TrueType conversions of the bundled fonts kept by app/printout.
func testPrinter(t *testing.T) *printout.Printer {
	t.Helper()
	printerOnce.Do(func() {
		f := printout.Fonts{Regular: printfonts.Regular(), Bold: printfonts.Bold()}
		printer, printerErr = printout.New(f)
	})
	if printerErr != nil {
		t.Fatal(printerErr)
	}
	return printer
}

// TestOpenRecoversBeforeLogin: Open with a CA resolves an issuance a previous run left
// unfinished before any log-in is possible, records it as operator "-", and keeps the
// outcome for the start screen.
func TestOpenRecoversBeforeLogin(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "terminal.db")
	ctx := context.Background()
	fp := auth.NewFake()
	term, err := app.Open(ctx, app.Config{DBPath: db, Fingerprint: fp, Argon2: cheap})
	if err != nil {
		t.Fatal(err)
	}
	if err := term.Bootstrap(ctx, app.BootstrapRequest{ID: "sup", Name: "管理", Password: supPassword, ExemptReason: "r"}); err != nil {
		t.Fatal(err)
	}
	// A journal row "started" of a case, as left by a terminal killed right after it.
	err = term.DB().Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cases(id, kind, record_code, state, opened_by, opened_at, updated_at, data) VALUES (7,'new_issuance','90000000011','approved','rc1','2026-04-01T00:00:00Z','2026-04-01T00:00:00Z','{}')`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO issuance_journal(request_id, case_id, cert_type, operator, state, started_at, updated_at) VALUES ('req-1',7,'user_auth','rc1','started','2026-04-01T00:00:00Z','2026-04-01T00:00:00Z')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	term.Close()

	term, err = app.Open(ctx, app.Config{DBPath: db, Fingerprint: fp, Argon2: cheap, CA: newFakeCA(time.Now)})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	rec := term.Recovered()
	if len(rec) != 1 || rec[0].Outcome != issue.OutcomeAborted || rec[0].Entry.RequestID != "req-1" || translations.MessageText("ja", rec[0].Message()) == "" || term.Issuer() == nil || term.RecoveryDeferred() {
		t.Fatalf("recovered %+v", rec)
	}
	recs, _ := audit.List(ctx, term.DB(), audit.Filter{})
	last := recs[len(recs)-1]
	if last.Operator != "-" || last.Action != "issuance.aborted" {
		t.Errorf("last audit record %+v", last)
	}
	for _, r := range recs {
		if strings.HasPrefix(r.Action, "login") {
			t.Errorf("a log-in happened before recovery: %+v", r)
		}
	}
}
