package hsmissuance

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// This file checks our certificates against the layout of real JPKI
// certificates as published, read independently of madoguchi/jpki (which
// writes them): public inspections of real 署名用電子証明書 with
// `openssl x509 -ext subjectAltName` (quoting J-LIS 公的個人認証サービス
// プロファイル仕様書 2.2) show
//
//	X509v3 Subject Alternative Name:
//	    othername: 1.2.392.200149.8.5.5.1::<氏名, 氏 U+3000 名>,
//	    othername: 1.2.392.200149.8.5.5.4::<生年月日 EYYYYMMDD, E=1 明治 2 大正 3 昭和 4 平成 5 令和 0 不明>,
//	    othername: 1.2.392.200149.8.5.5.3::<性別 1 男 2 女 3 不明>,
//	    othername: 1.2.392.200149.8.5.5.5::<住所, ≤ 200 文字>,
//	    othername: 1.2.392.200149.8.5.5.2::<氏名代替文字の使用位置 0/1 per character>,
//	    othername: 1.2.392.200149.8.5.5.6::<住所代替文字の使用位置>
//	X509v3 Key Usage: critical  Digital Signature, Non Repudiation   (利用者証明用: Digital Signature)
//	X509v3 Issuer Alternative Name: DirName:/C=JP/O=公的個人認証サービス
//
// and public readers of real certificates render "319800217" as
// 1980-02-17: the eight digits are the Gregorian date. The OIDs are written
// out here on purpose, not taken from the profile.

// publishedOrder is the published order of the six otherNames.
var publishedOrder = []string{
	"1.2.392.200149.8.5.5.1", "1.2.392.200149.8.5.5.4", "1.2.392.200149.8.5.5.3",
	"1.2.392.200149.8.5.5.5", "1.2.392.200149.8.5.5.2", "1.2.392.200149.8.5.5.6",
}

type rawOtherName struct {
	oid   string
	value string
}

// walkSAN reads the subjectAltName of der with encoding/asn1 only:
// GeneralNames ::= SEQUENCE OF GeneralName; otherName [0] IMPLICIT
// SEQUENCE { type-id OID, value [0] EXPLICIT ANY }, the value here a
// UTF8String (tag 12).
func walkSAN(t *testing.T, der []byte) (names []rawOtherName, found bool) {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cert.Extensions {
		if !e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) {
			continue
		}
		found = true
		if e.Critical {
			t.Error("subjectAltName is critical although the subject is not empty (RFC 5280 §4.2.1.6)")
		}
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(e.Value, &seq); err != nil || len(rest) > 0 || seq.Tag != 16 {
			t.Fatalf("SAN is not a SEQUENCE: %v", err)
		}
		for b := seq.Bytes; len(b) > 0; {
			var gn asn1.RawValue
			if b, err = asn1.Unmarshal(b, &gn); err != nil {
				t.Fatal(err)
			}
			if gn.Class != 2 || gn.Tag != 0 || !gn.IsCompound {
				t.Fatalf("GeneralName [%d] class %d is not an otherName", gn.Tag, gn.Class)
			}
			var oid asn1.ObjectIdentifier
			rest, err := asn1.Unmarshal(gn.Bytes, &oid)
			if err != nil {
				t.Fatal(err)
			}
			var explicit asn1.RawValue
			if rest, err = asn1.Unmarshal(rest, &explicit); err != nil || len(rest) > 0 || explicit.Class != 2 || explicit.Tag != 0 {
				t.Fatalf("otherName value is not [0] EXPLICIT: %v", err)
			}
			var str asn1.RawValue
			if rest, err = asn1.Unmarshal(explicit.Bytes, &str); err != nil || len(rest) > 0 || str.Class != 0 || str.Tag != 12 {
				t.Fatalf("otherName %v value is not a UTF8String (tag %d)", oid, str.Tag)
			}
			names = append(names, rawOtherName{oid.String(), string(str.Bytes)})
		}
	}
	return names, found
}

// publishedBirthDate encodes a date as the published description says,
// with the era boundaries written out: 大正 1912-07-30, 昭和 1926-12-25,
// 平成 1989-01-08, 令和 2019-05-01.
func publishedBirthDate(iso string) string {
	ymd := strings.ReplaceAll(iso, "-", "")
	era := "0"
	switch {
	case ymd >= "20190501":
		era = "5"
	case ymd >= "19890108":
		era = "4"
	case ymd >= "19261225":
		era = "3"
	case ymd >= "19120730":
		era = "2"
	case ymd >= "18680125":
		era = "1"
	}
	return era + ymd
}

// issuerAltNameText is how openssl prints DirName C=JP, O=公的個人認証サービス
// (UTF-8 escaped, exactly as on the public dump of a real certificate).
var issuerAltNameText = func() string {
	var b strings.Builder
	b.WriteString("DirName:/C=JP/O=")
	for _, c := range []byte("公的個人認証サービス") {
		fmt.Fprintf(&b, "\\x%02X", c)
	}
	return b.String()
}()

func opensslText(t *testing.T, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "x509", "-text", "-noout", "-nameopt", "utf8", "-in", p).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509 -text: %v\n%s", err, out)
	}
	return string(out)
}

// TestCertificatesInRealJPKIProfile issues signature certificates through
// the real path (terminal's wire request over mTLS → CA → SoftHSM → virtual
// card) and reads them with the published layout: 𠮷野 with 𠮷 substituted
// by 吉 (position "1" there), an address with 髙 substituted by 高, a 29
// February birth date, and the era boundaries 1989-01-07/08 and
// 2019-04-30/05-01. Then openssl must show the six otherNames, the critical
// key usage and the issuerAltName; the user-authentication certificate
// carries no personal data, digitalSignature only, and the same
// issuerAltName.
//
// Seen failing on the old code: the items were separate extensions, so the
// SAN walk found no subjectAltName at all; the name had an ASCII space, the
// date was a bare YYYYMMDD, and no positions reached the CA (wire.Applicant
// had no field for them).
func TestCertificatesInRealJPKIProfile(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	cases := []struct {
		name, nameSubs, birth, sex, address, addrSubs string
	}{
		// 𠮷野 花子 → 吉野 花子, 𠮷 substituted; address 髙田馬場 → 高田馬場.
		{"吉野 花子", "10000", "1996-02-29", "2", "東京都新宿区高田馬場一丁目2番3号", "00000010000000000"},
		{"髙橋 一郎", "", "1989-01-07", "1", "大阪府大阪市北区中之島一丁目3番20号", ""},
		{"高橋 一郎", "10000", "1989-01-08", "1", "大阪府大阪市北区中之島一丁目3番20号", ""},
		{"令和 前日", "", "2019-04-30", "2", "北海道札幌市中央区北一条西二丁目", ""},
		{"令和 元日", "", "2019-05-01", "1", "沖縄県那覇市泉崎一丁目2番2号", ""},
	}
	for i, tc := range cases {
		t.Run(tc.birth, func(t *testing.T) {
			card, _, serial := f.newCard(t)
			app := wire.Applicant{ResidentCode: fmt.Sprintf("5%010d", i), Name: tc.name, BirthDate: tc.birth, Sex: tc.sex,
				Address: tc.address, CardExpiry: "2035-04-12", NameSubstitutes: tc.nameSubs, AddressSubstitutes: tc.addrSubs}
			prep, st := f.issue(t, card, serial, "sign", fmt.Sprintf("req-prof-%d", i), app)
			if st.State != string(store.StateDelivered) {
				t.Fatalf("state %q", st.State)
			}
			names, found := walkSAN(t, prep.Certificate)
			if !found {
				t.Fatal("signature certificate has no subjectAltName")
			}
			if len(names) != len(publishedOrder) {
				t.Fatalf("%d otherNames, want 6: %v", len(names), names)
			}
			wantName := strings.Replace(tc.name, " ", "\u3000", 1)
			pos := func(p, text string) string {
				if p == "" {
					return strings.Repeat("0", utf8.RuneCountInString(text))
				}
				return p
			}
			want := []string{wantName, publishedBirthDate(tc.birth), tc.sex, tc.address, pos(tc.nameSubs, wantName), pos(tc.addrSubs, tc.address)}
			for k, n := range names {
				if n.oid != publishedOrder[k] {
					t.Errorf("otherName %d is %s, want %s", k, n.oid, publishedOrder[k])
				}
				if n.value != want[k] {
					t.Errorf("otherName %s = %q, want %q", n.oid, n.value, want[k])
				}
			}
			text := opensslText(t, prep.Certificate)
			for _, s := range []string{
				"X509v3 Key Usage: critical", "Digital Signature, Non Repudiation",
				"X509v3 Issuer Alternative Name", issuerAltNameText,
			} {
				if !strings.Contains(text, s) {
					t.Errorf("openssl output lacks %q:\n%s", s, text)
				}
			}
			for _, oid := range publishedOrder {
				if !strings.Contains(text, "othername: "+oid) && !strings.Contains(text, "othername:"+oid) {
					t.Errorf("openssl shows no otherName %s:\n%s", oid, text)
				}
			}
			if bytes.Contains(prep.Certificate, []byte(tc.name)) {
				t.Error("the name with an ASCII space is in the certificate")
			}
		})
	}

	t.Run("user-authentication", func(t *testing.T) {
		card, _, serial := f.newCard(t)
		app := wire.Applicant{ResidentCode: "59999999999", Name: "吉野 花子", NameSubstitutes: "10000", BirthDate: "1996-02-29", Sex: "2",
			Address: "東京都新宿区高田馬場一丁目2番3号", CardExpiry: "2035-04-12"}
		prep, _ := f.issue(t, card, serial, "auth", "req-prof-auth", app)
		if _, found := walkSAN(t, prep.Certificate); found {
			t.Fatal("user-authentication certificate has a subjectAltName (CPS §3.1, §7.1: no personal data)")
		}
		text := opensslText(t, prep.Certificate)
		if !strings.Contains(text, "X509v3 Key Usage: critical\n                Digital Signature\n") {
			t.Errorf("key usage is not critical digitalSignature alone:\n%s", text)
		}
		if !strings.Contains(text, "X509v3 Issuer Alternative Name") || !strings.Contains(text, issuerAltNameText) {
			t.Errorf("no issuerAltName:\n%s", text)
		}
	})
}

// TestSubstitutePositionsRefused: the CA refuses position strings that
// cannot be true, with invalid_applicant, and issues nothing. Seen failing
// on the old code: wire.Applicant had no position fields (the request was
// refused as unknown JSON, not for its positions).
func TestSubstitutePositionsRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for i, tc := range []struct{ what, name, subs string }{
		{"too short", "吉野 花子", "1000"},
		{"too long", "吉野 花子", "100000"},
		{"not 0/1", "吉野 花子", "1000x"},
		{"1 at the separator", "吉野 花子", "00100"},
		{"1 at an unsubstituted 外字", "𠮷野 花子", "10000"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			card, _, serial := f.newCard(t)
			app := wire.Applicant{ResidentCode: fmt.Sprintf("6%010d", i), Name: tc.name, NameSubstitutes: tc.subs, BirthDate: "1990-04-12", Sex: "1",
				Address: "東京都千代田区千代田一丁目1番1号", CardExpiry: "2035-04-12"}
			_, err := f.prepare(t, card, serial, "sign", fmt.Sprintf("req-bad-%d", i), app)
			var re *raclient.Error
			if !errors.As(err, &re) || re.Code != wire.CodeInvalidApplicant {
				t.Fatalf("prepare = %v, want %s", err, wire.CodeInvalidApplicant)
			}
			if left := userKeysInToken(t, f.active.HSM); len(left) != 0 {
				t.Fatalf("user keys left: %v", left)
			}
		})
	}
}
