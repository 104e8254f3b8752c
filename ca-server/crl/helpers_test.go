package crl_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testCA is a CA certificate and its key, generated at test time.
type testCA struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
	pem  string // path of the certificate in PEM
}

var (
	caOnce sync.Once
	caKey  *rsa.PrivateKey
	caErr  error
)

// newTestCA makes a JPKI-like CA (RSA 2048, keyCertSign|cRLSign, SKI).
// The key is generated once per test binary (57 ms each otherwise).
func newTestCA(t testing.TB) *testCA {
	t.Helper()
	caOnce.Do(func() { caKey, caErr = rsa.GenerateKey(rand.Reader, 2048) })
	if caErr != nil {
		t.Fatal(caErr)
	}
	return newTestCAWithKey(t, caKey, "JPKI for user authentication CA (test)")
}

func newTestCAWithKey(t testing.TB, key *rsa.PrivateKey, cn string) *testCA {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ski := sha1.Sum(spki)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, OrganizationalUnit: []string{"JPKI for user authentication"}, CommonName: cn},
		NotBefore:             time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: path}
}
