package issue_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/internal/e2e"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/issuer"
	"madoguchi/cardio"
	"madoguchi/internal/testenv"
	"madoguchi/jpki"
	"madoguchi/raclient"
)

// e2eBirth is the birth date of the e2e applicant 鈴木 一郎 (e2eRecordCode) in the fixtures.
var e2eBirth = applicant.NewDate(1985, 3, 15)

// openIssuanceCase exports the CS file of code and opens a case of kind up to the explanations.
func openIssuanceCase(t testing.TB, rc *app.Session, code string, req app.CaseRequest) int64 {
	t.Helper()
	ctx := context.Background()
	file, err := rc.ExportResidentFile(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	req.ResidentFile = file
	c, err := rc.OpenCase(ctx, req)
	if err != nil {
		t.Fatalf("open %s case: %v", req.Kind, err)
	}
	if _, err := rc.RecordIdentity(ctx, c.ID, workflow.Evidence{Document: workflow.DriversLicence, DocumentRef: "5678"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.RecordExplanation(ctx, c.ID, workflow.RequiredItems(req.CertTypes)); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// dateOn is the calendar date the terminal sends as the card's expiry (it formats t as is).
func dateOn(t *testing.T, at time.Time) applicant.Date {
	t.Helper()
	d, err := applicant.ParseDate(at.Format("2006-01-02"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func delivered(t *testing.T, res *issue.Result, typ workflow.CertType) (issue.Delivered, *x509.Certificate) {
	t.Helper()
	for _, d := range res.Delivered {
		if d.CertType == typ {
			c, err := x509.ParseCertificate(d.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			return d, c
		}
	}
	t.Fatalf("no %s certificate delivered: %+v", typ, res.Delivered)
	return issue.Delivered{}, nil
}

// TestRenewalValidityDecidedByCA: issue 17 defect 3, through the real path (the terminal's
// orchestrator, a SoftHSM-backed `ca-server serve` child over mTLS, virtual cards in
// pcscd+vpcd readers). The CA decides the validity rule of a renewal from its own record of
// the person's current certificate (CPS §6.3.2.2 ①), not from what the terminal claims:
//
//  1. the person's current signature certificate is limited by its card's expiry to 60 days
//     from now (CPS §6.3.2.2 ②: the CA's own clock, no waiting), so it has less than three
//     months left; renewing it onto a new card gives the 6th birthday after issuance;
//  2. a renewal whose terminal believes the current certificate ends within three months while
//     the CA's record says it runs for years is refused by the CA (renewal_too_early, CPS
//     §4.7.1.1) before anything is written;
//  3. a request that claims "renewal" for a type the person has no certificate of gets the
//     ordinary rule, the 5th birthday.
//
// On the code before the fix, step 1 got the 5th birthday (the request could not say it and
// hsmissuance never set EarlyRenewal) and step 2 was issued: both fail there.
func TestRenewalValidityDecidedByCA(t *testing.T) {
	ca := e2e.StartCA(t)
	pc := testenv.PCSCD(t)
	ctx := context.Background()
	term, rc := fingerCounter(t, app.Config{})
	if _, err := rc.ImportResidentFixtures(ctx); err != nil {
		t.Fatal(err)
	}
	o, err := term.NewIssuer(ctx, ca.Client, ca.CACerts)
	if err != nil {
		t.Fatal(err)
	}
	ca.PlugInStockCard(t, pc, 0)
	ca.PlugInStockCard(t, pc, 1)
	pcard0, _ := e2e.ConnectCard(t, pc.Readers[0])
	pcard1, _ := e2e.ConnectCard(t, pc.Readers[1])
	card0, card1 := cardio.New(pcard0), cardio.New(pcard1)
	sign := []workflow.CertType{workflow.SignatureCert}

	// The current certificate: on a card that expires in 60 days.
	oldCardExpiry := time.Now().AddDate(0, 0, 60)
	caseID := openIssuanceCase(t, rc, e2eRecordCode, app.CaseRequest{Kind: workflow.NewIssuance, CertTypes: sign})
	res, err := rc.IssueWith(ctx, o, app.IssueRequest{CaseID: caseID, Card: card0, CardExpiry: oldCardExpiry, PINs: applicantPINs})
	if err != nil {
		t.Fatalf("first issuance: %v (%s)", err, translations.ErrorText("ja", err))
	}
	_, current := delivered(t, res, workflow.SignatureCert)
	if want := dateOn(t, oldCardExpiry).EndJST(); !current.NotAfter.Equal(want) {
		t.Fatalf("current certificate ends %v, want the card's expiry %v", current.NotAfter, want)
	}

	// 1. Renewal with less than three months left, onto a new card: the 6th birthday.
	newCardExpiry := time.Now().AddDate(10, 0, 0)
	caseID = openIssuanceCase(t, rc, e2eRecordCode, app.CaseRequest{Kind: workflow.Renewal, CertTypes: sign, NewCard: true,
		CurrentExpiry: current.NotAfter})
	res, err = rc.IssueWith(ctx, o, app.IssueRequest{CaseID: caseID, Card: card1, CardExpiry: newCardExpiry, PINs: applicantPINs})
	if err != nil {
		t.Fatalf("renewal: %v (%s)", err, translations.ErrorText("ja", err))
	}
	renewedD, renewed := delivered(t, res, workflow.SignatureCert)
	sixth, err := issuer.NotAfter(renewed.NotBefore, &applicant.Applicant{BirthDate: e2eBirth, CardExpiry: dateOn(t, newCardExpiry),
		EarlyRenewal: true, CurrentExpiry: applicant.DateOf(current.NotAfter)})
	if err != nil {
		t.Fatal(err)
	}
	fifth, _ := issuer.NotAfter(renewed.NotBefore, &applicant.Applicant{BirthDate: e2eBirth, CardExpiry: dateOn(t, newCardExpiry)})
	if !renewed.NotAfter.Equal(sixth) {
		t.Errorf("renewal with < 3 months left ends %v, want the 6th birthday %v (the 5th is %v)", renewed.NotAfter, sixth, fifth)
	}
	if sixth.Year()-fifth.Year() != 1 {
		t.Fatalf("test data: 6th birthday %v is not a year after the 5th %v", sixth, fifth)
	}

	// 2. The terminal believes the current certificate ends in a month (the clerk typed a wrong
	// date, or a terminal that does not check); the CA's record says it runs to the 6th birthday.
	caseID = openIssuanceCase(t, rc, e2eRecordCode, app.CaseRequest{Kind: workflow.Renewal, CertTypes: sign,
		CurrentExpiry: time.Now().AddDate(0, 1, 0)})
	_, err = rc.IssueWith(ctx, o, app.IssueRequest{CaseID: caseID, Card: card1, CardExpiry: newCardExpiry, PINs: applicantPINs})
	if !errors.Is(err, raclient.ErrRenewalTooEarly) || apperr.KindOf(err) != apperr.RenewalTooEarly {
		t.Fatalf("renewal with years left: %v, want the CA's renewal_too_early", err)
	}
	if msg := translations.ErrorText("ja", err); msg == "" {
		t.Error("no Japanese message for the CA's refusal")
	} else {
		t.Logf("refusal shown to the operator: %s", msg)
	}
	if st, err := ca.Client.Status(ctx, "rc1", renewedD.IssuanceID); err != nil || st.State != "delivered" {
		t.Errorf("the current certificate after the refused renewal: %+v %v", st, err)
	}
	if err := card1.VerifyPIN(ctx, cardio.Signature, []byte(e2eSignPIN)); err != nil {
		t.Fatal(err)
	}
	if certs, err := card1.ReadCertificates(ctx); err != nil || !bytes.Equal(certs.Signature, renewed.Raw) {
		t.Errorf("the card's signature certificate changed after the refused renewal (%v)", err)
	}

	// 3. "Renewal" of a user-authentication certificate the person never had: the 5th birthday.
	auth := []workflow.CertType{workflow.UserAuthCert}
	caseID = openIssuanceCase(t, rc, e2eRecordCode, app.CaseRequest{Kind: workflow.Renewal, CertTypes: auth,
		CurrentExpiry: time.Now().AddDate(0, 1, 0)})
	res, err = rc.IssueWith(ctx, o, app.IssueRequest{CaseID: caseID, Card: card1, CardExpiry: newCardExpiry, PINs: applicantPINs})
	if err != nil {
		t.Fatalf("renewal without a current certificate: %v (%s)", err, translations.ErrorText("ja", err))
	}
	_, authCert := delivered(t, res, workflow.UserAuthCert)
	want, _ := issuer.NotAfter(authCert.NotBefore, &applicant.Applicant{BirthDate: e2eBirth, CardExpiry: dateOn(t, newCardExpiry)})
	if !authCert.NotAfter.Equal(want) {
		t.Errorf("renewal claim without a current certificate ends %v, want the 5th birthday %v", authCert.NotAfter, want)
	}
}

// TestAbroadIssuanceFuhyoAddress: a 国外転出者 (渡邉 美咲, 90000000055 in the fixtures, living
// abroad) is issued both certificates through the real path (orchestrator, SoftHSM-backed
// `ca-server serve` child over mTLS, a virtual card in a pcscd+vpcd reader). TS Art. 3(1): for
// a signature user abroad the CS file holds the 戸籍の附票 items (住民基本台帳法 Art. 17: name,
// address, birth date, sex) instead of the resident record's, so the signature certificate
// carries the 附票 address; the 本籍 on the 附票 is not a certificate item, and the
// user-authentication certificate carries no personal data at all (CPS §3.1, §7.1). Validity
// is the ordinary rule (CPS §6.3.2.2). The values are looked for in the DER as UTF-8 text,
// whatever extension layout the profile uses.
func TestAbroadIssuanceFuhyoAddress(t *testing.T) {
	const (
		abroadCode = "90000000055"
		fuhyo      = "東京都架空区試験町一丁目1番1号" // 戸籍の附票: the address kept by the 附票管理市町村長
		honseki    = "大阪府架空市本町二丁目3番地"   // 本籍: on the 附票, never in a certificate
	)
	ca := e2e.StartCA(t)
	pc := testenv.PCSCD(t)
	ctx := context.Background()
	term, rc := fingerCounter(t, app.Config{})
	if _, err := rc.ImportResidentFixtures(ctx); err != nil {
		t.Fatal(err)
	}
	o, err := term.NewIssuer(ctx, ca.Client, ca.CACerts)
	if err != nil {
		t.Fatal(err)
	}
	ca.PlugInStockCard(t, pc, 0)
	pcard, _ := e2e.ConnectCard(t, pc.Readers[0])
	card := cardio.New(pcard)

	both := []workflow.CertType{workflow.SignatureCert, workflow.UserAuthCert}
	caseID := openIssuanceCase(t, rc, abroadCode, app.CaseRequest{Kind: workflow.NewIssuance, CertTypes: both})
	cardExpiry := time.Now().AddDate(10, 0, 0)
	res, err := rc.IssueWith(ctx, o, app.IssueRequest{CaseID: caseID, Card: card, CardExpiry: cardExpiry,
		PINs: func(ctx context.Context, req issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
			pin := "7391"
			if req.Kind == pinrule.Signature {
				pin = "MISAKI84"
			}
			return pinrule.New(pin), pinrule.New(pin), nil
		}})
	if err != nil {
		t.Fatalf("issuance for a person abroad: %v (%s)", err, translations.ErrorText("ja", err))
	}
	signD, sign := delivered(t, res, workflow.SignatureCert)
	authD, auth := delivered(t, res, workflow.UserAuthCert)
	for _, d := range []issue.Delivered{signD, authD} {
		if st, err := ca.Client.Status(ctx, "rc1", d.IssuanceID); err != nil || st.State != "delivered" || st.Serial != d.Serial {
			t.Errorf("%s at the CA: %+v %v", d.CertType, st, err)
		}
	}
	for _, want := range []string{fuhyo, "渡邉", "美咲", "19950505"} {
		if !bytes.Contains(sign.Raw, []byte(want)) {
			t.Errorf("signature certificate lacks the 附票 item %q", want)
		}
	}
	// The items in their places, read as real JPKI readers read them (subjectAltName otherNames).
	layout, err := issue.SignatureLayout()
	if err != nil {
		t.Fatal(err)
	}
	if info, err := jpki.ReadBasicInfo(sign, layout); err != nil || info.Address != fuhyo || info.Name != "渡邉\u3000美咲" || info.BirthDate != "419950505" {
		t.Errorf("signature certificate's basic information: %+v, %v; want the 附票 address %q, 渡邉\u3000美咲, 419950505 (平成)", info, err, fuhyo)
	}
	if bytes.Contains(sign.Raw, []byte(honseki)) {
		t.Error("signature certificate carries the 本籍")
	}
	for _, no := range []string{fuhyo, "渡邉", "美咲", honseki} {
		if bytes.Contains(auth.Raw, []byte(no)) {
			t.Errorf("user-authentication certificate carries personal data %q", no)
		}
	}
	for _, c := range []*x509.Certificate{sign, auth} {
		want, err := issuer.NotAfter(c.NotBefore, &applicant.Applicant{BirthDate: applicant.NewDate(1995, 5, 5), CardExpiry: dateOn(t, cardExpiry)})
		if err != nil || !c.NotAfter.Equal(want) {
			t.Errorf("certificate ends %v, want the 5th birthday %v (%v)", c.NotAfter, want, err)
		}
	}
}
