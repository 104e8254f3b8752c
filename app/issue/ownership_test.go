package issue

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"testing"

	"madoguchi/app/apperr"
	"madoguchi/app/pinrule"
	"madoguchi/app/workflow"
	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
)

// TestCardReadBeforeWriteAndOwnerChecked: the terminal reads the card before writing and
// tells the CA what it saw (a blank card: nothing); a card it read non-blank is written only
// when the CA answers that it is the applicant's. Here the CA (an older one, or one whose
// records are wrong) answers nothing about the owner of a card that holds certificates and
// PINs: the terminal refuses on its own, relays no script, aborts the prepared issuance, and
// the card keeps what it held. Seen failing on the old code (the second issuance was written
// over the first one's keys).
func TestCardReadBeforeWriteAndOwnerChecked(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first, err := f.o.Issue(ctx, f.request())
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range f.ca.prepared {
		if !req.CardContents.Blank() {
			t.Fatalf("blank stock reported as %+v", req.CardContents)
		}
	}
	var authSerial string
	for _, d := range first.Delivered {
		if d.CertType == workflow.UserAuthCert {
			c, _ := x509.ParseCertificate(d.Certificate)
			authSerial = c.SerialNumber.Text(16)
		}
	}
	f.ca.prepared = nil
	f.caseID = f.newCase(workflow.SignatureCert, workflow.UserAuthCert)
	_, err = f.o.Issue(ctx, f.request())
	var ie *Error
	if !errors.Is(err, ErrCardNotApplicants) || !errors.As(err, &ie) || ie.Kind != apperr.CardNotApplicants || ie.Step != StepPrepare || ie.CardCleanup || !ie.Aborted {
		t.Fatalf("second issuance on a written card with no owner answer: %v (%+v)", err, ie)
	}
	if len(f.ca.prepared) == 0 {
		t.Fatal("no prepare was asked")
	}
	got := f.ca.prepared[0].CardContents
	if got == nil || !slices.Equal(got.Certificates, []string{authSerial}) || !slices.Equal(got.PINsSet, []string{"auth", "sign"}) {
		t.Fatalf("card contents sent to the CA: %+v, want the user-auth serial %s and both PINs", got, authSerial)
	}
	reader := cardio.New(vcard.Insert(f.vcard))
	if err := reader.VerifyPIN(ctx, cardio.Signature, []byte(testSignPIN)); err != nil {
		t.Fatal(err)
	}
	certs, err := reader.ReadCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range first.Delivered {
		onCard := certs.UserAuth
		if d.CertType == workflow.SignatureCert {
			onCard = certs.Signature
		}
		if string(onCard) != string(d.Certificate) {
			t.Errorf("%s certificate on the card was replaced", d.CertType)
		}
	}
}

// TestAbortTellsCAWhetherCardWasWritten: an issuance aborted after its script's FINALIZE
// (here: the applicant leaves at the PIN step) tells the CA the card may hold the new key
// (AbortRequest.CardWritten), so the CA can revoke the certificate of a key a renewal replaced
// on the card (issue 17); one aborted before anything was committed does not.
func TestAbortTellsCAWhetherCardWasWritten(t *testing.T) {
	f := newFixture(t)
	req := f.request()
	req.PINs = func(ctx context.Context, r PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		return pinrule.PIN{}, pinrule.PIN{}, errors.New("applicant left the counter")
	}
	if _, err := f.o.Issue(context.Background(), req); !errors.Is(err, ErrPINCancelled) {
		t.Fatalf("Issue: %v", err)
	}
	if len(f.ca.aborts) != 2 || !f.ca.aborts[0].CardWritten || !f.ca.aborts[1].CardWritten {
		t.Fatalf("aborts after the card was written: %+v", f.ca.aborts)
	}

	g := newFixture(t, workflow.UserAuthCert)
	g.ca.corruptScript = 4 // FINALIZE refused by the card: nothing committed
	if _, err := g.o.Issue(context.Background(), g.request()); err == nil {
		t.Fatal("Issue with a refused FINALIZE succeeded")
	}
	if len(g.ca.aborts) != 1 || g.ca.aborts[0].CardWritten {
		t.Fatalf("aborts when nothing was committed: %+v", g.ca.aborts)
	}
}
