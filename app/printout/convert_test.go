package printout

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"madoguchi/app/apperr"
)

// TestCopyOfRefuses: the kind comes from the caller now (it came from a ca-server profile), so
// an unknown kind is refused as a non-end-entity profile was; a user-authentication certificate
// with anything under J-LIS's personal-data arc, and a signature certificate without the four
// items, are refused (CPS §3.1, §7.1; TS Art. 11).
func TestCopyOfRefuses(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(ext ...pkix.Extension) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "7"},
			NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0), ExtraExtensions: ext}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	plain := mk()
	formerSurname := mk(pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 7}, Value: []byte{0x0c, 0x01, 'x'}})
	if _, err := SummaryOf(plain, 0); !errors.Is(err, apperr.InvalidInput) {
		t.Errorf("SummaryOf(kind 0) = %v", err)
	}
	if _, err := CopyOf(plain, CertKind(9)); !errors.Is(err, apperr.InvalidInput) {
		t.Errorf("CopyOf(kind 9) = %v", err)
	}
	if _, err := CopyOf(formerSurname, UserAuth); !errors.Is(err, apperr.InvalidInput) {
		t.Errorf("user-authentication certificate with personal data: %v", err)
	}
	if _, err := CopyOf(plain, Signature); !errors.Is(err, apperr.InvalidInput) {
		t.Errorf("signature certificate without the four items: %v", err)
	}
	if c, err := CopyOf(plain, UserAuth); err != nil || c.Personal != nil || c.Kind != UserAuth {
		t.Errorf("user-authentication copy = %+v, %v", c, err)
	}
}
