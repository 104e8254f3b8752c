package profile

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"madoguchi/ca-server/profiles"
	"madoguchi/jpki"
)

// TestDefaultSignatureMatchesContract: the counter terminal reads certificates with the shared
// contract's OIDs (jpki.StandardAttributes, jpki/attributes.json), not with this package; the
// embedded default signature profile must write the same OIDs, or the terminal's certificate
// copy and issuance read-back would not find what the CA wrote.
func TestDefaultSignatureMatchesContract(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Get("signature")
	if err != nil {
		t.Fatal(err)
	}
	want, err := jpki.StandardAttributes()
	if err != nil {
		t.Fatal(err)
	}
	if !sig.Attributes.Equal(want) {
		t.Fatalf("signature profile's attributes %v differ from jpki's %v", sig.Attributes, want)
	}
	if sig.Kind != jpki.KindSignature {
		t.Fatalf("Kind = %q", sig.Kind)
	}
}

func TestDefaultProfiles(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "signature,user-authentication" {
		t.Fatalf("Names = %s", got)
	}
	ua, err := s.Get("user-authentication")
	if err != nil {
		t.Fatal(err)
	}
	if ua.Kind != KindUserAuthentication || ua.CarriesPersonalData() {
		t.Errorf("user-auth: kind %s, personal data %v", ua.Kind, ua.CarriesPersonalData())
	}
	if len(ua.Policies) != 1 || !ua.Policies[0].Equal(asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 1, 3, 30}) {
		t.Errorf("user-auth policies = %v (CPS §1.2)", ua.Policies)
	}
	if ua.KeyUsage != x509.KeyUsageDigitalSignature || ua.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("user-auth key usage %v alg %v", ua.KeyUsage, ua.SignatureAlgorithm)
	}
	sig, err := s.Get("signature")
	if err != nil {
		t.Fatal(err)
	}
	if sig.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment {
		t.Errorf("signature key usage %v", sig.KeyUsage)
	}
	for _, a := range []Attribute{AttrName, AttrSex, AttrDateOfBirth, AttrAddress, AttrFormerSurname, AttrAlias} {
		if _, ok := sig.Attributes[a]; !ok {
			t.Errorf("signature profile lacks %s", a)
		}
	}
	if sig.Attributes[AttrName].Substitutes == nil || sig.Attributes[AttrAddress].Substitutes == nil {
		t.Error("signature profile lacks substitute OIDs for name/address")
	}
	// The subjectAltName layout of real certificates (J-LIS profile 2.2): .1 name, .4 birth date,
	// .3 sex, .5 address, .2 and .6 the positions, in that order.
	l, ok := sig.Layout()
	var got []string
	for _, o := range l.Order() {
		got = append(got, o.String())
	}
	if want := "1.2.392.200149.8.5.5.1 1.2.392.200149.8.5.5.4 1.2.392.200149.8.5.5.3 1.2.392.200149.8.5.5.5 1.2.392.200149.8.5.5.2 1.2.392.200149.8.5.5.6"; !ok || strings.Join(got, " ") != want {
		t.Errorf("signature layout %v, want %s", got, want)
	}
	if _, ok := ua.Layout(); ok {
		t.Error("user-authentication profile has a personal-data layout")
	}
	for _, p := range []*Profile{sig, ua} {
		if ian := p.IssuerAltNameRDNs().String(); ian != "O=公的個人認証サービス,C=JP" {
			t.Errorf("%s issuerAltName %q", p.Name, ian)
		}
	}
	if _, err := s.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v", err)
	}
}

func TestSubjectAndURLs(t *testing.T) {
	s, _ := Default()
	p, _ := s.Get("user-authentication")
	serial, _ := new(big.Int).SetString("7f00aa", 16)
	dn := p.SubjectFor(serial).String()
	if dn != "CN=7F00AA,OU=User Authentication,O=JPKI,C=JP" {
		t.Errorf("subject = %s", dn)
	}
	if u := p.CRLURL([]byte{0xab, 0x01}); u != "http://crl.jpki.madoguchi.example/user-authentication/ab01.crl" {
		t.Errorf("CRL URL = %s", u)
	}
	if u := p.OCSPURL([]byte{0xab}); u != "http://ocsp.jpki.madoguchi.example/user-authentication" {
		t.Errorf("OCSP URL = %s", u)
	}
}

// TestCRLShards: a profile with crlShards names each certificate's shard in
// its distribution point (RFC 5280 §4.2.1.13, §5.2.5); the default has one
// CRL and the URL of before.
func TestCRLShards(t *testing.T) {
	s, _ := Default()
	p, _ := s.Get("user-authentication")
	if p.CRLShards != 1 || p.CRLURLFor([]byte{0xab}, big.NewInt(1)) != "http://crl.jpki.madoguchi.example/user-authentication/ab.crl" {
		t.Errorf("default: %d shards, URL %s", p.CRLShards, p.CRLURLFor([]byte{0xab}, big.NewInt(1)))
	}
	m := base(t, "user-authentication.json")
	m["crlShards"], m["crlDistributionPoint"] = 4, "http://crl.example/{issuerKeyID}/{shard}.crl"
	data, _ := json.Marshal(m)
	p, err := Parse("test.json", data)
	if err != nil {
		t.Fatal(err)
	}
	top := new(big.Int).Lsh(big.NewInt(1), 126)
	top.Add(top, new(big.Int).Lsh(big.NewInt(3), 124)) // 2^126 + 3/4·2^126: the last quarter
	if u := p.CRLURLFor([]byte{0xab}, top); u != "http://crl.example/ab/3.crl" {
		t.Errorf("URL of the last shard = %s", u)
	}
	if part := p.CRLPartition([]byte{0xab}); part.Shards != 4 || part.URLFor(1) != "http://crl.example/ab/1.crl" {
		t.Errorf("partition = %+v", part)
	}
}

// base returns the embedded signature profile as a generic JSON tree.
func base(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := profiles.FS.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func attrs(m map[string]any) map[string]any { return m["personalAttributes"].(map[string]any) }

func TestParseRejects(t *testing.T) {
	cases := []struct {
		name   string
		file   string
		mutate func(m map[string]any)
		want   error
	}{
		{"unknown top-level field", "signature.json", func(m map[string]any) { m["keyUsages"] = []any{"digitalSignature"} }, ErrUnknownField},
		{"unknown attribute", "signature.json", func(m map[string]any) { attrs(m)["nameKanji"] = map[string]any{"oid": "1.2.392.200149.8.5.5.20"} }, ErrUnknownField},
		{"substitutes on sex", "signature.json", func(m map[string]any) {
			attrs(m)["sex"] = map[string]any{"oid": "1.2.392.200149.8.5.5.3", "substitutesOid": "1.2.392.200149.8.5.5.30"}
		}, ErrUnknownField},
		{"no name positions", "signature.json", func(m map[string]any) { attrs(m)["name"] = map[string]any{"oid": "1.2.392.200149.8.5.5.1"} }, ErrMissingAttribute},
		{"issuerAltName placeholder", "signature.json", func(m map[string]any) {
			m["issuerAltName"] = []any{map[string]any{"type": "O", "value": "{serial}"}}
		}, ErrUnknownPlaceholder},
		{"issuerAltName bad type", "user-authentication.json", func(m map[string]any) {
			m["issuerAltName"] = []any{map[string]any{"type": "L", "value": "x"}}
		}, ErrBadSubject},
		{"wrong type", "signature.json", func(m map[string]any) { m["keyUsage"] = "digitalSignature" }, ErrWrongType},
		{"no name", "signature.json", func(m map[string]any) { delete(m, "name") }, ErrMissingField},
		{"bad name", "signature.json", func(m map[string]any) { m["name"] = "Signature Profile" }, ErrBadName},
		{"no kind", "signature.json", func(m map[string]any) { delete(m, "kind") }, ErrMissingField},
		{"unknown kind", "signature.json", func(m map[string]any) { m["kind"] = "tls-server" }, ErrUnknownKind},
		{"no algorithm", "signature.json", func(m map[string]any) { delete(m, "signatureAlgorithm") }, ErrMissingField},
		{"sha1 algorithm", "signature.json", func(m map[string]any) { m["signatureAlgorithm"] = "sha1WithRSAEncryption" }, ErrUnsupportedAlgorithm},
		{"no policies", "signature.json", func(m map[string]any) { m["certificatePolicies"] = []any{} }, ErrMissingField},
		{"policy leading zero", "signature.json", func(m map[string]any) { m["certificatePolicies"] = []any{"1.2.392.0200149"} }, ErrInvalidOID},
		{"policy one arc", "signature.json", func(m map[string]any) { m["certificatePolicies"] = []any{"1"} }, ErrInvalidOID},
		{"policy empty arc", "signature.json", func(m map[string]any) { m["certificatePolicies"] = []any{"1..2"} }, ErrInvalidOID},
		{"policy first arc 3", "signature.json", func(m map[string]any) { m["certificatePolicies"] = []any{"3.1"} }, ErrInvalidOID},
		{"policy second arc 40", "signature.json", func(m map[string]any) { m["certificatePolicies"] = []any{"1.40.1"} }, ErrInvalidOID},
		{"policy huge arc", "signature.json", func(m map[string]any) { m["certificatePolicies"] = []any{"1.2.99999999999"} }, ErrInvalidOID},
		{"policy sign", "signature.json", func(m map[string]any) { m["certificatePolicies"] = []any{"1.2.-3"} }, ErrInvalidOID},
		{"policy twice", "signature.json", func(m map[string]any) {
			m["certificatePolicies"] = []any{"1.2.392.200149.8.5.1.1.20", "1.2.392.200149.8.5.1.1.20"}
		}, ErrDuplicateOID},
		{"no key usage", "signature.json", func(m map[string]any) { m["keyUsage"] = []any{} }, ErrMissingField},
		{"unknown key usage", "signature.json", func(m map[string]any) { m["keyUsage"] = []any{"signing"} }, ErrUnknownKeyUsage},
		{"keyCertSign", "user-authentication.json", func(m map[string]any) { m["keyUsage"] = []any{"digitalSignature", "keyCertSign"} }, ErrKeyUsageNotAllowed},
		{"cRLSign", "user-authentication.json", func(m map[string]any) { m["keyUsage"] = []any{"cRLSign"} }, ErrKeyUsageNotAllowed},
		{"key usage twice", "signature.json", func(m map[string]any) { m["keyUsage"] = []any{"nonRepudiation", "contentCommitment"} }, ErrDuplicateKeyUsage},
		{"bad eku", "signature.json", func(m map[string]any) { m["extendedKeyUsage"] = []any{"clientAuth"} }, ErrInvalidOID},
		{"no crl", "signature.json", func(m map[string]any) { delete(m, "crlDistributionPoint") }, ErrMissingField},
		{"https crl", "signature.json", func(m map[string]any) { m["crlDistributionPoint"] = "https://crl.example/x.crl" }, ErrBadURL},
		{"relative crl", "signature.json", func(m map[string]any) { m["crlDistributionPoint"] = "/x.crl" }, ErrBadURL},
		{"crl with userinfo", "signature.json", func(m map[string]any) { m["crlDistributionPoint"] = "http://u:p@crl.example/x.crl" }, ErrBadURL},
		{"crl unknown placeholder", "signature.json", func(m map[string]any) { m["crlDistributionPoint"] = "http://crl.example/{name}.crl" }, ErrUnknownPlaceholder},
		{"shard without shards", "signature.json", func(m map[string]any) { m["crlDistributionPoint"] = "http://crl.example/{shard}.crl" }, ErrBadCRLShards},
		{"shards without shard", "signature.json", func(m map[string]any) { m["crlShards"] = 4 }, ErrBadCRLShards},
		{"zero shards", "signature.json", func(m map[string]any) { m["crlShards"] = 0 }, ErrBadCRLShards},
		{"too many shards", "signature.json", func(m map[string]any) {
			m["crlShards"], m["crlDistributionPoint"] = 1<<17, "http://crl.example/{shard}.crl"
		}, ErrBadCRLShards},
		{"ocsp shard", "signature.json", func(m map[string]any) { m["ocspServer"] = "http://ocsp.example/{shard}" }, ErrUnknownPlaceholder},
		{"ocsp stray brace", "signature.json", func(m map[string]any) { m["ocspServer"] = "http://ocsp.example/{issuerKeyID" }, ErrUnknownPlaceholder},
		{"no ocsp", "signature.json", func(m map[string]any) { m["ocspServer"] = "" }, ErrMissingField},
		{"no validity", "signature.json", func(m map[string]any) { delete(m, "validity") }, ErrMissingField},
		{"unknown validity", "signature.json", func(m map[string]any) { m["validity"] = "five-years" }, ErrUnknownValidityRule},
		{"no subject", "signature.json", func(m map[string]any) { m["subject"] = []any{} }, ErrMissingField},
		{"subject without serial", "user-authentication.json", func(m map[string]any) {
			m["subject"] = []any{map[string]any{"type": "C", "value": "JP"}, map[string]any{"type": "CN", "value": "JPKI user"}}
		}, ErrSubjectNotUnique},
		{"subject with name placeholder", "user-authentication.json", func(m map[string]any) {
			m["subject"] = []any{map[string]any{"type": "CN", "value": "{name} {serial}"}}
		}, ErrUnknownPlaceholder},
		{"subject locality", "user-authentication.json", func(m map[string]any) {
			m["subject"] = []any{map[string]any{"type": "L", "value": "Chiyoda-ku"}, map[string]any{"type": "CN", "value": "{serial}"}}
		}, ErrBadSubject},
		{"subject bad country", "user-authentication.json", func(m map[string]any) {
			m["subject"] = []any{map[string]any{"type": "C", "value": "jp"}, map[string]any{"type": "CN", "value": "{serial}"}}
		}, ErrBadSubject},
		{"subject control char", "user-authentication.json", func(m map[string]any) {
			m["subject"] = []any{map[string]any{"type": "O", "value": "JP\nKI"}, map[string]any{"type": "CN", "value": "{serial}"}}
		}, ErrBadSubject},
		{"subject unknown field", "user-authentication.json", func(m map[string]any) {
			m["subject"] = []any{map[string]any{"type": "CN", "value": "{serial}", "critical": true}}
		}, ErrUnknownField},
		{"no personalAttributes", "user-authentication.json", func(m map[string]any) { delete(m, "personalAttributes") }, ErrMissingField},
		{"user-auth with name", "user-authentication.json", func(m map[string]any) {
			attrs(m)["name"] = map[string]any{"oid": "1.2.392.200149.8.5.5.1"}
		}, ErrPersonalDataNotAllowed},
		{"user-auth with date of birth", "user-authentication.json", func(m map[string]any) {
			attrs(m)["dateOfBirth"] = map[string]any{"oid": "1.2.392.200149.8.5.5.4"}
		}, ErrPersonalDataNotAllowed},
		{"signature without address", "signature.json", func(m map[string]any) { delete(attrs(m), "address") }, ErrMissingAttribute},
		{"signature without sex", "signature.json", func(m map[string]any) { delete(attrs(m), "sex") }, ErrMissingAttribute},
		{"attribute outside arc", "signature.json", func(m map[string]any) {
			attrs(m)["sex"] = map[string]any{"oid": "1.2.392.200149.8.5.6.3"}
		}, ErrAttributeOutsideArc},
		{"attribute is the arc itself", "signature.json", func(m map[string]any) {
			attrs(m)["sex"] = map[string]any{"oid": "1.2.392.200149.8.5.5"}
		}, ErrAttributeOutsideArc},
		{"attribute empty oid", "signature.json", func(m map[string]any) { attrs(m)["sex"] = map[string]any{} }, ErrMissingField},
		{"attribute bad oid", "signature.json", func(m map[string]any) { attrs(m)["sex"] = map[string]any{"oid": "1.2.392.200149.8.5.5.x"} }, ErrInvalidOID},
		{"attribute oid twice", "signature.json", func(m map[string]any) {
			attrs(m)["sex"] = map[string]any{"oid": "1.2.392.200149.8.5.5.4"}
		}, ErrDuplicateOID},
		{"substitutes oid = attribute oid", "signature.json", func(m map[string]any) {
			attrs(m)["address"] = map[string]any{"oid": "1.2.392.200149.8.5.5.5", "substitutesOid": "1.2.392.200149.8.5.5.1"}
		}, ErrDuplicateOID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := base(t, tc.file)
			tc.mutate(m)
			data, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse("test.json", data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %v, want %v", err, tc.want)
			}
			if p != nil {
				t.Error("Parse returned a profile with an error")
			}
			if !strings.HasPrefix(err.Error(), "profile: ") || !strings.Contains(err.Error(), "test.json") {
				t.Errorf("error %q lacks prefix or source", err)
			}
		})
	}
}

func TestParseRejectsRawJSON(t *testing.T) {
	good, _ := profiles.FS.ReadFile("user-authentication.json")
	cases := []struct {
		name string
		data string
		want error
	}{
		{"empty", "", ErrSyntax},
		{"truncated", string(good[:len(good)/2]), ErrSyntax},
		{"trailing object", string(good) + "{}", ErrSyntax},
		{"array", "[]", ErrWrongType},
		{"duplicate top-level key", strings.Replace(string(good), `"kind":`, `"kind": "signature", "kind":`, 1), ErrDuplicateField},
		{"duplicate nested key", strings.Replace(string(good), `{"type": "C", "value": "JP"}`, `{"type": "C", "type": "O", "value": "JP"}`, 1), ErrDuplicateField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse("raw.json", []byte(tc.data)); !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Parse("good", good); err != nil {
		t.Fatalf("unmodified profile: %v", err)
	}
}

func TestLoadOverride(t *testing.T) {
	dir := t.TempDir()
	m := base(t, "user-authentication.json")
	m["ocspServer"] = "http://ocsp.dc1.example/ua"
	data, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "user-authentication.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("ignored"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ua, _ := s.Get("user-authentication")
	if ua.OCSPServer != "http://ocsp.dc1.example/ua" {
		t.Errorf("override not applied: %s", ua.OCSPServer)
	}
	if sig, err := s.Get("signature"); err != nil || sig.OCSPServer != "http://ocsp.jpki.madoguchi.example/signature" {
		t.Errorf("default signature profile lost: %v", err)
	}

	// A misspelt file name must not leave the default silently in force.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "user-auth.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); !errors.Is(err, ErrNameMismatch) {
		t.Errorf("Load(misspelt) = %v", err)
	}
	// A broken override file fails the whole load.
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "signature.json"), []byte(`{"name":"signature"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(broken); !errors.Is(err, ErrSyntax) {
		t.Errorf("Load(broken) = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestParseOID(t *testing.T) {
	oid, err := ParseOID("1.2.392.200149.8.5.1.3.30")
	if err != nil || oid.String() != "1.2.392.200149.8.5.1.3.30" {
		t.Fatalf("ParseOID = %v, %v", oid, err)
	}
	if _, err := ParseOID("2.999.1"); err != nil {
		t.Errorf("2.999.1: %v", err)
	}
	for _, s := range []string{"", "1", ".1.2", "1.2.", "1.2.a", "1.02", "1. 2", "1.2.+3"} {
		if _, err := ParseOID(s); err == nil {
			t.Errorf("ParseOID(%q) accepted", s)
		}
	}
}
