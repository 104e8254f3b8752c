package issue_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/internal/e2e"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
	"madoguchi/cardio"
	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// The second resident of the ownership test: SMITH JOHN WILLIAM from the fixture register.
const otherRecordCode = "90000000044"

// TestIssueRefusesAnotherPersonsCard is issue 17 defect 1 on the real stack (SoftHSM-backed
// ca-server child process, pcscd + vpcd virtual card, fprintd): resident A (鈴木 一郎) gets
// both certificates on a stock card; A's signature certificate is put on hold with the CA's
// own `hold` command (a phone report of a lost card); then an issuance for resident B on the
// same card is refused before anything is written: the terminal read A's certificate and the
// PINs on the card, the CA refused the prepare with 409 card_other_person (audited at the CA),
// and the terminal tells the clerk in Japanese. The card still holds A's keys and
// certificates (cardio read-back, both keys sign, OpenSC reads A's user-auth certificate);
// the CA still has A's signature certificate held and no certificate of B. A re-issuance for
// A on A's own card (after revoking the user-auth certificate) is written.
//
// Seen failing on the old code: B's issuance reached the PIN step with B's keys and
// certificates written over A's.
func TestIssueRefusesAnotherPersonsCard(t *testing.T) {
	ca := e2e.StartCA(t)
	pc := testenv.PCSCD(t)
	ctx := context.Background()
	term, rc := fingerCounter(t, app.Config{CA: ca.Client, Municipality: "東京都架空区長"})

	caseA := openCase(t, rc, workflow.SignatureCert, workflow.UserAuthCert)
	ca.PlugInStockCard(t, pc, 0)
	pcard, release := e2e.ConnectCard(t, pc.Readers[0])
	card := cardio.New(pcard)
	o := term.Issuer()
	resA, err := rc.IssueWith(ctx, o, app.IssueRequest{CaseID: caseA, Card: card, CardExpiry: time.Now().AddDate(10, 0, 0), PINs: applicantPINs})
	if err != nil {
		t.Fatalf("Issue for A: %v (%s)", err, translations.ErrorText("ja", err))
	}
	certA := map[workflow.CertType]issue.Delivered{}
	for _, d := range resA.Delivered {
		certA[d.CertType] = d
	}
	e2e.CACmd(t, ca.Bin, "hold", "--data-dir", ca.Data, "--serial", certA[workflow.SignatureCert].Serial, "--note", "phone report 10:05, lost card")
	if st, err := ca.Client.Status(ctx, "rc1", certA[workflow.SignatureCert].IssuanceID); err != nil || st.State != "held" {
		t.Fatalf("A's signature certificate after hold: %+v %v", st, err)
	}

	// B's issuance on A's card.
	caseB := newCase(t, rc, otherRecordCode, workflow.SignatureCert, workflow.UserAuthCert)
	asked := 0
	pinsB := func(ctx context.Context, req issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		asked++
		return applicantPINs(ctx, req)
	}
	_, err = rc.IssueWith(ctx, o, app.IssueRequest{CaseID: caseB, Card: card, CardExpiry: time.Now().AddDate(10, 0, 0), PINs: pinsB})
	if err == nil {
		t.Fatal("an issuance for B was written onto A's card")
	}
	var ie *issue.Error
	if apperr.KindOf(err) != apperr.CardNotApplicants || !errors.Is(err, raclient.ErrCardOtherPerson) || !errors.As(err, &ie) ||
		ie.Step != issue.StepPrepare || ie.CardCleanup || !strings.Contains(translations.ErrorText("ja", err), "別の方の電子証明書") {
		t.Fatalf("B on A's card: kind %v: %v (%s)", apperr.KindOf(err), err, translations.ErrorText("ja", err))
	}
	if asked != 0 {
		t.Errorf("B was asked for %d PINs on A's card", asked)
	}
	t.Logf("refused: %s", translations.ErrorText("ja", err))

	// The card still holds A's keys and certificates.
	if err := card.VerifyPIN(ctx, cardio.Signature, []byte(e2eSignPIN)); err != nil {
		t.Fatalf("A's signature PIN: %v", err)
	}
	certs, err := card.ReadCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(certs.Signature) != string(certA[workflow.SignatureCert].Certificate) || string(certs.UserAuth) != string(certA[workflow.UserAuthCert].Certificate) {
		t.Fatal("the card no longer holds A's certificates")
	}
	digest := sha256.Sum256([]byte("issue 17"))
	di := append([]byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, digest[:]...)
	for typ, w := range map[workflow.CertType]cardio.Which{workflow.SignatureCert: cardio.Signature, workflow.UserAuthCert: cardio.UserAuth} {
		pin := e2eSignPIN
		if w == cardio.UserAuth {
			pin = e2eAuthPIN
		}
		if err := card.VerifyPIN(ctx, w, []byte(pin)); err != nil {
			t.Fatalf("A's %s PIN: %v", w, err)
		}
		sig, err := card.Sign(ctx, w, di)
		if err != nil {
			t.Fatalf("A's %s key: %v", w, err)
		}
		c, _ := x509.ParseCertificate(certA[typ].Certificate)
		if err := rsa.VerifyPKCS1v15(c.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("A's %s key was replaced: %v", w, err)
		}
	}
	// OpenSC, software nobody here wrote, reads A's user-auth certificate.
	release()
	pemOut, err := exec.Command("pkcs15-tool", "--reader", pc.Readers[0], "--read-certificate", "01").Output()
	if blk, _ := pem.Decode(pemOut); err != nil || blk == nil || string(blk.Bytes) != string(certA[workflow.UserAuthCert].Certificate) {
		t.Errorf("pkcs15-tool --read-certificate 01 is not A's user-auth certificate (%v)", err)
	}
	pcard, _ = e2e.ConnectCard(t, pc.Readers[0])
	card = cardio.New(pcard)

	// The CA: A's certificates as they were; the refusal audited; nothing issued to B.
	if st, err := ca.Client.Status(ctx, "rc1", certA[workflow.SignatureCert].IssuanceID); err != nil || st.State != "held" {
		t.Errorf("A's signature certificate after B's attempt: %+v %v", st, err)
	}
	if st, err := ca.Client.Status(ctx, "rc1", certA[workflow.UserAuthCert].IssuanceID); err != nil || st.State != "delivered" {
		t.Errorf("A's user-auth certificate after B's attempt: %+v %v", st, err)
	}
	caAudit := e2e.CACmd(t, ca.Bin, "audit", "show", "--data-dir", ca.Data, "--operator", "rc1")
	prepares := map[string]int{}
	for _, line := range strings.Split(caAudit, "\n") {
		f := strings.Split(line, "\t")
		if len(f) >= 6 && f[3] == "issuance.prepare" {
			prepares[f[5]]++
		}
		if strings.Contains(line, otherRecordCode) || strings.Contains(line, e2eRecordCode) {
			t.Errorf("resident code in the CA audit: %s", line)
		}
	}
	// B's prepare is refused, and refused again when the terminal's abort replays it to learn
	// whether the CA prepared anything (recover.go).
	if prepares["ok"] != 2 || prepares[string(wire.CodeCardOtherPerson)] < 1 || len(prepares) != 2 {
		t.Errorf("CA audit of prepares: %v, want A's two ok and B's %s", prepares, wire.CodeCardOtherPerson)
	}

	// A's own card: re-issuance of the user-auth certificate after its revocation is written.
	rv := counterCaseE2E(t, rc, workflow.Revocation, nil)
	if _, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: rv, Certificates: []app.CertRef{{Type: workflow.UserAuthCert, Serial: certA[workflow.UserAuthCert].Serial}},
		WrittenRequest: "失効申請書 No.17"}); err != nil {
		t.Fatalf("revoke A's user-auth certificate: %v", err)
	}
	again := newCase(t, rc, e2eRecordCode, workflow.UserAuthCert)
	res, err := rc.IssueWith(ctx, o, app.IssueRequest{CaseID: again, Card: card, CardExpiry: time.Now().AddDate(10, 0, 0), PINs: applicantPINs})
	if err != nil {
		t.Fatalf("re-issuance for A on A's own card: %v (%s)", err, translations.ErrorText("ja", err))
	}
	if got, err := card.ReadCertificate(ctx, cardio.FileUserAuthCert); err != nil || string(got) != string(res.Delivered[0].Certificate) {
		t.Errorf("re-issued user-auth certificate not on the card: %v", err)
	}
}
