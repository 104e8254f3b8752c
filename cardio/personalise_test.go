package cardio_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"madoguchi/cardio"
	"madoguchi/cardio/perso"
	"madoguchi/cardio/scp"
	"madoguchi/cardio/vcard"
)

// stockIssuer draws issuer master keys at test time (never committed) and makes card stock
// from them the way the CA and the card manufacturer do: diversified card keys → card-key
// batch file → blank card state files (vcard.MakeStock) → a card loaded from its file.
func stockIssuer(t testing.TB) *scp.SoftwareIssuer {
	t.Helper()
	m := make([]byte, 48)
	if _, err := rand.Read(m); err != nil {
		t.Fatal(err)
	}
	return &scp.SoftwareIssuer{MasterENC: m[:16], MasterMAC: m[16:32], MasterDEK: m[32:]}
}

// stockCard makes one blank card of issuer's stock with a random serial, through a key
// batch file and vcard.MakeStock, and opens it from its state file.
func stockCard(t testing.TB, issuer *scp.SoftwareIssuer) *vcard.Card {
	t.Helper()
	dir := t.TempDir()
	serial := make([]byte, scp.SerialLen)
	if _, err := rand.Read(serial); err != nil {
		t.Fatal(err)
	}
	keys, err := issuer.CardKeys(serial)
	if err != nil {
		t.Fatal(err)
	}
	batch := filepath.Join(dir, "batch.txt")
	f, err := os.OpenFile(batch, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := vcard.WriteKeyBatch(f, []vcard.StockEntry{{Serial: serial, Keys: keys}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = os.Open(batch)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := vcard.ParseKeyBatch(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	paths, err := vcard.MakeStock(filepath.Join(dir, "stock"), entries)
	if err != nil || len(paths) != 1 {
		t.Fatalf("make stock: %v (%d cards)", err, len(paths))
	}
	card, err := vcard.Open(paths[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if card.Lifecycle() != vcard.LifecycleBlank || !bytes.Equal(card.Serial(), serial) {
		t.Fatalf("stock card: lifecycle %s serial %X", card.Lifecycle(), card.Serial())
	}
	return card
}

// testPKI is what the CA issues for one applicant, made at test time with crypto/x509: a
// user-auth CA and a signature CA (RSA-2048, self-signed), and the two user key pairs with
// their certificates signed by the matching CA.
type testPKI struct {
	AuthKey, SignKey       *rsa.PrivateKey
	AuthCert, SignCert     []byte
	AuthCACert, SignCACert []byte
	AuthPIN, SignPIN       string
}

var pki struct {
	once sync.Once
	p    *testPKI
	err  error
}

// issuedPKI returns the test binary's PKI (generated once: RSA key generation dominates).
func issuedPKI(t testing.TB) *testPKI {
	t.Helper()
	pki.once.Do(func() { pki.p, pki.err = newTestPKI() })
	if pki.err != nil {
		t.Fatal(pki.err)
	}
	return pki.p
}

func newTestPKI() (*testPKI, error) {
	keys := make([]*rsa.PrivateKey, 4)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	now := time.Now()
	ca := func(key *rsa.PrivateKey, cn string, serial int64) (*x509.Certificate, []byte, error) {
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, CommonName: cn},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.AddDate(10, 0, 0),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, err
		}
		c, err := x509.ParseCertificate(der)
		return c, der, err
	}
	leaf := func(parent *x509.Certificate, parentKey, key *rsa.PrivateKey, cn string, serial int64, ku x509.KeyUsage) ([]byte, error) {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{Country: []string{"JP"}, CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.AddDate(5, 0, 0),
			KeyUsage:     ku,
		}
		return x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	}
	p := &testPKI{AuthKey: keys[0], SignKey: keys[1], AuthPIN: "2580", SignPIN: "MADO2024"}
	authCA, authCADER, err := ca(keys[2], "Test User Authentication CA", 0x1001)
	if err != nil {
		return nil, err
	}
	signCA, signCADER, err := ca(keys[3], "Test Signature CA", 0x2002)
	if err != nil {
		return nil, err
	}
	p.AuthCACert, p.SignCACert = authCADER, signCADER
	if p.AuthCert, err = leaf(authCA, keys[2], keys[0], "Test User Authentication 0001", 0x0A0A0A, x509.KeyUsageDigitalSignature); err != nil {
		return nil, err
	}
	if p.SignCert, err = leaf(signCA, keys[3], keys[1], "Test Signature 0002", 0x0B0B0B0B, x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment); err != nil {
		return nil, err
	}
	return p, nil
}

// personalise runs the whole card side of an issuance over api, as the counter terminal does
// with the CA (docs/CARD-PROTOCOL.md §6): host challenge, INITIALIZE UPDATE (with the serial) relayed
// to the (software) CA, the CA's protected script built with perso (two keys, two
// certificates, two CA certificates) relayed by RunScript, the CA's check of every response,
// the applicant's two PINs, and the read-back check on the same card. It fails with the first
// error; the test or benchmark decides what that means.
func personalise(ctx context.Context, api *cardio.Card, issuer *scp.SoftwareIssuer, p *testPKI) error {
	hc, err := scp.NewHostChallenge(rand.Reader)
	if err != nil {
		return err
	}
	initResp, err := api.InitializeUpdate(ctx, hc)
	if err != nil {
		return err
	}
	// The serial comes with the INITIALIZE UPDATE answer: no separate serial query.
	serial := bytes.Clone(initResp[:scp.SerialLen])
	sess, err := scp.NewHostSession(ctx, issuer, hc, initResp)
	if err != nil {
		return err
	}
	script, err := perso.BuildIssuanceScript(ctx, sess,
		perso.ImportKey{FID: perso.FIDUserAuthKey, Key: perso.SoftwareKey{Issuer: issuer, Key: p.AuthKey}},
		perso.ImportKey{FID: perso.FIDSignatureKey, Key: perso.SoftwareKey{Issuer: issuer, Key: p.SignKey}},
		perso.WriteFile{FID: perso.FIDUserAuthCert, Content: p.AuthCert},
		perso.WriteFile{FID: perso.FIDSignatureCert, Content: p.SignCert},
		perso.WriteFile{FID: perso.FIDUserAuthCACert, Content: p.AuthCACert},
		perso.WriteFile{FID: perso.FIDSignatureCACert, Content: p.SignCACert},
	)
	if err != nil {
		return err
	}
	responses, err := api.RunScript(ctx, script.APDUs())
	if err != nil {
		return err
	}
	if _, err := perso.VerifyResponses(sess, script.WithoutAPDUs(), responses); err != nil {
		return fmt.Errorf("ca refused the card's responses: %w", err)
	}
	if err := api.SetPIN(ctx, cardio.UserAuth, []byte(p.AuthPIN)); err != nil {
		return err
	}
	if err := api.SetPIN(ctx, cardio.Signature, []byte(p.SignPIN)); err != nil {
		return err
	}
	// Read-back on the same card (DOMAIN §4.7: verify what was written; only then delivered).
	if err := api.CheckSerial(ctx, serial); err != nil {
		return err
	}
	if err := api.VerifyPIN(ctx, cardio.Signature, []byte(p.SignPIN)); err != nil {
		return err
	}
	certs, err := api.ReadCertificates(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(certs.UserAuth, p.AuthCert) || !bytes.Equal(certs.Signature, p.SignCert) ||
		!bytes.Equal(certs.UserAuthCA, p.AuthCACert) || !bytes.Equal(certs.SignatureCA, p.SignCACert) || len(certs.Missing) != 0 {
		return errors.New("read-back differs from what was issued")
	}
	return nil
}
