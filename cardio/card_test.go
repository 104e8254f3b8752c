package cardio_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"madoguchi/cardio"
	"madoguchi/cardio/apdu"
	"madoguchi/cardio/pcsc"
	"madoguchi/cardio/perso"
	"madoguchi/cardio/pinrule"
	"madoguchi/cardio/scp"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

var sha256Prefix = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

func digestInfo(msg []byte) ([]byte, []byte) {
	d := sha256.Sum256(msg)
	return append(bytes.Clone(sha256Prefix), d[:]...), d[:]
}

// counting wraps a Transport and counts the APDUs that reach it.
type counting struct {
	cardio.Transport
	n int
}

func (c *counting) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	c.n++
	return c.Transport.Transmit(ctx, cmd)
}

// realCard plugs the loaded card into reader 0 and returns the card API over real PC/SC.
func realCard(t *testing.T, env *testenv.PCSC, card *vcard.Card) (*cardio.Card, *vcard.Link, *pcsc.Card) {
	t.Helper()
	link, _ := vcardtest.PlugIn(t, card, env.Ports[0], env.Readers[0])
	pc := vcardtest.Connect(t, env.Readers[0])
	return cardio.New(pc), link, pc
}

func TestReadCertificatesAndSignRealStack(t *testing.T) {
	env := testenv.PCSCD(t)
	l := vcardtest.Personalised(t, "", 0x31)
	api, _, _ := realCard(t, env, l.Card)
	ctx := context.Background()

	certs, err := api.ReadCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certs.UserAuth, l.AuthCert) || !bytes.Equal(certs.UserAuthCA, l.CACert) || !bytes.Equal(certs.SignatureCA, l.CACert) {
		t.Fatal("certificates read differ from those on the card")
	}
	if certs.Signature != nil {
		t.Fatal("signature certificate read without the signature PIN")
	}
	if _, err := api.ReadCertificate(ctx, cardio.FileSignatureCert); !errors.Is(err, cardio.ErrPINRequired) {
		t.Fatalf("read signature certificate without pin: %v, want ErrPINRequired", err)
	}
	di, digest := digestInfo([]byte("counter"))
	if _, err := api.Sign(ctx, cardio.UserAuth, di); !errors.Is(err, cardio.ErrPINRequired) {
		t.Fatalf("sign without pin: %v, want ErrPINRequired", err)
	}
	if err := api.VerifyPIN(ctx, cardio.Signature, []byte(l.SignPIN)); err != nil {
		t.Fatal(err)
	}
	certs, err = api.ReadCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certs.Signature, l.SignCert) {
		t.Fatal("signature certificate differs after pin verification")
	}
	sig, err := api.Sign(ctx, cardio.Signature, di)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&l.SignKey.PublicKey, crypto.SHA256, digest, sig); err != nil {
		t.Fatal(err)
	}
	if err := api.VerifyPIN(ctx, cardio.UserAuth, []byte(l.AuthPIN)); err != nil {
		t.Fatal(err)
	}
	sig, err = api.Sign(ctx, cardio.UserAuth, di)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&l.AuthKey.PublicKey, crypto.SHA256, digest, sig); err != nil {
		t.Fatal(err)
	}
}

// TestWrongPINsLockRealStack: wrong PINs count down (63C2, 63C1, 63C0), then the PIN is
// blocked (6983), for both PINs; a blocked PIN stays blocked across a card reset, a removal
// and re-insertion, and a reload of the state file (TS Art. 17-2(xi)(xii)).
func TestWrongPINsLockRealStack(t *testing.T) {
	env := testenv.PCSCD(t)
	path := filepath.Join(t.TempDir(), "card.json")
	l := vcardtest.Personalised(t, path, 0x32)
	link, stop := vcardtest.PlugIn(t, l.Card, env.Ports[0], env.Readers[0])
	ctx := context.Background()
	cl, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	pc, err := cl.Connect(env.Readers[0], pcsc.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	api := cardio.New(pc)
	for _, tc := range []struct {
		which        cardio.Which
		right, wrong string
	}{
		{cardio.UserAuth, l.AuthPIN, "0000"},
		{cardio.Signature, l.SignPIN, "WRONG999"},
	} {
		max := pinrule.MaxTries(tc.which)
		if n, err := api.PINTriesLeft(ctx, tc.which); err != nil || n != max {
			t.Fatalf("%s: tries %d %v, want %d", tc.which, n, err, max)
		}
		for left := max - 1; left >= 0; left-- {
			err := api.VerifyPIN(ctx, tc.which, []byte(tc.wrong))
			var pe *cardio.PINError
			if !errors.As(err, &pe) || pe.TriesLeft != left || !errors.Is(err, cardio.ErrWrongPIN) {
				t.Fatalf("%s: wrong pin gave %v, want %d tries left", tc.which, err, left)
			}
		}
		if err := api.VerifyPIN(ctx, tc.which, []byte(tc.right)); !errors.Is(err, cardio.ErrPINBlocked) {
			t.Fatalf("%s: right pin after lock gave %v, want ErrPINBlocked", tc.which, err)
		}
		if n, err := api.PINTriesLeft(ctx, tc.which); !errors.Is(err, cardio.ErrPINBlocked) || n != 0 {
			t.Fatalf("%s: tries after lock %d %v", tc.which, n, err)
		}
	}
	// Reset the card (power cycle through pcscd): still blocked.
	if err := pc.Close(true); err != nil {
		t.Fatal(err)
	}
	pc, err = cl.Connect(env.Readers[0], pcsc.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	api = cardio.New(pc)
	for _, w := range []cardio.Which{cardio.UserAuth, cardio.Signature} {
		if _, err := api.PINTriesLeft(ctx, w); !errors.Is(err, cardio.ErrPINBlocked) {
			t.Fatalf("%s after reset: %v, want ErrPINBlocked", w, err)
		}
	}
	pc.Close(false)
	// Remove the card, reload it from its state file, insert it again: still blocked.
	link.Faults.Remove()
	vcardtest.WaitPresent(t, env.Readers[0], false)
	stop()
	reloaded, err := vcard.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	vcardtest.PlugIn(t, reloaded, env.Ports[0], env.Readers[0])
	pc, err = cl.Connect(env.Readers[0], pcsc.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(false)
	api = cardio.New(pc)
	if err := api.VerifyPIN(ctx, cardio.UserAuth, []byte(l.AuthPIN)); !errors.Is(err, cardio.ErrPINBlocked) {
		t.Fatalf("user-auth after reload: %v, want ErrPINBlocked", err)
	}
	if err := api.VerifyPIN(ctx, cardio.Signature, []byte(l.SignPIN)); !errors.Is(err, cardio.ErrPINBlocked) {
		t.Fatalf("signature after reload: %v, want ErrPINBlocked", err)
	}
}

// TestIssuanceRealStack runs the whole card side of an issuance through pcscd: blank card
// stock, INITIALIZE UPDATE relayed to the (software) CA, the CA's protected script relayed
// by RunScript, the CA's check of the responses, the applicant's PIN set, and the read-back.
func TestIssuanceRealStack(t *testing.T) {
	env := testenv.PCSCD(t)
	blank := vcardtest.Blank(t, filepath.Join(t.TempDir(), "card.json"), 0x33)
	api, _, _ := realCard(t, env, blank)
	ctx := context.Background()

	serial, err := api.CardSerial(ctx)
	if err != nil || !bytes.Equal(serial, vcardtest.Serial(0x33)) {
		t.Fatalf("serial %X %v", serial, err)
	}
	hc, err := scp.NewHostChallenge(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	initResp, err := api.InitializeUpdate(ctx, hc)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := scp.NewHostSession(ctx, vcardtest.Issuer, hc, initResp)
	if err != nil {
		t.Fatal(err)
	}
	authKey, signKey := vcardtest.Keys()
	authCert := vcardtest.Certificate(t, authKey, "issued user-auth")
	signCert := vcardtest.Certificate(t, signKey, "issued signature")
	caCert := vcardtest.Certificate(t, signKey, "issuing CA")
	script, err := perso.BuildIssuanceScript(ctx, sess,
		perso.ImportKey{FID: perso.FIDUserAuthKey, Key: perso.SoftwareKey{Issuer: vcardtest.Issuer, Key: authKey}},
		perso.ImportKey{FID: perso.FIDSignatureKey, Key: perso.SoftwareKey{Issuer: vcardtest.Issuer, Key: signKey}},
		perso.WriteFile{FID: perso.FIDUserAuthCert, Content: authCert},
		perso.WriteFile{FID: perso.FIDSignatureCert, Content: signCert},
		perso.WriteFile{FID: perso.FIDUserAuthCACert, Content: caCert},
		perso.WriteFile{FID: perso.FIDSignatureCACert, Content: caCert},
	)
	if err != nil {
		t.Fatal(err)
	}
	responses, err := api.RunScript(ctx, script.APDUs())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := perso.VerifyResponses(sess, script, responses); err != nil {
		t.Fatalf("CA refused the card's responses: %v", err)
	}
	if blank.Lifecycle() != vcard.LifecyclePersonalised {
		t.Fatalf("lifecycle %s after the script", blank.Lifecycle())
	}
	// Keys are there but unusable until the applicant sets the PINs.
	di, digest := digestInfo([]byte("after issuance"))
	if _, err := api.Sign(ctx, cardio.UserAuth, di); !errors.Is(err, cardio.ErrPINNotSet) {
		t.Fatalf("sign before pin set: %v, want ErrPINNotSet", err)
	}
	if err := api.SetPIN(ctx, cardio.UserAuth, []byte("2580")); err != nil {
		t.Fatal(err)
	}
	if err := api.SetPIN(ctx, cardio.Signature, []byte("MADO2024")); err != nil {
		t.Fatal(err)
	}
	if err := api.SetPIN(ctx, cardio.UserAuth, []byte("1357")); !errors.Is(err, cardio.ErrPINAlreadySet) {
		t.Fatalf("second pin set: %v, want ErrPINAlreadySet", err)
	}
	if err := api.CheckSerial(ctx, serial); err != nil {
		t.Fatal(err)
	}
	if err := api.VerifyPIN(ctx, cardio.Signature, []byte("MADO2024")); err != nil {
		t.Fatal(err)
	}
	certs, err := api.ReadCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certs.UserAuth, authCert) || !bytes.Equal(certs.Signature, signCert) ||
		!bytes.Equal(certs.UserAuthCA, caCert) || !bytes.Equal(certs.SignatureCA, caCert) {
		t.Fatal("read-back differs from what was issued")
	}
	sig, err := api.Sign(ctx, cardio.Signature, di)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&signKey.PublicKey, crypto.SHA256, digest, sig); err != nil {
		t.Fatal(err)
	}
}

// TestRunScriptStopsAtFirstFailure: the relay stops at the first non-9000 answer and says
// which APDU failed; the card keeps nothing of the unfinished script.
func TestRunScriptStopsAtFirstFailure(t *testing.T) {
	env := testenv.PCSCD(t)
	blank := vcardtest.Blank(t, "", 0x34)
	api, link, _ := realCard(t, env, blank)
	ctx := context.Background()
	hc, _ := scp.NewHostChallenge(rand.Reader)
	initResp, err := api.InitializeUpdate(ctx, hc)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := scp.NewHostSession(ctx, vcardtest.Issuer, hc, initResp)
	if err != nil {
		t.Fatal(err)
	}
	authKey, _ := vcardtest.Keys()
	cert := vcardtest.Certificate(t, authKey, "x")
	script, err := perso.BuildIssuanceScript(ctx, sess,
		perso.WriteFile{FID: perso.FIDUserAuthCert, Content: cert},
		perso.WriteFile{FID: perso.FIDUserAuthCACert, Content: cert})
	if err != nil {
		t.Fatal(err)
	}
	apdus := script.APDUs() // EXTERNAL AUTHENTICATE, 2 × WRITE FILE, FINALIZE
	apdus[2] = bytes.Clone(apdus[2])
	apdus[2][10] ^= 0x01 // flip a bit of the second write's encrypted data
	responses, err := api.RunScript(ctx, apdus)
	var se *cardio.ScriptError
	if !errors.As(err, &se) || se.Index != 2 || !apdu.IsStatus(err, apdu.SWSecurityNotSatisfied) {
		t.Fatalf("RunScript error %v, want apdu 2 refused with 6982", err)
	}
	if len(responses) != 3 {
		t.Fatalf("%d responses, want 3 (two accepted, one refusal)", len(responses))
	}
	if blank.Lifecycle() != vcard.LifecycleBlank {
		t.Fatal("card changed by a refused script")
	}
	if _, err := api.ReadCertificate(ctx, cardio.FileUserAuthCert); !errors.Is(err, cardio.ErrCertificateNotPresent) {
		t.Fatalf("read of unwritten file: %v, want ErrCertificateNotPresent", err)
	}
	// An injected status word at a given APDU stops the relay just the same.
	link.Faults.AnswerSWAt(1, apdu.SWMemoryFailure)
	responses, err = api.RunScript(ctx, [][]byte{{0x00, 0xA4, 0x04, 0x00, 0x00}})
	if !errors.As(err, &se) || se.Index != 0 || !apdu.IsStatus(err, apdu.SWMemoryFailure) || len(responses) != 1 {
		t.Fatalf("injected 6581: %v (%d responses)", err, len(responses))
	}
}

// TestPINFormatCheckedBeforeTheCard: a badly formed PIN never reaches the card (no APDU).
func TestPINFormatCheckedBeforeTheCard(t *testing.T) {
	c := vcardtest.Blank(t, "", 0x35)
	tr := &counting{Transport: vcard.Insert(c)}
	api := cardio.New(tr)
	ctx := context.Background()
	for _, tc := range []struct {
		w   cardio.Which
		pin string
	}{
		{cardio.UserAuth, "123"}, {cardio.UserAuth, "12a4"}, {cardio.Signature, "ABCDEF"},
		{cardio.Signature, "abc123"}, {cardio.Signature, "A1"}, {cardio.Signature, "ABCDEFGHIJ1234567"},
	} {
		if err := api.SetPIN(ctx, tc.w, []byte(tc.pin)); !errors.Is(err, pinrule.ErrFormat) {
			t.Errorf("SetPIN(%s, %d chars): %v, want pinrule.ErrFormat", tc.w, len(tc.pin), err)
		}
		if err := api.VerifyPIN(ctx, tc.w, []byte(tc.pin)); !errors.Is(err, pinrule.ErrFormat) {
			t.Errorf("VerifyPIN(%s, %d chars): %v, want pinrule.ErrFormat", tc.w, len(tc.pin), err)
		}
	}
	if tr.n != 0 {
		t.Fatalf("%d apdus reached the card", tr.n)
	}
	if st, _, _ := c.PINStatus(vcard.EFUserAuthPIN); st != vcard.PINNotSet {
		t.Fatal("pin state changed")
	}
}

// issuanceScript builds a script for card serial b after INITIALIZE UPDATE through api.
func issuanceScript(t *testing.T, api *cardio.Card) (*scp.HostSession, *perso.Script, []byte) {
	t.Helper()
	ctx := context.Background()
	hc, _ := scp.NewHostChallenge(rand.Reader)
	initResp, err := api.InitializeUpdate(ctx, hc)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := scp.NewHostSession(ctx, vcardtest.Issuer, hc, initResp)
	if err != nil {
		t.Fatal(err)
	}
	authKey, _ := vcardtest.Keys()
	cert := vcardtest.Certificate(t, authKey, "x")
	script, err := perso.BuildIssuanceScript(ctx, sess,
		perso.ImportKey{FID: perso.FIDUserAuthKey, Key: perso.SoftwareKey{Issuer: vcardtest.Issuer, Key: authKey}},
		perso.WriteFile{FID: perso.FIDUserAuthCert, Content: cert})
	if err != nil {
		t.Fatal(err)
	}
	return sess, script, cert
}

// TestCommitFailureChangesNothing: when the card cannot write its state file at FINALIZE it
// answers 6581 and keeps its old content (CARD-PROTOCOL §5; DOMAIN §4.7).
func TestCommitFailureChangesNothing(t *testing.T) {
	dir := t.TempDir()
	blank := vcardtest.Blank(t, filepath.Join(dir, "card.json"), 0x37)
	api := cardio.New(vcard.Insert(blank))
	_, script, _ := issuanceScript(t, api)
	if err := os.RemoveAll(dir); err != nil { // the card's memory becomes unwritable
		t.Fatal(err)
	}
	apdus := script.APDUs()
	_, err := api.RunScript(context.Background(), apdus)
	var se *cardio.ScriptError
	if !errors.As(err, &se) || se.Index != len(apdus)-1 || !apdu.IsStatus(err, apdu.SWMemoryFailure) {
		t.Fatalf("RunScript with unwritable memory: %v, want FINALIZE refused with 6581", err)
	}
	if blank.Lifecycle() != vcard.LifecycleBlank {
		t.Fatal("card changed although the commit failed")
	}
	if _, err := api.ReadCertificate(context.Background(), cardio.FileUserAuthCert); !errors.Is(err, cardio.ErrCertificateNotPresent) {
		t.Fatalf("certificate after failed commit: %v, want ErrCertificateNotPresent", err)
	}
}
