package ui

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"madoguchi/app/issue"
	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/issuer"
	"madoguchi/ca-server/profile"
	"madoguchi/cardio"
	"madoguchi/cardio/pcsc"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

// loadedCopyCard is a virtual JPKI card holding certificates issued under the real profiles by
// ca-server/issuer (a CA made for the test), with the applicant's PINs set.
func loadedCopyCard(t *testing.T) (*vcard.Card, string) {
	t.Helper()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, OrganizationalUnit: []string{"Madoguchi UI Test CA"}},
		NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(10, 0, 0), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	iss, err := issuer.New(issuer.Config{Certificate: caCert, Signer: caKey, KeyUsableUntil: caCert.NotBefore.AddDate(4, 0, 0), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	set, err := profile.Default()
	if err != nil {
		t.Fatal(err)
	}
	authKey, signKey := vcardtest.Keys()
	card := vcardtest.Blank(t, "", 0x5C)
	const signPIN = "JPKI2024"
	for _, c := range []struct {
		profile string
		key     *rsa.PrivateKey
		certEF  uint16
		caEF    uint16
		keyEF   uint16
	}{
		{"signature", signKey, vcard.EFSignatureCert, vcard.EFSignatureCACert, vcard.EFSignatureKey},
		{"user-authentication", authKey, vcard.EFUserAuthCert, vcard.EFUserAuthCACert, vcard.EFUserAuthKey},
	} {
		p, err := set.Get(c.profile)
		if err != nil {
			t.Fatal(err)
		}
		got, err := iss.Issue(context.Background(), issuer.Request{Profile: p, PublicKey: &c.key.PublicKey, Applicant: &applicant.Applicant{
			Name: applicant.Text{Value: "𠮷野 次郎", Substitutes: []int{0}}, BirthDate: applicant.NewDate(1978, 11, 30), Sex: applicant.SexMale,
			Address: applicant.Text{Value: "東京都架空区試験町三丁目6番7号"}, ResidentCode: "90000000011", CardExpiry: applicant.NewDate(2035, 4, 1)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{card.InstallCertificate(c.certEF, got.DER), card.InstallCertificate(c.caEF, caDER), card.InstallPrivateKey(c.keyEF, c.key)} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, err := range []error{card.SetPIN(vcard.EFUserAuthPIN, []byte("4321")), card.SetPIN(vcard.EFSignaturePIN, []byte(signPIN)),
		card.SetLifecycle(vcard.LifecyclePersonalised)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return card, signPIN
}

// TestCopyWithRealCard reads the certificate copy through the whole terminal path: the real
// domain (app), pcscd with the virtual card in a vpcd reader, cardio over PC/SC, the holder's
// PIN verified by the card, the printout and its pdftoppm preview.
func TestCopyWithRealCard(t *testing.T) {
	card, signPIN := loadedCopyCard(t)
	pc := testenv.PCSCD(t)
	vcardtest.PlugIn(t, card, pc.Ports[0], pc.Readers[0])
	reader := pc.Readers[0]

	f := newAppDeskFixture(t)
	var mu sync.Mutex
	opened := 0
	f.cards = func(ctx context.Context) (issue.Card, func(), error) {
		c, err := pcsc.Open()
		if err != nil {
			return nil, nil, err
		}
		conn, err := c.Connect(reader, pcsc.Exclusive)
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		mu.Lock()
		opened++
		mu.Unlock()
		return cardio.New(conn), func() { conn.Close(true); c.Close() }, nil
	}
	s, _ := newTestShell(t, AppBackend{Terminal: f.term}, Screens(), true)
	s.Terminal = TerminalWiring{NoticeDir: t.TempDir(), Preview: Pdftoppm{}}
	f.fp.Present("finger-R001")
	loginAs(t, s, "R001")
	waitFor(t, "home", func() bool { return s.Current() == HomeID })
	if err := s.Show(CopyScreenID); err != nil {
		t.Fatal(err)
	}
	v := s.body.Objects[0].(*copyView)
	fr := v.frame
	test.Type(fr.code, "90000000011")
	test.Tap(fr.open)
	waitFor(t, "case opened", func() bool { return fr.c.ID != 0 && !fr.busy })
	fr.identity.document.SetSelected(documentName("my_number_card"))
	test.Tap(fr.record)
	waitFor(t, "identity recorded", func() bool { return fr.c.State == "identity_checked" && !fr.busy })
	test.Tap(v.certs.signature)
	test.Tap(v.certs.userAuth)
	test.Tap(fr.proceed)
	enterCardPIN(t, s, signPIN)
	waitFor(t, "copies", func() bool { return !fr.busy })
	if fr.message.Text != "" || len(v.previews) != 2 {
		t.Fatalf("copy from the card: message %q, %d copies", fr.message.Text, len(v.previews))
	}
	waitFor(t, "previews", func() bool { return v.previews[0].rendered && v.previews[1].rendered })
	// the certificate's name: surname U+3000 given name, as real JPKI certificates carry it
	if !windowShows(s.win, "𠮷野　次郎") || !windowShows(s.win, "東京都架空区試験町三丁目6番7号") {
		t.Error("the signature certificate's items are not shown")
	}
	if fr.c.State != "completed" || !f.audited(t, "R001", "certificate.copy", "ok") {
		t.Errorf("case %q, or the copy is not audited", fr.c.State)
	}
	mu.Lock()
	defer mu.Unlock()
	if opened != 2 {
		t.Errorf("card opened %d times, want once per certificate", opened)
	}
}
