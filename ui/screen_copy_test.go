package ui

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"madoguchi/app/apperr"
	"madoguchi/app/printout"
	"madoguchi/app/workflow"
)

var _ CertificateCopyDesk = (*deskSession)(nil)

// testSignaturePIN is the card's signature PIN in the copy tests (made up for the test).
const testSignaturePIN = "TEST42PIN"

// CopyFromCard is the fake card: the signature certificate is read only after the right PIN.
func (d *fakeDesk) CopyFromCard(ctx context.Context, caseID int64, t CertType, pin func(ctx context.Context) ([]byte, error)) (CertificateCopy, error) {
	d.mu.Lock()
	c := d.cases[caseID]
	d.mu.Unlock()
	if c == nil || c.Kind != workflow.CertificateCopy || c.State != workflow.Approved {
		return CertificateCopy{}, apperr.New(apperr.InvalidTransition, "ui test: case not an approved copy")
	}
	cp := printout.CertificateCopy{Municipality: "千代田区長", Date: d.now.Add(3 * time.Minute), OperatorID: "R001",
		Certificate: printout.Certificate{Kind: printout.UserAuth, Serial: big.NewInt(0x3C4D), NotBefore: d.now.AddDate(-1, 0, 0), NotAfter: d.now.AddDate(4, 0, 0)},
		Subject:     "CN=12345ABCDE", Issuer: "CN=Madoguchi Test User Authentication CA,O=JPKI,C=JP", PublicKey: "RSA 2048ビット",
		SignatureAlgorithm: "SHA256-RSA", KeyUsage: x509.KeyUsageDigitalSignature, Policies: []string{"1.2.392.200149.8.5.1.3.30"}}
	if t == CertSignature {
		p, err := pin(ctx)
		if err != nil {
			return CertificateCopy{}, err
		}
		ok := string(p) == testSignaturePIN
		clear(p)
		if !ok {
			return CertificateCopy{}, &CardPINRefused{TriesLeft: 4, Err: errors.New("cardio: wrong signature pin, 4 tries left")}
		}
		cp.Kind, cp.Serial, cp.Subject = printout.Signature, big.NewInt(0x1A2B), "CN=山田 太郎"
		cp.KeyUsage |= x509.KeyUsageContentCommitment
		cp.Personal = &printout.Personal{Name: printout.Text{Value: "山田 太郎"}, BirthDate: printout.Date{Year: 1980, Month: 4, Day: 1},
			Sex: printout.Male, Address: printout.Text{Value: "東京都千代田区霞が関1-1"}}
	}
	if d.copySerial != nil {
		cp.Serial = d.copySerial
	}
	pdf, err := d.printer.CertificateCopy(cp)
	if err != nil {
		return CertificateCopy{}, err
	}
	return CertificateCopy{Copy: cp, PDF: pdf}, nil
}

func (d *fakeDesk) CompleteProcedure(ctx context.Context, id int64) (ProcedureCase, error) {
	return d.step(id, func(c *workflow.Case) error { return c.Complete() })
}

// asyncCopyShell opens the copy screen on a shell whose backend calls run on goroutines, as in
// the terminal, because the card waits for the holder's PIN on the applicant screen.
func asyncCopyShell(t *testing.T) (*Shell, *copyView, *deskBackend) {
	t.Helper()
	b := newDeskBackend(t, receptionClerk())
	s, _ := newTestShell(t, b, procScreens(), true)
	s.Terminal = TerminalWiring{NoticeDir: t.TempDir(), Preview: Pdftoppm{}}
	loginAs(t, s, "R001")
	waitFor(t, "home", func() bool { return s.Current() == HomeID })
	if err := s.Show(CopyScreenID); err != nil {
		t.Fatal(err)
	}
	v := s.body.Objects[0].(*copyView)
	f := v.frame
	test.Type(f.code, "12345678901")
	test.Tap(f.open)
	waitFor(t, "case opened", func() bool { return f.c.ID != 0 && !f.busy })
	f.identity.document.SetSelected(documentName("my_number_card"))
	test.Tap(f.record)
	waitFor(t, "identity recorded", func() bool { return f.c.State == "identity_checked" && !f.busy })
	return s, v, b
}

func enterCardPIN(t *testing.T, s *Shell, pin string) {
	t.Helper()
	waitFor(t, "applicant PIN screen", func() bool { return s.pin != nil })
	p := s.pin
	if !p.req.Existing {
		t.Fatal("the card's current PIN is asked as a new one (entered twice)")
	}
	test.Type(p.first, pin)
	p.first.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
}

func TestCopyReadsCardAfterHoldersPIN(t *testing.T) {
	s, v, b := asyncCopyShell(t)
	f := v.frame
	test.Tap(f.proceed)
	if f.message.Text != tr("procedure.error.no_certificate") {
		t.Errorf("nothing chosen: %q", f.message.Text)
	}
	test.Tap(v.certs.signature)
	test.Tap(v.certs.userAuth)
	test.Tap(f.proceed)

	// A wrong PIN: the card says so, nothing is copied, the case stays approved.
	enterCardPIN(t, s, "WRONG123")
	waitFor(t, "refusal", func() bool { return !f.busy })
	if want := "暗証番号が正しくありません（残り 4 回）。申請者ご本人にもう一度入力していただいてください"; f.message.Text != want {
		t.Errorf("wrong PIN: %q", f.message.Text)
	}
	if s.pin != nil {
		t.Error("PIN screen still shown")
	}
	if b.desk.caseState(f.c.ID) != "approved" || len(v.previews) != 0 {
		t.Fatalf("after a wrong PIN: state %q previews %d", b.desk.caseState(f.c.ID), len(v.previews))
	}

	test.Tap(f.proceed)
	enterCardPIN(t, s, testSignaturePIN)
	waitFor(t, "copies", func() bool { return !f.busy && len(v.previews) == 2 })
	waitFor(t, "previews rendered", func() bool { return v.previews[0].rendered && v.previews[1].rendered })
	if f.message.Text != "" || f.c.State != "completed" || b.desk.caseState(f.c.ID) != "completed" {
		t.Errorf("copy: message %q state %q", f.message.Text, f.c.State)
	}
	if !windowShows(s.win, "東京都千代田区霞が関1-1") || !windowShows(s.win, tr("copy.no_personal_data")) {
		t.Error("the copies' recorded items are not shown")
	}
	if a, b := v.previews[0].path, v.previews[1].path; a == "" || b == "" || a == b {
		t.Errorf("saved copies %q %q", a, b)
	}
}

func TestCopyPINCancelledMakesNoSignatureCopy(t *testing.T) {
	s, v, b := asyncCopyShell(t)
	f := v.frame
	test.Tap(v.certs.signature)
	test.Tap(f.proceed)
	waitFor(t, "applicant PIN screen", func() bool { return s.pin != nil })
	test.Tap(s.pin.cancel)
	waitFor(t, "cancelled", func() bool { return !f.busy })
	if f.message.Text != tr("copy.error.pin_cancelled") || b.desk.caseState(f.c.ID) != "approved" {
		t.Errorf("cancel: message %q state %q", f.message.Text, b.desk.caseState(f.c.ID))
	}
	if !strings.Contains(f.message.Text, "署名用電子証明書") {
		t.Error("message does not say which copy was not made")
	}
}
