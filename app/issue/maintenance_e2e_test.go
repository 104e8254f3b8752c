package issue_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/internal/e2e"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
	"madoguchi/cardio"
	"madoguchi/internal/testenv"
	"madoguchi/raclient"
)

// TestCardMaintenanceEndToEnd is the counter PIN reset and key destruction against the real
// stack: a SoftHSM-backed ca-server child process (the CA builds the scripts with the card keys
// in its HSM), pcscd + vpcd with the virtual card, fprintd's virtual device for the operators'
// log-in. Both certificates are issued; the user-auth PIN is locked with 3 wrong tries, reset at
// the counter (the applicant's first new PIN is refused by the TS Art. 4 rules and asked again),
// the new PIN verifies and the user-auth key signs. Key destruction is refused while the
// user-auth certificate is valid; after revocation it succeeds, the card refuses to sign with
// that key, and the signature key still signs.
func TestCardMaintenanceEndToEnd(t *testing.T) {
	ca := e2e.StartCA(t)
	pc := testenv.PCSCD(t)
	ctx := context.Background()
	var card *cardio.Card // the card in the reader, which the procedures open (app.Config.Cards)
	term, rc := fingerCounter(t, app.Config{CA: ca.Client, Municipality: "東京都架空区長",
		Cards: func(context.Context) (issue.Card, func(), error) { return card, func() {}, nil }})
	if term.CardMaintenanceCA() == nil {
		t.Fatal("the terminal's CA client offers no card maintenance")
	}

	// Issue both certificates.
	issueCase := openCase(t, rc, workflow.SignatureCert, workflow.UserAuthCert)
	ca.PlugInStockCard(t, pc, 0)
	pcard, _ := e2e.ConnectCard(t, pc.Readers[0])
	card = cardio.New(pcard)
	o := term.Issuer()
	res, err := rc.IssueWith(ctx, o, app.IssueRequest{CaseID: issueCase, Card: card, CardExpiry: time.Now().AddDate(10, 0, 0), PINs: applicantPINs})
	if err != nil {
		t.Fatalf("Issue: %v (%s)", err, translations.ErrorText("ja", err))
	}
	certs := map[workflow.CertType]*x509.Certificate{}
	serials := map[workflow.CertType]string{}
	for _, d := range res.Delivered {
		c, err := x509.ParseCertificate(d.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		certs[d.CertType], serials[d.CertType] = c, d.Serial
	}
	digest := sha256.Sum256([]byte("ログイン 2026"))
	di := append([]byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, digest[:]...)
	signWith := func(w cardio.Which, pin string, typ workflow.CertType) error {
		t.Helper()
		if err := card.VerifyPIN(ctx, w, []byte(pin)); err != nil {
			t.Fatalf("verify %s PIN: %v", w, err)
		}
		sig, err := card.Sign(ctx, w, di)
		if err != nil {
			return err
		}
		if err := rsa.VerifyPKCS1v15(certs[typ].PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("%s signature does not verify under the issued certificate: %v", typ, err)
		}
		return nil
	}

	// The holder locks the user-auth PIN with 3 wrong tries.
	for range 3 {
		card.VerifyPIN(ctx, cardio.UserAuth, []byte("0000"))
	}
	if err := card.VerifyPIN(ctx, cardio.UserAuth, []byte(e2eAuthPIN)); !errors.Is(err, cardio.ErrPINBlocked) {
		t.Fatalf("user-auth PIN not blocked after 3 wrong tries: %v", err)
	}

	// PIN reset at the counter; the applicant first chooses a guessable PIN.
	pinCase := counterCaseE2E(t, rc, workflow.PINReset, nil)
	const newAuthPIN = "5931"
	var asked []issue.PINRequest
	entry := func(ctx context.Context, req issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		asked = append(asked, req)
		if req.Attempt == 1 {
			return pinrule.New("1234"), pinrule.New("1234"), nil
		}
		return pinrule.New(newAuthPIN), pinrule.New(newAuthPIN), nil
	}
	began := time.Now()
	if err := rc.ResetPIN(ctx, pinCase, pinrule.UserAuth, entry); err != nil {
		t.Fatalf("ResetPIN: %v (%s)", err, translations.ErrorText("ja", err))
	}
	t.Logf("user-auth PIN reset through the CA and set by the applicant in %v", time.Since(began).Round(time.Millisecond))
	var weak *pinrule.Error
	if len(asked) != 2 || asked[0].Kind != pinrule.UserAuth || asked[0].Existing || asked[0].Refused != nil ||
		asked[1].Attempt != 2 || !errors.As(asked[1].Refused, &weak) {
		t.Fatalf("applicant PIN screens: %+v", asked)
	}
	if n, err := card.PINTriesLeft(ctx, cardio.UserAuth); err != nil || n != 3 {
		t.Errorf("user-auth PIN after the reset: %d tries, %v", n, err)
	}
	if err := signWith(cardio.UserAuth, newAuthPIN, workflow.UserAuthCert); err != nil {
		t.Fatalf("sign with the user-auth key after the reset: %v", err)
	}
	if c, err := rc.Case(ctx, pinCase); err != nil || c.State != workflow.Completed {
		t.Errorf("PIN reset case: %v %v", c.State, err)
	}

	// Key destruction of the user-auth key: refused while its certificate is valid.
	kdCase := counterCaseE2E(t, rc, workflow.KeyDestruction, []workflow.CertType{workflow.UserAuthCert})
	err = rc.DestroyKeys(ctx, kdCase)
	if !errors.Is(err, apperr.CertificateNotRevoked) || !errors.Is(err, raclient.ErrCertificateLive) || !strings.Contains(translations.ErrorText("ja", err), "先に電子証明書を失効") {
		t.Fatalf("key destruction with a valid certificate: %v (%s)", err, translations.ErrorText("ja", err))
	}
	if err := signWith(cardio.UserAuth, newAuthPIN, workflow.UserAuthCert); err != nil {
		t.Fatalf("the refused destruction changed the card: %v", err)
	}
	// Revoked at the holder's request, then destroyed.
	rvCase := counterCaseE2E(t, rc, workflow.Revocation, nil)
	if _, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: rvCase, Certificates: []app.CertRef{{Type: workflow.UserAuthCert, Serial: serials[workflow.UserAuthCert]}},
		WrittenRequest: "失効申請書 No.9"}); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if err := rc.DestroyKeys(ctx, kdCase); err != nil {
		t.Fatalf("DestroyKeys after revocation: %v (%s)", err, translations.ErrorText("ja", err))
	}
	if err := signWith(cardio.UserAuth, newAuthPIN, workflow.UserAuthCert); err == nil {
		t.Fatal("the card signed with the destroyed user-auth key")
	}
	if err := signWith(cardio.Signature, e2eSignPIN, workflow.SignatureCert); err != nil {
		t.Fatalf("the signature key went too: %v", err)
	}

	// Audit: the terminal's records, without any PIN.
	recs, err := audit.List(ctx, term.DB(), audit.Filter{Operator: "rc1"})
	if err != nil {
		t.Fatal(err)
	}
	results := map[string][]string{}
	for _, r := range recs {
		results[r.Action] = append(results[r.Action], r.Result)
		for _, v := range r.Detail {
			v = longHex.ReplaceAllString(v, "") // ids and serials: random hex may hold any 4 digits
			if strings.Contains(v, newAuthPIN) || strings.Contains(v, "1234") {
				t.Errorf("PIN in audit record %s: %v", r.Action, r.Detail)
			}
		}
		if r.Action == "card.pin_reset" && (r.Detail["maintenance_id"] == "" || r.Detail["card_serial"] == "") {
			t.Errorf("pin reset audit lacks the CA's maintenance id or the card: %v", r.Detail)
		}
	}
	if got := strings.Join(results["card.pin_reset"], ","); got != audit.ResultOK {
		t.Errorf("card.pin_reset audit results %q", got)
	}
	if got := strings.Join(results["card.key_destruction"], ","); got != audit.ResultRefused+","+audit.ResultOK {
		t.Errorf("card.key_destruction audit results %q", got)
	}
	if _, err := audit.Verify(ctx, term.DB()); err != nil {
		t.Error(err)
	}
}

// counterCaseE2E opens an approved counter case for the e2e applicant.
func counterCaseE2E(t *testing.T, rc *app.Session, kind workflow.Kind, types []workflow.CertType) int64 {
	t.Helper()
	ctx := context.Background()
	c, err := rc.OpenCase(ctx, app.CaseRequest{Kind: kind, RecordCode: e2eRecordCode, CertTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.RecordIdentity(ctx, c.ID, workflow.Evidence{Document: workflow.MyNumberCard}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Approve(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// longHex matches the random hexadecimal ids and serials in audit details.
var longHex = regexp.MustCompile(`[0-9A-Fa-f]{16,}`)
