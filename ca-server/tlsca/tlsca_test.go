package tlsca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/store"
	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
)

func TestLoadOrCreateKeepsKeyPrivateAndStable(t *testing.T) {
	dir := t.TempDir()
	c1, k1, err := LoadOrCreate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, caKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v, want 0600", fi.Mode().Perm(), err)
	}
	c2, k2, err := LoadOrCreate(dir, time.Now())
	if err != nil || !c1.Equal(c2) || !k1.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
		t.Fatalf("second load differs: %v", err)
	}
	if c1.NotAfter.Sub(c1.NotBefore) > MaxCAValidity+time.Hour || !hasPolicy(c1) {
		t.Fatalf("CA validity %v, policy %v", c1.NotAfter.Sub(c1.NotBefore), c1.Policies)
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := New(c1, other, st, nil); err == nil {
		t.Fatal("signer not matching the certificate accepted")
	}
	ca, err := New(c1, k1, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ca.ServerCertificate([]string{"127.0.0.1", "ca.example"})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Leaf.NotAfter.After(c1.NotAfter) || len(sc.Leaf.IPAddresses) != 1 || sc.Leaf.DNSNames[0] != "ca.example" {
		t.Fatalf("server certificate %v %v %v", sc.Leaf.NotAfter, sc.Leaf.IPAddresses, sc.Leaf.DNSNames)
	}
	// only one of the two files present: refuse rather than overwrite
	os.Remove(filepath.Join(dir, caCertFile))
	if _, _, err := LoadOrCreate(dir, time.Now()); err == nil {
		t.Fatal("half-present CA accepted")
	}
}

func TestValidMunicipality(t *testing.T) {
	for code, ok := range map[string]bool{"131016": true, "011002": true, "271004": true, "141003": true,
		"131017": false, "13101": false, "13101a": false, "": false} {
		if err := ValidMunicipality(code); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", code, err, ok)
		}
	}
}

// flakySigner fails its first `fail` signatures, like an HSM session lost
// mid-request.
type flakySigner struct {
	crypto.Signer
	fail int
}

func (f *flakySigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	if f.fail > 0 {
		f.fail--
		return nil, errors.New("hsm: session lost")
	}
	return f.Signer.Sign(r, d, o)
}

func newCSR(t *testing.T) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "terminal"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func openTestStore(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A failed signature leaves the enrolment token usable and records no
// terminal; the retry enrols, and records the certificate's fingerprint
// with the terminal in the same step; the token is then spent.
func TestEnrolmentTokenSpentOnlyWhenCertificateStored(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cert, key, err := LoadOrCreate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st := openTestStore(t)
	signer := &flakySigner{Signer: key, fail: 1}
	ca, err := New(cert, signer, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ca.NewEnrolmentToken(ctx, "131016", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Enroll(ctx, tok, newCSR(t)); wire.CodeOf(err) != wire.CodeInternal {
		t.Fatalf("enrol with a failing signer: %v", err)
	}
	enr, err := ca.Enroll(ctx, tok, newCSR(t))
	if err != nil {
		t.Fatalf("retry with the same token after a failed signature: %v", err)
	}
	leaf, err := x509.ParseCertificate(enr.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	term, err := st.TerminalBySerial(ctx, SerialHex(leaf))
	fp := sha256.Sum256(enr.Certificate)
	if err != nil || term.ID != enr.TerminalID || !bytes.Equal(term.CertSHA256, fp[:]) || term.Municipality != "131016" || leaf.Subject.OrganizationalUnit[0] != "131016" {
		t.Fatalf("terminal record %+v %v", term, err)
	}
	if _, err := ca.Enroll(ctx, tok, newCSR(t)); wire.CodeOf(err) != wire.CodeTokenInvalid {
		t.Fatalf("third use of the token: %v", err)
	}
}

// A CA opened without its key (a local command without custodians) makes
// tokens and revokes terminals but signs nothing.
func TestPublicCASignsNothing(t *testing.T) {
	ctx := context.Background()
	cert, _, err := LoadOrCreate(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewPublic(cert, openTestStore(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ca.HasKey() {
		t.Fatal("public CA claims a key")
	}
	tok, err := ca.NewEnrolmentToken(ctx, "131016", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Enroll(ctx, tok, newCSR(t)); !errors.Is(err, ErrNoCAKey) || wire.CodeOf(err) != wire.CodeUnavailable {
		t.Fatalf("enrol without the key: %v", err)
	}
	if _, err := ca.ServerCertificate([]string{"127.0.0.1"}); !errors.Is(err, ErrNoCAKey) {
		t.Fatalf("server certificate without the key: %v", err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := ca.VerifierCertificate("rp", k.Public()); !errors.Is(err, ErrNoCAKey) {
		t.Fatalf("verifier certificate without the key: %v", err)
	}
}

// The TLS CA key in a real SoftHSM token: SelfSign makes the CA
// certificate, and server, terminal and verifier certificates chain to it.
func TestHSMKeyTLSCA(t *testing.T) {
	ctx := context.Background()
	tok := testenv.SoftHSM(t)
	t.Setenv("MADOGUCHI_TEST_TLSCA_PIN", tok.UserPIN)
	h, err := hsm.Open(hsm.Config{ModulePath: tok.Module, SoftHSMConf: tok.ConfPath, TokenLabel: tok.TokenLabel,
		PINSource: "env:MADOGUCHI_TEST_TLSCA_PIN", PoolSize: 1})
	if err != nil {
		t.Fatalf("open softhsm: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	kp, err := h.GenerateRSA(ctx, "TLS-CA", hsm.KeyOptions{Token: true})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := h.Signer(kp)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := SelfSign(rand.Reader, signer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteCertificate(dir, cert); err != nil {
		t.Fatal(err)
	}
	if err := WriteCertificate(dir, cert); err != nil {
		t.Fatalf("rewriting the same certificate: %v", err)
	}
	other, _, _ := LoadOrCreate(t.TempDir(), time.Now())
	if err := WriteCertificate(dir, other); err == nil {
		t.Fatal("another CA certificate replaced tls-ca.crt")
	}
	if fi, err := os.Stat(CertificatePath(dir)); err != nil || fi.Mode().Perm() != 0o644 || HasFileKey(dir) {
		t.Fatalf("certificate file: %v %v", fi.Mode(), err)
	}
	ca, err := New(cert, signer, openTestStore(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := ca.Pool()
	sc, err := ca.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("server certificate does not chain to the HSM CA: %v", err)
	}
	tk, err := ca.NewEnrolmentToken(ctx, "131016", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	enr, err := ca.Enroll(ctx, tk, newCSR(t))
	if err != nil {
		t.Fatal(err)
	}
	vk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	vder, err := ca.VerifierCertificate("relying-party", vk.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, der := range [][]byte{enr.Certificate, vder} {
		c, _ := x509.ParseCertificate(der)
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("client certificate %q does not chain: %v", c.Subject.CommonName, err)
		}
	}
}
