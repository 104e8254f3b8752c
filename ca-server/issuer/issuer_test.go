package issuer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/profile"
)

// Keys are generated at test time, once per test binary, and never written
// anywhere but t.TempDir.
var (
	keysOnce               sync.Once
	caKey, userKey, altKey *rsa.PrivateKey
	keysErr                error
)

func testKeys(tb testing.TB) (ca, user, alt *rsa.PrivateKey) {
	tb.Helper()
	keysOnce.Do(func() {
		for _, k := range []**rsa.PrivateKey{&caKey, &userKey, &altKey} {
			if *k, keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
				return
			}
		}
	})
	if keysErr != nil {
		tb.Fatal(keysErr)
	}
	return caKey, userKey, altKey
}

var (
	caNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fixedNow    = time.Date(2025, 6, 10, 3, 0, 0, 0, time.UTC) // 12:00 JST
)

// newCACert makes a self-signed CA certificate valid 10 years (CPS §6.3.2.1).
func newCACert(tb testing.TB, key *rsa.PrivateKey, notBefore time.Time, mutate func(*x509.Certificate)) *x509.Certificate {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, OrganizationalUnit: []string{"Madoguchi Test CA"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if mutate != nil {
		mutate(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

func loadProfile(tb testing.TB, name string) *profile.Profile {
	tb.Helper()
	s, err := profile.Default()
	if err != nil {
		tb.Fatal(err)
	}
	p, err := s.Get(name)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func testApplicant(now time.Time) *applicant.Applicant {
	today := applicant.DateOf(now)
	return &applicant.Applicant{
		Name:         applicant.Text{Value: "𠮷田　髙橋", Substitutes: []int{1, 4}},
		NameKana:     "ヨシダ　タカハシ",
		BirthDate:    applicant.NewDate(1990, 5, 14),
		Sex:          applicant.SexFemale,
		Address:      applicant.Text{Value: "東京都千代田区霞が関二丁目1番2号", Substitutes: []int{6}},
		ResidentCode: "12345678901",
		CardExpiry:   applicant.NewDate(today.Year+8, 12, 31),
	}
}

func newTestIssuer(tb testing.TB, now time.Time) *Issuer {
	tb.Helper()
	ca, _, _ := testKeys(tb)
	cert := newCACert(tb, ca, now.Add(-time.Hour), nil)
	iss, err := New(Config{
		Certificate:    cert,
		Signer:         ca,
		KeyUsableUntil: cert.NotBefore.AddDate(4, 0, 0),
		Now:            func() time.Time { return now },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return iss
}

func TestNewRefuses(t *testing.T) {
	ca, _, alt := testKeys(t)
	good := newCACert(t, ca, caNotBefore, nil)
	until := caNotBefore.AddDate(4, 0, 0)
	now := func() time.Time { return fixedNow }
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no certificate", Config{Signer: ca, KeyUsableUntil: until, Now: now}, ErrMissingConfig},
		{"no signer", Config{Certificate: good, KeyUsableUntil: until, Now: now}, ErrMissingConfig},
		{"no usage end", Config{Certificate: good, Signer: ca, Now: now}, ErrMissingConfig},
		{"not a CA", Config{Certificate: newCACert(t, ca, caNotBefore, func(c *x509.Certificate) {
			c.IsCA = false
			c.KeyUsage = x509.KeyUsageDigitalSignature
		}), Signer: ca, KeyUsableUntil: until, Now: now}, ErrNotCA},
		{"no cRLSign", Config{Certificate: newCACert(t, ca, caNotBefore, func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageCertSign
		}), Signer: ca, KeyUsableUntil: until, Now: now}, ErrCACertKeyUsage},
		{"no keyCertSign", Config{Certificate: newCACert(t, ca, caNotBefore, func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		}), Signer: ca, KeyUsableUntil: until, Now: now}, ErrCACertKeyUsage},
		{"1024-bit CA key", Config{Certificate: newCACert(t, small, caNotBefore, nil), Signer: small, KeyUsableUntil: until, Now: now}, ErrCAKeyNotRSA2048},
		{"signer key does not match", Config{Certificate: good, Signer: alt, KeyUsableUntil: until, Now: now}, ErrKeyMismatch},
		{"usage period over 4 years", Config{Certificate: good, Signer: ca, KeyUsableUntil: until.Add(time.Second), Now: now}, ErrKeyUsagePeriodTooLong},
		{"usage period over", Config{Certificate: good, Signer: ca, KeyUsableUntil: until,
			Now: func() time.Time { return until }}, ErrCAKeyExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			iss, err := New(tc.cfg)
			if !errors.Is(err, tc.want) || iss != nil {
				t.Fatalf("New = %v, %v; want %v", iss, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "issuer: ") {
				t.Errorf("error %q lacks prefix", err)
			}
		})
	}
	if _, err := New(Config{Certificate: good, Signer: ca, KeyUsableUntil: until, Now: now}); err != nil {
		t.Fatalf("good config: %v", err)
	}
}

// fakeRSAKey is a public key of the given size; Issue must refuse it before
// using it, so it need not be a real key.
func fakeRSAKey(bits, e int) *rsa.PublicKey {
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.Add(n, big.NewInt(1))
	return &rsa.PublicKey{N: n, E: e}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestIssueRefuses(t *testing.T) {
	ca, user, _ := testKeys(t)
	sig := loadProfile(t, "signature")
	noFormer := *sig
	noFormer.Attributes = map[profile.Attribute]profile.AttributeOIDs{}
	for k, v := range sig.Attributes {
		if k != profile.AttrFormerSurname {
			noFormer.Attributes[k] = v
		}
	}
	noSubs := *sig
	noSubs.Attributes = map[profile.Attribute]profile.AttributeOIDs{}
	for k, v := range sig.Attributes {
		v.Substitutes = nil
		noSubs.Attributes[k] = v
	}
	fiveYears := *sig
	fiveYears.Validity = "five-years"

	cases := []struct {
		name    string
		now     time.Time // zero: fixedNow
		ctx     func() context.Context
		rand    io.Reader
		req     func(r *Request)
		want    error
		wantToo error
	}{
		{name: "no profile", req: func(r *Request) { r.Profile = nil }, want: ErrNoProfile},
		{name: "unsupported validity", req: func(r *Request) { r.Profile = &fiveYears }, want: ErrUnsupportedValidity},
		{name: "no key", req: func(r *Request) { r.PublicKey = nil }, want: ErrNoSubjectKey},
		{name: "1024-bit key", req: func(r *Request) { r.PublicKey = fakeRSAKey(1024, 65537) }, want: ErrSubjectKeySize},
		{name: "2047-bit key", req: func(r *Request) { r.PublicKey = fakeRSAKey(2047, 65537) }, want: ErrSubjectKeySize},
		{name: "3072-bit key", req: func(r *Request) { r.PublicKey = fakeRSAKey(3072, 65537) }, want: ErrSubjectKeySize},
		{name: "4096-bit key", req: func(r *Request) { r.PublicKey = fakeRSAKey(4096, 65537) }, want: ErrSubjectKeySize},
		{name: "exponent 3", req: func(r *Request) { r.PublicKey = &rsa.PublicKey{N: user.N, E: 3} }, want: ErrSubjectKeyExponent},
		{name: "CA key as subject key", req: func(r *Request) { r.PublicKey = &ca.PublicKey }, want: ErrSubjectKeyIsCAKey},
		{name: "no applicant", req: func(r *Request) { r.Applicant = nil }, want: ErrNoApplicant},
		{name: "invalid applicant", req: func(r *Request) { r.Applicant.Sex = 9 }, want: ErrInvalidApplicant, wantToo: applicant.ErrUnknownSexCode},
		{name: "card expired", req: func(r *Request) { r.Applicant.CardExpiry = applicant.NewDate(2025, 6, 9) }, want: ErrInvalidApplicant, wantToo: applicant.ErrCardExpired},
		{name: "former surname, profile lacks it", req: func(r *Request) {
			r.Profile = &noFormer
			r.Applicant.FormerSurname = applicant.Text{Value: "齋藤"}
		}, want: ErrProfileLacksAttribute},
		{name: "substitutes, profile lacks the OID", req: func(r *Request) { r.Profile = &noSubs }, want: ErrProfileLacksAttribute},
		{name: "renewal outside window", req: func(r *Request) {
			r.Applicant.EarlyRenewal, r.Applicant.CurrentExpiry = true, applicant.NewDate(2026, 1, 1)
		}, want: ErrNotInRenewalWindow},
		{name: "outlives CA certificate", req: func(r *Request) { r.Applicant.BirthDate = applicant.NewDate(1990, 1, 2) }, now: time.Date(2028, 12, 1, 0, 0, 0, 0, time.UTC), want: ErrOutlivesCA},
		{name: "CA key usage over", now: caNotBefore.AddDate(4, 0, 0), want: ErrCAKeyExpired},
		{name: "before CA certificate", now: caNotBefore.Add(-time.Second), want: ErrCACertNotValid},
		{name: "context cancelled", ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, want: context.Canceled},
		{name: "randomness fails", rand: errReader{io.ErrUnexpectedEOF}, want: ErrSerial, wantToo: io.ErrUnexpectedEOF},
		{name: "randomness all zero", rand: bytes.NewReader(make([]byte, 64)), want: ErrSerial},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := fixedNow
			if !tc.now.IsZero() {
				now = tc.now
			}
			cert := newCACert(t, ca, caNotBefore, func(c *x509.Certificate) { c.NotAfter = caNotBefore.AddDate(8, 0, 0) })
			iss, err := New(Config{Certificate: cert, Signer: ca, KeyUsableUntil: caNotBefore.AddDate(4, 0, 0),
				Now: func() time.Time { return fixedNow }, Rand: tc.rand})
			if err != nil {
				t.Fatal(err)
			}
			iss.now = func() time.Time { return now } // the clock moves after start-up
			req := Request{Profile: sig, Applicant: testApplicant(now), PublicKey: &user.PublicKey}
			if tc.req != nil {
				tc.req(&req)
			}
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			got, err := iss.Issue(ctx, req)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Issue = %v, %v; want %v", got, err, tc.want)
			}
			if tc.wantToo != nil && !errors.Is(err, tc.wantToo) {
				t.Errorf("Issue error %v does not wrap %v", err, tc.wantToo)
			}
			if !strings.HasPrefix(err.Error(), "issuer: ") {
				t.Errorf("error %q lacks prefix", err)
			}
			if strings.Contains(err.Error(), "12345678901") || strings.Contains(err.Error(), "髙橋") {
				t.Errorf("error %q leaks personal data", err)
			}
		})
	}
}

func issue(t *testing.T, iss *Issuer, p *profile.Profile, a *applicant.Applicant, pub *rsa.PublicKey) (*Issued, *x509.Certificate) {
	t.Helper()
	got, err := iss.Issue(context.Background(), Request{Profile: p, Applicant: a, PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(got.DER)
	if err != nil {
		t.Fatal(err)
	}
	return got, cert
}

func TestIssueCertificateContents(t *testing.T) {
	_, user, _ := testKeys(t)
	iss := newTestIssuer(t, fixedNow)
	for _, name := range []string{"signature", "user-authentication"} {
		t.Run(name, func(t *testing.T) {
			p := loadProfile(t, name)
			a := testApplicant(fixedNow)
			got, cert := issue(t, iss, p, a, &user.PublicKey)

			if err := cert.CheckSignatureFrom(iss.Certificate()); err != nil {
				t.Fatalf("signature: %v", err)
			}
			if cert.SignatureAlgorithm != x509.SHA256WithRSA {
				t.Errorf("algorithm %v", cert.SignatureAlgorithm)
			}
			if cert.SerialNumber.Cmp(got.Serial) != 0 || cert.SerialNumber.Sign() <= 0 || len(cert.SerialNumber.Bytes()) > 16 {
				t.Errorf("serial %x", cert.SerialNumber)
			}
			if !cert.NotBefore.Equal(fixedNow) || !cert.NotAfter.Equal(endOf(2030, 5, 14)) || !got.NotAfter.Equal(cert.NotAfter) {
				t.Errorf("validity %v – %v", cert.NotBefore, cert.NotAfter)
			}
			if cert.KeyUsage != p.KeyUsage || cert.IsCA || !cert.BasicConstraintsValid {
				t.Errorf("key usage %v, CA %v", cert.KeyUsage, cert.IsCA)
			}
			if !reflect.DeepEqual(cert.PolicyIdentifiers, p.Policies) {
				t.Errorf("policies %v, want %v", cert.PolicyIdentifiers, p.Policies)
			}
			if len(cert.CRLDistributionPoints) != 1 || !strings.Contains(cert.CRLDistributionPoints[0], "/"+name+"/") {
				t.Errorf("CRL DP %v", cert.CRLDistributionPoints)
			}
			if len(cert.OCSPServer) != 1 || len(cert.AuthorityKeyId) == 0 || len(cert.SubjectKeyId) == 0 {
				t.Errorf("OCSP %v, AKI %x, SKI %x", cert.OCSPServer, cert.AuthorityKeyId, cert.SubjectKeyId)
			}
			wantSubject := "CN=" + strings.ToUpper(got.Serial.Text(16)) + ",OU=" + p.Subject[2].Value + ",O=JPKI,C=JP"
			if cert.Subject.String() != wantSubject {
				t.Errorf("subject %q, want %q", cert.Subject, wantSubject)
			}
			for _, e := range cert.Extensions {
				if HasPersonalData(&x509.Certificate{Extensions: []pkix.Extension{e}}) && e.Critical {
					t.Errorf("critical personal extension %v", e.Id)
				}
			}
			if name == "user-authentication" {
				assertNoPersonalData(t, cert, a)
			} else if !HasPersonalData(cert) {
				t.Error("signature certificate carries no personal data")
			}
		})
	}
}

// assertNoPersonalData proves CPS §3.1, §7.1 for a user-authentication
// certificate: no extension under the personal arc, and none of the
// applicant's data anywhere in the DER.
func assertNoPersonalData(t *testing.T, cert *x509.Certificate, a *applicant.Applicant) {
	t.Helper()
	if HasPersonalData(cert) {
		t.Error("user-authentication certificate has a personal-attribute extension")
	}
	for _, s := range []string{a.Name.Value, "𠮷", "髙橋", a.NameKana, a.Address.Value, "霞が関", a.BirthDate.Compact(), string(a.ResidentCode)} {
		if bytes.Contains(cert.Raw, []byte(s)) {
			t.Errorf("certificate contains %q", s)
		}
	}
	if strings.Contains(cert.Subject.String(), "𠮷") || len(cert.Subject.Names) != 4 {
		t.Errorf("subject %v", cert.Subject)
	}
}

func TestAttributesRoundTrip(t *testing.T) {
	_, user, _ := testKeys(t)
	iss := newTestIssuer(t, fixedNow)
	sig := loadProfile(t, "signature")
	cases := map[string]func(a *applicant.Applicant){
		"BMP and non-BMP with substitutes": func(a *applicant.Applicant) {},
		"no substitutes":                   func(a *applicant.Applicant) { a.Name.Substitutes, a.Address.Substitutes = nil, nil },
		"former surname": func(a *applicant.Applicant) {
			a.FormerSurname = applicant.Text{Value: "𩸽山", Substitutes: []int{0}}
		},
		"alias": func(a *applicant.Applicant) { a.Alias = applicant.Text{Value: "SMITH 𠀋子"} },
		"variation selector, male": func(a *applicant.Applicant) {
			a.Name = applicant.Text{Value: "葛\U000E0100城　太郎"}
			a.Sex = applicant.SexMale
		},
		"29 Feb birth": func(a *applicant.Applicant) { a.BirthDate = applicant.NewDate(2000, 2, 29) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			a := testApplicant(fixedNow)
			mutate(a)
			_, cert := issue(t, iss, sig, a, &user.PublicKey)
			got, err := DecodeAttributes(cert, sig)
			if err != nil {
				t.Fatal(err)
			}
			want := &Attributes{Name: a.Name, Sex: a.Sex, BirthDate: a.BirthDate, Address: a.Address, FormerSurname: a.FormerSurname, Alias: a.Alias}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v\nwant    %+v", got, want)
			}
			if bytes.Contains(cert.Raw, []byte(a.NameKana)) {
				t.Error("name kana is in the certificate (TS Art. 11 does not list it)")
			}
		})
	}
}

// signWith issues a certificate directly with x509 so that DecodeAttributes
// can be shown malformed input.
func signWith(t *testing.T, exts []pkix.Extension) *x509.Certificate {
	t.Helper()
	ca, user, _ := testKeys(t)
	parent := newCACert(t, ca, caNotBefore, nil)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: caNotBefore, NotAfter: caNotBefore.AddDate(1, 0, 0), ExtraExtensions: exts}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &user.PublicKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestDecodeAttributesRejects(t *testing.T) {
	sig := loadProfile(t, "signature")
	ua := loadProfile(t, "user-authentication")
	layout, _ := sig.Layout()
	utf := func(s string) []byte { b, _ := asn1.MarshalWithParams(s, "utf8"); return b }
	// san builds a subjectAltName from (type-id, value DER) pairs, so that
	// malformed values can be shown.
	san := func(entries ...[2]any) pkix.Extension {
		var names []asn1.RawValue
		for _, e := range entries {
			oidDER, _ := asn1.Marshal(e[0].(asn1.ObjectIdentifier))
			val, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: e[1].([]byte)})
			names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oidDER, val...)})
		}
		v, _ := asn1.Marshal(names)
		return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: v}
	}
	entries := func() [][2]any {
		return [][2]any{
			{layout.Name, utf("山田\u3000花子")}, {layout.BirthDate, utf("419900514")}, {layout.Sex, utf("1")},
			{layout.Address, utf("東京都")}, {layout.NamePositions, utf("00000")}, {layout.AddressPositions, utf("000")},
		}
	}
	with := func(i int, v []byte) func() []pkix.Extension {
		return func() []pkix.Extension { e := entries(); e[i][1] = v; return []pkix.Extension{san(e...)} }
	}
	basic := func() []pkix.Extension { return []pkix.Extension{san(entries()...)} }
	if _, err := DecodeAttributes(signWith(t, basic()), sig); err != nil {
		t.Fatalf("well-formed: %v", err)
	}
	printable, _ := asn1.MarshalWithParams("419900514", "printable")
	subs, _ := asn1.Marshal([]int{1, 1})
	fs := func() []pkix.Extension {
		return append(basic(), pkix.Extension{Id: sig.Attributes[profile.AttrFormerSurname].OID, Value: utf("齋藤")})
	}
	cases := []struct {
		name string
		exts func() []pkix.Extension
		p    *profile.Profile
		want error
	}{
		{"no subjectAltName", func() []pkix.Extension { return nil }, sig, ErrMissingAttribute},
		{"missing address positions", func() []pkix.Extension { return []pkix.Extension{san(entries()[:5]...)} }, sig, ErrMissingAttribute},
		{"critical 旧氏", func() []pkix.Extension { e := fs(); e[1].Critical = true; return e }, sig, ErrCriticalAttribute},
		{"unknown OID under arc", func() []pkix.Extension {
			return append(basic(), pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 99}, Value: utf("x")})
		}, sig, ErrUnknownAttribute},
		{"PrintableString date", with(1, printable), sig, ErrMalformedAttribute},
		{"trailing bytes", with(0, append(utf("山田"), 0)), sig, ErrMalformedAttribute},
		{"bad date", with(1, utf("419900230")), sig, ErrMalformedAttribute},
		{"bare YYYYMMDD", with(1, utf("19900514")), sig, ErrMalformedAttribute},
		{"wrong era", with(1, utf("319900514")), sig, ErrMalformedAttribute},
		{"sex 9", with(2, utf("9")), sig, ErrMalformedAttribute},
		{"positions too short", with(4, utf("0000")), sig, ErrMalformedAttribute},
		{"positions not 0/1", with(5, utf("002")), sig, ErrMalformedAttribute},
		{"substitutes not ascending", func() []pkix.Extension {
			return append(fs(), pkix.Extension{Id: sig.Attributes[profile.AttrFormerSurname].Substitutes, Value: subs})
		}, sig, ErrMalformedAttribute},
		{"substitutes without value", func() []pkix.Extension {
			s, _ := asn1.Marshal([]int{0})
			return append(basic(), pkix.Extension{Id: sig.Attributes[profile.AttrAlias].Substitutes, Value: s})
		}, sig, ErrMalformedAttribute},
		{"personal data under user-auth profile", basic, ua, ErrPersonalDataNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeAttributes(signWith(t, tc.exts()), tc.p)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("DecodeAttributes = %+v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestSerialNumbers(t *testing.T) {
	ones := bytes.NewReader(bytes.Repeat([]byte{0xff}, 16))
	iss := &Issuer{rand: ones}
	s, err := iss.serial()
	if err != nil {
		t.Fatal(err)
	}
	b := s.Bytes()
	if len(b) != 16 || b[0] != 0x7f || s.Sign() <= 0 {
		t.Fatalf("serial %x: want 16 octets, high bit clear", b)
	}
	der, _ := asn1.Marshal(s)
	if len(der) > 2+20 {
		t.Fatalf("DER serial %d octets", len(der)-2)
	}
	iss.rand = rand.Reader
	seen := map[string]bool{}
	for range 1000 {
		s, err := iss.serial()
		if err != nil || s.Sign() <= 0 || s.BitLen() > 127 || seen[s.String()] {
			t.Fatalf("serial %v, %v", s, err)
		}
		seen[s.String()] = true
	}
}

func TestIssueConcurrently(t *testing.T) {
	_, user, _ := testKeys(t)
	iss := newTestIssuer(t, fixedNow)
	p := loadProfile(t, "signature")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := iss.Issue(context.Background(), Request{Profile: p, Applicant: testApplicant(fixedNow), PublicKey: &user.PublicKey})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writePEM(t *testing.T, path string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOpenSSLVerifies checks the issued certificates with the real openssl
// binary: the chain verifies and the key usage and policy appear.
func TestOpenSSLVerifies(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl not installed: %v", err)
	}
	_, user, _ := testKeys(t)
	now := time.Now()
	iss := newTestIssuer(t, now)
	dir := t.TempDir()
	caPEM := filepath.Join(dir, "ca.pem")
	writePEM(t, caPEM, iss.Certificate().Raw)

	cases := []struct {
		profile, keyUsage, policy, ou string
		personal                      bool
	}{
		{"signature", "Digital Signature, Non Repudiation", "1.2.392.200149.8.5.1.1.20", "Digital Signature", true},
		{"user-authentication", "Digital Signature", "1.2.392.200149.8.5.1.3.30", "User Authentication", false},
	}
	for _, tc := range cases {
		t.Run(tc.profile, func(t *testing.T) {
			p := loadProfile(t, tc.profile)
			a := testApplicant(now)
			got, cert := issue(t, iss, p, a, &user.PublicKey)
			userPEM := filepath.Join(dir, tc.profile+".pem")
			writePEM(t, userPEM, got.DER)

			out := openssl(t, "verify", "-x509_strict", "-CAfile", caPEM, userPEM)
			if strings.TrimSpace(out) != userPEM+": OK" {
				t.Fatalf("openssl verify: %s", out)
			}
			text := openssl(t, "x509", "-in", userPEM, "-noout", "-text", "-nameopt", "utf8,sep_comma_plus_space")
			for _, want := range []string{
				"X509v3 Key Usage: critical\n                " + tc.keyUsage + "\n",
				"Policy: " + tc.policy,
				"Signature Algorithm: sha256WithRSAEncryption",
				"Public-Key: (2048 bit)",
				"CA:FALSE",
				"OCSP - URI:http://",
				"Subject: C=JP, O=JPKI, OU=" + tc.ou + ", CN=" + strings.ToUpper(got.Serial.Text(16)),
				"Not After : " + cert.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT"),
			} {
				if !strings.Contains(text, want) {
					t.Errorf("openssl x509 -text lacks %q:\n%s", want, text)
				}
			}
			if !strings.Contains(text, " 14:59:59 ") {
				t.Errorf("notAfter is not 23:59:59 JST:\n%s", text)
			}
			hasArc := strings.Contains(text, "1.2.392.200149.8.5.5.")
			if hasArc != tc.personal {
				t.Errorf("personal-attribute extensions present = %v, want %v", hasArc, tc.personal)
			}
			if !tc.personal {
				assertNoPersonalData(t, cert, a)
				subject := openssl(t, "x509", "-in", userPEM, "-noout", "-subject", "-nameopt", "utf8")
				for _, s := range []string{"𠮷", "髙橋", "ヨシダ", "東京都"} {
					if strings.Contains(subject, s) {
						t.Errorf("subject %q contains %q", subject, s)
					}
				}
			}
		})
	}
}

func BenchmarkIssue(b *testing.B) {
	_, user, _ := testKeys(b)
	iss := newTestIssuer(b, fixedNow)
	p := loadProfile(b, "signature")
	a := testApplicant(fixedNow)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := iss.Issue(ctx, Request{Profile: p, Applicant: a, PublicKey: &user.PublicKey}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignOnly is the baseline for BenchmarkIssue: one RSA-2048
// PKCS#1 v1.5 SHA-256 signature with the same Go key, over a
// certificate-sized message.
func BenchmarkSignOnly(b *testing.B) {
	ca, _, _ := testKeys(b)
	msg := make([]byte, 1200)
	b.ResetTimer()
	for b.Loop() {
		digest := sha256.Sum256(msg)
		if _, err := ca.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFormattingNeverPrintsTheKey(t *testing.T) {
	ca, _, _ := testKeys(t)
	cert := newCACert(t, ca, caNotBefore, nil)
	cfg := Config{Certificate: cert, Signer: ca, KeyUsableUntil: caNotBefore.AddDate(4, 0, 0), Now: func() time.Time { return fixedNow }}
	iss, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := ca.D.String()
	dHex := ca.D.Text(16)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		for _, v := range []any{cfg, &cfg, iss} {
			s := fmt.Sprintf(verb, v)
			if strings.Contains(s, d) || strings.Contains(s, dHex) || strings.Contains(s, ca.Primes[0].String()) {
				t.Errorf("%s of %T prints the private key", verb, v)
			}
			if !strings.Contains(s, "Madoguchi Test CA") {
				t.Errorf("%s of %T = %s", verb, v, s)
			}
		}
	}
}
