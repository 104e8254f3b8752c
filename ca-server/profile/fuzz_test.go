package profile

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"math/big"
	"net/url"
	"reflect"
	"testing"
	"unicode/utf8"

	"madoguchi/ca-server/profiles"
)

// FuzzParseProfile: certificate profile loading (a deployment's override directory is
// outside input to the CA). Every refusal is one of the documented kinds; an accepted
// profile is one the issuer can use safely for every serial it may draw: sha256WithRSA, no
// CA key usages, personal data exactly for signature profiles, a subject that is unique per
// serial, DER-encodable and within the X.520 upper bound of 64 characters once {serial} is
// expanded (RFC 5280 Appendix A, ub-common-name etc.; serials up to 20 octets, §4.1.2.2),
// http URLs with a host; and the same JSON re-indented loads to the same profile.
func FuzzParseProfile(f *testing.F) {
	for _, name := range []string{"signature.json", "user-authentication.json"} {
		b, err := profiles.FS.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(bytes.Replace(b, []byte(`"{serial}"`), []byte(`"{serial}{serial}"`), 1))
		f.Add(bytes.Replace(b, []byte(`"crlShards": 1`), []byte(`"crlShards": 16`), 1))
		f.Add(bytes.Replace(b, []byte(`"keyUsage": [`), []byte(`"keyUsage": ["keyCertSign", `), 1))
		// {issuerKeyID} as the port: "00" makes a valid port, real hex does not.
		f.Add(bytes.Replace(b, []byte(`"http://crl.jpki.madoguchi.example/`), []byte(`"http://crl.example:{issuerKeyID}/`), 1))
	}
	f.Add([]byte(`{"name":"a","name":"b"}`))
	f.Add([]byte(`{}`))
	kinds := []error{ErrSyntax, ErrUnknownField, ErrDuplicateField, ErrWrongType, ErrMissingField, ErrBadName, ErrUnknownKind,
		ErrInvalidOID, ErrDuplicateOID, ErrUnsupportedAlgorithm, ErrUnknownKeyUsage, ErrKeyUsageNotAllowed, ErrDuplicateKeyUsage,
		ErrUnknownValidityRule, ErrBadURL, ErrUnknownPlaceholder, ErrBadCRLShards, ErrBadSubject, ErrSubjectNotUnique,
		ErrPersonalDataNotAllowed, ErrMissingAttribute, ErrAttributeOutsideArc}
	maxSerial := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(1)) // 20 octets, positive
	keyID := bytes.Repeat([]byte{0xAB}, 20)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.json", data)
		if err != nil {
			for _, k := range kinds {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("refusal of an undocumented kind: %v", err)
		}
		if p.SignatureAlgorithm != x509.SHA256WithRSA {
			t.Fatalf("accepted algorithm %v", p.SignatureAlgorithm)
		}
		if p.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageEncipherOnly|x509.KeyUsageDecipherOnly) != 0 {
			t.Fatalf("accepted key usage %b", p.KeyUsage)
		}
		if (p.Kind == KindSignature) != p.CarriesPersonalData() {
			t.Fatalf("%s profile with personal data %v", p.Kind, p.CarriesPersonalData())
		}
		for _, serial := range []*big.Int{big.NewInt(1), maxSerial} {
			dn := p.SubjectFor(serial)
			if _, err := asn1.Marshal(dn); err != nil {
				t.Fatalf("subject for %x does not encode: %v", serial, err)
			}
			for _, rdn := range dn {
				if v := rdn[0].Value.(string); utf8.RuneCountInString(v) > 64 {
					t.Fatalf("subject value of %d characters for serial %x: %q", utf8.RuneCountInString(v), serial, v)
				}
			}
		}
		if reflect.DeepEqual(p.SubjectFor(big.NewInt(1)), p.SubjectFor(big.NewInt(2))) {
			t.Fatal("two serials share a subject")
		}
		for _, s := range []string{p.CRLURLFor(keyID, big.NewInt(1)), p.CRLURLFor(keyID, maxSerial), p.OCSPURL(keyID)} {
			u, err := url.Parse(s)
			if err != nil || u.Scheme != "http" || u.Host == "" {
				t.Fatalf("accepted url %q: %v", s, err)
			}
		}
		var indented bytes.Buffer
		if err := json.Indent(&indented, data, "", "\t"); err != nil {
			t.Fatalf("accepted JSON does not indent: %v", err)
		}
		q, err := Parse("fuzz.json", indented.Bytes())
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("re-indented profile: %v", err)
		}
	})
}
