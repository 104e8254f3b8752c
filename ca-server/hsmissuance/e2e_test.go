package hsmissuance

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/issuer"
	"madoguchi/ca-server/profile"
	"madoguchi/ca-server/store"
	"madoguchi/cardio"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// opensslVerify runs `openssl verify -CAfile ca leaf` with the real openssl.
func opensslVerify(t *testing.T, caPEMPath string, leafDER []byte) {
	t.Helper()
	leaf := filepath.Join(t.TempDir(), "leaf.pem")
	if err := os.WriteFile(leaf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "verify", "-CAfile", caPEMPath, leaf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify -CAfile %s: %v\n%s", caPEMPath, err, out)
	}
}

// userKeysInToken lists the RSA private keys in the token that are not CA
// or service keys (TS Art. 5(iv): after a prepare, none may remain).
func userKeysInToken(t *testing.T, h *hsm.HSM) []hsm.Key {
	t.Helper()
	keys, err := h.FindKeys(context.Background(), hsm.KeyQuery{Kind: hsm.KindRSAPrivate})
	if err != nil {
		t.Fatal(err)
	}
	var out []hsm.Key
	for _, k := range keys {
		switch k.Label {
		case ceremony.LabelSignatureCA, ceremony.LabelAuthCA, ceremony.LabelAuditCheckpoint, ceremony.LabelTLSCA:
		default:
			out = append(out, k)
		}
	}
	return out
}

// cardSigns has the card sign with key w (after the applicant sets and
// verifies the PIN) and checks the signature with the certificate's key:
// the key on the card is the certificate's key.
func cardSigns(t *testing.T, card *cardio.Card, w cardio.Which, pin string, cert *x509.Certificate) {
	t.Helper()
	ctx := context.Background()
	if err := card.SetPIN(ctx, w, []byte(pin)); err != nil {
		t.Fatalf("set pin: %v", err)
	}
	if err := card.VerifyPIN(ctx, w, []byte(pin)); err != nil {
		t.Fatalf("verify pin: %v", err)
	}
	digest := sha256.Sum256([]byte("madoguchi attestation check"))
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	sig, err := card.Sign(ctx, w, append(prefix, digest[:]...))
	if err != nil {
		t.Fatalf("card sign: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("card's key is not the certificate's key: %v", err)
	}
}

// TestIssuanceEndToEndWithSoftHSM: dev ceremony → activation → mTLS API →
// enrolled terminal → channel → INITIALIZE UPDATE on a virtual card →
// prepare (key generated in SoftHSM, certificate signed by the HSM CA key)
// → script run on the card → confirm → delivered, for both certificate
// types; then checks the certificates with openssl, their contents, the
// card's keys, and that the HSM holds no user key.
func TestIssuanceEndToEndWithSoftHSM(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	card, _, serial := f.newCard(t)
	app := applicantData("12345678901")
	profiles, err := profile.Default()
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		typ     string
		role    string
		profile string
		which   cardio.Which
		pin     string
	}{
		{"sign", ceremony.RoleSignatureCA, ProfileSignature, cardio.Signature, "MADO2026"},
		{"auth", ceremony.RoleAuthCA, ProfileUserAuth, cardio.UserAuth, "4826"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			prep, st := f.issue(t, card, serial, tc.typ, "req-"+tc.typ, app)
			if st.State != string(store.StateDelivered) {
				t.Fatalf("state %q, want delivered", st.State)
			}
			// TS Art. 5(iv): the HSM copy of the user key is gone.
			if left := userKeysInToken(t, f.active.HSM); len(left) != 0 {
				t.Fatalf("user private keys left in the HSM: %v", left)
			}
			cert := parseCert(t, prep.Certificate)
			if cert.SerialNumber.Text(16) != prep.Serial {
				t.Fatalf("certificate serial %x, stored %s", cert.SerialNumber, prep.Serial)
			}
			// TS Art. 2: RSA 2048 with sha256WithRSAEncryption.
			if cert.SignatureAlgorithm != x509.SHA256WithRSA || cert.PublicKey.(*rsa.PublicKey).N.BitLen() != 2048 {
				t.Fatalf("algorithm %v, key %d bits", cert.SignatureAlgorithm, cert.PublicKey.(*rsa.PublicKey).N.BitLen())
			}
			rec, err := f.active.State.Key(tc.role)
			if err != nil {
				t.Fatal(err)
			}
			opensslVerify(t, rec.Certificate, prep.Certificate)
			// CPS §6.3.2.2: the earlier of the 5th birthday after issuance
			// and the card's expiry.
			a, err := ToApplicant(app)
			if err != nil {
				t.Fatal(err)
			}
			wantNotAfter, err := issuer.NotAfter(cert.NotBefore, &a)
			if err != nil {
				t.Fatal(err)
			}
			if !cert.NotAfter.Equal(wantNotAfter) {
				t.Fatalf("notAfter %v, want %v", cert.NotAfter, wantNotAfter)
			}
			// CPS §6.3.2.1: the CA certificate is valid 10 years.
			caCert, err := ceremony.ReadCertificate(rec)
			if err != nil {
				t.Fatal(err)
			}
			if y := caCert.NotAfter.Sub(caCert.NotBefore).Hours() / 24 / 365.25; y < 9.99 || y > 10.01 {
				t.Fatalf("CA certificate valid %.2f years, want 10", y)
			}

			p, err := profiles.Get(tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			attrs, err := issuer.DecodeAttributes(cert, p)
			if err != nil {
				t.Fatalf("decode attributes: %v", err)
			}
			if tc.typ == "sign" {
				// TS Art. 11, Art. 3(1): the 4 items and 旧氏, non-BMP name intact;
				// surname and given name separated by U+3000 as on real certificates.
				if attrs.Name.Value != strings.ReplaceAll(app.Name, " ", "\u3000") || attrs.Address.Value != app.Address || attrs.Sex.Code() != app.Sex ||
					attrs.BirthDate.String() != app.BirthDate || attrs.FormerSurname.Value != app.FormerSurname {
					t.Fatalf("attributes %+v do not match the applicant", attrs)
				}
			} else {
				// CPS §3.1, §7.1: no personal data.
				if issuer.HasPersonalData(cert) {
					t.Fatal("user-authentication certificate carries personal data")
				}
				for _, s := range []string{app.Name, app.Address, "1990", "𠮷"} {
					if strings.Contains(string(cert.Raw), s) {
						t.Fatalf("user-authentication certificate contains %q", s)
					}
				}
			}
			// The key on the card is the certificate's key (the attestation
			// was checked at confirm; here the card proves it by signing).
			cardSigns(t, card, tc.which, tc.pin, cert)
			files := UserAuthFiles
			if tc.typ == "sign" {
				files = SignatureFiles
			}
			for fid, want := range map[uint16][]byte{files.Certificate: cert.Raw, files.CACertificate: caCert.Raw} {
				got, err := card.ReadCertificate(ctx, fid)
				if err != nil {
					t.Fatalf("read ef %04X: %v", fid, err)
				}
				if string(got) != string(want) {
					t.Fatalf("card ef %04X differs from the issued certificate", fid)
				}
			}
		})
	}

	// CPS §4.3.1.1: a second certificate of the same type is refused.
	t.Run("duplicate", func(t *testing.T) {
		card2, _, serial2 := f.newCard(t)
		_, err := f.prepare(t, card2, serial2, "sign", "req-dup", app)
		var re *raclient.Error
		if !errors.As(err, &re) || re.Code != wire.CodeDuplicatePerson || re.Status != 409 {
			t.Fatalf("second signature certificate: %v, want 409 %s", err, wire.CodeDuplicatePerson)
		}
		if left := userKeysInToken(t, f.active.HSM); len(left) != 0 {
			t.Fatalf("user keys left: %v", left)
		}
	})
}

// TestAbortRevokesWithReasonZero: abort after prepare → revoked, reason 0
// (CPS §4.9.9: destroyed before delivery); the card was never written.
func TestAbortRevokesWithReasonZero(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	card, _, serial := f.newCard(t)
	prep, err := f.prepare(t, card, serial, "auth", "req-abort", applicantData("22345678901"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.client.Abort(context.Background(), operator, prep.IssuanceID, wire.AbortRequest{RequestID: "req-abort-a", Reason: "applicant left"})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != string(store.StateRevoked) || st.RevocationReason == nil || *st.RevocationReason != 0 {
		t.Fatalf("after abort: %+v", st)
	}
	if left := userKeysInToken(t, f.active.HSM); len(left) != 0 {
		t.Fatalf("user keys left: %v", left)
	}
	// The script is now useless: confirm is refused.
	responses, err := card.RunScript(context.Background(), prep.Script)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.Confirm(context.Background(), operator, prep.IssuanceID, wire.ConfirmRequest{RequestID: "req-abort-c", CardResponses: responses}); !errors.Is(err, raclient.ErrConflict) {
		t.Fatalf("confirm after abort: %v", err)
	}
}

// TestSweeperRevokesUnconfirmed: a prepared issuance not confirmed by the
// deadline is revoked with reason 0 by the sweeper.
func TestSweeperRevokesUnconfirmed(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	card, _, serial := f.newCard(t)
	prep, err := f.prepare(t, card, serial, "sign", "req-sweep", applicantData("32345678901"))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(deadline + time.Second)
	tick := make(chan time.Time)
	swept := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.svc.RunSweeper(ctx, tick, func(n int, err error) { swept <- n }) }()
	t.Cleanup(func() { cancel(); <-done })
	tick <- time.Now()
	if n := <-swept; n != 1 {
		t.Fatalf("sweeper revoked %d, want 1", n)
	}
	st, err := f.client.Status(context.Background(), operator, prep.IssuanceID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != string(store.StateRevoked) || st.RevocationReason == nil || *st.RevocationReason != 0 {
		t.Fatalf("after deadline: %+v", st)
	}
}

// TestExpiredCAKeyRefusesIssuance: TS Art. 8(3): past 4 years from the key's
// recorded generation, the CA key signs nothing; the issuance is revoked
// (reason 0) and no key stays in the HSM.
func TestExpiredCAKeyRefusesIssuance(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	rec, _ := f.active.State.Key(ceremony.RoleAuthCA)
	until := f.deps.Issuer.UserAuth.KeyUsableUntil
	if want := ceremony.UsableUntil(rec.Generated); until.After(want) {
		t.Fatalf("usable until %v, after generation + 4 years %v", until, want)
	}
	f.clock.Advance(time.Until(until) + time.Minute)
	card, _, serial := f.newCard(t)
	ctx := context.Background()
	iu, hc := func() ([]byte, []byte) {
		ch, err := f.svc.OpenChannel(ctx, f.caller)
		if err != nil {
			t.Fatal(err)
		}
		iu, err := card.InitializeUpdate(ctx, ch.HostChallenge)
		if err != nil {
			t.Fatal(err)
		}
		return iu, []byte(ch.ChannelID)
	}()
	_, err := f.svc.Prepare(ctx, f.caller, wire.PrepareRequest{RequestID: "req-expired", ChannelID: string(hc), CardSerial: serial,
		InitUpdateResponse: iu, CertType: "auth", Applicant: applicantData("42345678901")})
	if !errors.Is(err, issuer.ErrCAKeyExpired) {
		t.Fatalf("prepare with an expired CA key: %v, want %v", err, issuer.ErrCAKeyExpired)
	}
	is, err := f.st.IssuanceByRequest(ctx, f.caller.TerminalID, "req-expired")
	if err != nil {
		t.Fatal(err)
	}
	if is.State != store.StateRevoked || is.RevocationReason != 0 || len(is.DER) != 0 {
		t.Fatalf("issuance after refusal: state %s reason %d, %d certificate bytes", is.State, is.RevocationReason, len(is.DER))
	}
	if left := userKeysInToken(t, f.active.HSM); len(left) != 0 {
		t.Fatalf("user keys left: %v", left)
	}
}

// TestIssuanceFromKeyPool: the same path with a pre-generated key pool: the
// pool key is used once and destroyed by its wrap; the pool refills.
func TestIssuanceFromKeyPool(t *testing.T) {
	f := newFixture(t, fixtureOptions{poolSize: 2, poolWorkers: 1})
	ctx := context.Background()
	if err := f.deps.Pool.WaitFull(ctx); err != nil {
		t.Fatal(err)
	}
	card, _, serial := f.newCard(t)
	prep, st := f.issue(t, card, serial, "auth", "req-pool", applicantData("52345678901"))
	if st.State != string(store.StateDelivered) {
		t.Fatalf("state %s", st.State)
	}
	used := parseCert(t, prep.Certificate).PublicKey.(*rsa.PublicKey)
	if err := f.deps.Pool.WaitFull(ctx); err != nil {
		t.Fatal(err)
	}
	left := userKeysInToken(t, f.active.HSM)
	if len(left) != 2 {
		t.Fatalf("%d user keys in the token, want the 2 ready pool keys", len(left))
	}
	for _, k := range left {
		if k.Label != LabelPoolKey {
			t.Fatalf("non-pool user key left: %v", k)
		}
		pub, err := f.active.HSM.PublicKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if pub.Equal(used) {
			t.Fatal("the used pool key is still in the HSM")
		}
	}
}

// repeatKeys hands out one HSM-generated key whose fingerprint is already
// in the store, as a faulty generator repeating a key would.
type repeatKeys struct{ key *UserKey }

func (r repeatKeys) GenerateUserKey(context.Context) (issuance.UserKey, error) { return r.key, nil }

// TestRepeatedKeyRefused: TS Art. 5(iii): a public key generated before is
// refused at use time (store check), and the HSM copy is destroyed.
func TestRepeatedKeyRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	k, err := generate(ctx, f.active.HSM, LabelUserKey, false)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(k.RSAPublic())
	fp := sha256.Sum256(spki)
	if err := f.st.RecordKeyFingerprint(ctx, fp[:], time.Now()); err != nil {
		t.Fatal(err)
	}
	svc, err := issuance.New(issuance.Config{Store: f.st, Keys: repeatKeys{k}, Cards: f.deps.Cards, Issuer: f.deps.Issuer, Applicants: f.deps.Applicants})
	if err != nil {
		t.Fatal(err)
	}
	card, _, serial := f.newCard(t)
	ch, err := svc.OpenChannel(ctx, f.caller)
	if err != nil {
		t.Fatal(err)
	}
	iu, err := card.InitializeUpdate(ctx, ch.HostChallenge)
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Prepare(ctx, f.caller, wire.PrepareRequest{RequestID: "req-repeat", ChannelID: ch.ChannelID, CardSerial: serial,
		InitUpdateResponse: iu, CertType: "auth", Applicant: applicantData("62345678901")})
	if !errors.Is(err, store.ErrDuplicateKey) {
		t.Fatalf("prepare with a repeated key: %v, want %v", err, store.ErrDuplicateKey)
	}
	if left := userKeysInToken(t, f.active.HSM); len(left) != 0 {
		t.Fatalf("repeated key left in the HSM: %v", left)
	}
}
