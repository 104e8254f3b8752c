package jpki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"
)

func TestBirthDateEras(t *testing.T) {
	for _, tc := range []struct {
		y, m, d int
		want    string
	}{
		{1912, 7, 29, "119120729"}, {1912, 7, 30, "219120730"},
		{1926, 12, 24, "219261224"}, {1926, 12, 25, "319261225"},
		{1980, 2, 17, "319800217"}, // the public readers' example
		{1989, 1, 7, "319890107"}, {1989, 1, 8, "419890108"},
		{1996, 2, 29, "419960229"},
		{2019, 4, 30, "420190430"}, {2019, 5, 1, "520190501"},
		{1868, 1, 1, "018680101"},
	} {
		got, err := BirthDate(tc.y, tc.m, tc.d)
		if err != nil || got != tc.want {
			t.Errorf("BirthDate(%d,%d,%d) = %q, %v; want %q", tc.y, tc.m, tc.d, got, err, tc.want)
		}
		d, err := ParseBirthDate(tc.want)
		if err != nil || d.Year != tc.y || d.Month != tc.m || d.Day != tc.d {
			t.Errorf("ParseBirthDate(%q) = %+v, %v", tc.want, d, err)
		}
	}
	for _, bad := range []string{"19900514", "419900230", "519890108", "319890108", "41990051x", "4199005140", "919900514"} {
		if _, err := ParseBirthDate(bad); !errors.Is(err, ErrBadDate) {
			t.Errorf("ParseBirthDate(%q) = %v, want ErrBadDate", bad, err)
		}
	}
	if _, err := ParseBirthDate("019900514"); err != nil {
		t.Errorf("era 0 (不明) refused: %v", err)
	}
	if _, err := BirthDate(2001, 2, 29); !errors.Is(err, ErrBadDate) {
		t.Errorf("2001-02-29 accepted")
	}
}

func TestPositions(t *testing.T) {
	if got := Positions(5, []int{0, 3}); got != "10010" {
		t.Errorf("Positions = %q", got)
	}
	subs, err := ParsePositions("10000", "吉野\u3000花子")
	if err != nil || len(subs) != 1 || subs[0] != 0 {
		t.Errorf("ParsePositions = %v, %v", subs, err)
	}
	for _, bad := range []string{"1000", "100000", "1000x", "１0000"} {
		if _, err := ParsePositions(bad, "吉野\u3000花子"); !errors.Is(err, ErrBadPositions) {
			t.Errorf("ParsePositions(%q) = %v", bad, err)
		}
	}
	for r, want := range map[rune]bool{'吉': true, '高': true, 'よ': true, 'ヨ': true, 'ー': true,
		'𠮷': false, '髙': false, ' ': false, '\u3000': false, '1': false, 'A': false, '－': false, '々': false} {
		if MaySubstitute(r) != want {
			t.Errorf("MaySubstitute(%q) = %v, want %v", r, !want, want)
		}
	}
	if err := CheckSubstitutes("吉野\u3000花子", []int{2}); !errors.Is(err, ErrBadPositions) {
		t.Errorf("'1' at the separator accepted: %v", err)
	}
}

var testLayout = Layout{
	Name: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 1}, BirthDate: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 4},
	Sex: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 3}, Address: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 5},
	NamePositions: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 2}, AddressPositions: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 6},
}

func TestMarshalAndRead(t *testing.T) {
	b := BasicInfo{Name: JoinName("吉野", "花子"), BirthDate: "419960229", Sex: SexFemale, Address: "東京都千代田区千代田１－１",
		NamePositions: "10000", AddressPositions: "0000000000000"}
	san, err := MarshalSubjectAltName(b, testLayout)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: OIDSubjectAltName(), Value: san}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadBasicInfo(cert, testLayout)
	if err != nil || *got != b {
		t.Fatalf("ReadBasicInfo = %+v, %v", got, err)
	}
	if !HasBasicInfo(cert, testLayout) {
		t.Error("HasBasicInfo false")
	}
	bad := b
	bad.NamePositions = "1000"
	if _, err := MarshalSubjectAltName(bad, testLayout); !errors.Is(err, ErrBadPositions) {
		t.Errorf("short positions marshalled: %v", err)
	}
}
