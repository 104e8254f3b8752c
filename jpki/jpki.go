// Package jpki is the shared contract between the counter terminal and the
// CA for the personal data of a JPKI signature certificate: how the basic
// four items (基本4情報) and the substitute-character positions are encoded,
// and a reader that finds them in a certificate. It imports neither the
// terminal (app/...) nor the CA (ca-server/...); both import it.
//
// The layout is the one real 署名用電子証明書 use (J-LIS 公的個人認証サービス
// プロファイル仕様書 2.2; signature CA CPS §3.1.7–3.1.8), as shown by public
// inspections of real cards with `openssl x509 -ext subjectAltName`: the
// subjectAltName holds six otherName entries, in this order
//
//	name                 UTF8String, surname U+3000 given name
//	date of birth        UTF8String "EYYYYMMDD": era digit + Gregorian date
//	sex                  UTF8String "1" male, "2" female, "3" unknown
//	address              UTF8String, from the prefecture, no postal code, ≤ 200 characters
//	name positions       UTF8String, one '0'/'1' per character of the name ('1' = substitute)
//	address positions    UTF8String, one '0'/'1' per character of the address
//
// The OIDs are data (DOMAIN §2): the CA's profile files, and this package's
// attributes.json (StandardAttributes), which the terminal reads with and
// which the CA's default signature profile must match; a Layout carries them
// into the reader. The encodings are code, here, so that the writer
// (ca-server/issuer) and the readers (app/printout, the counter's read-back)
// cannot drift apart. The vocabulary both programs share (certificate kinds,
// personal attributes, PersonalDataArc) is in attributes.go.
//
// Safe for concurrent use: no package state is modified.
package jpki

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Errors of the reader and the encoders; callers branch with errors.Is.
var (
	ErrNoSubjectAltName = errors.New("jpki: certificate has no subjectAltName")
	ErrMalformed        = errors.New("jpki: malformed subjectAltName")
	ErrMissing          = errors.New("jpki: basic-information entry missing")
	ErrDuplicate        = errors.New("jpki: basic-information entry repeated")
	ErrBadDate          = errors.New("jpki: invalid EYYYYMMDD date of birth")
	ErrBadSex           = errors.New("jpki: invalid sex code")
	ErrBadPositions     = errors.New("jpki: invalid substitute-character positions")
	ErrBadLayout        = errors.New("jpki: incomplete layout")
)

// MaxAddressLength is the largest address in characters (profile 2.2:
// 最大文字数 200 文字).
const MaxAddressLength = 200

// NameSeparator separates surname and given name in the certificate's name
// (an ideographic space, U+3000, as on real certificates).
const NameSeparator = "\u3000"

// Layout names the otherName type-ids of the six entries. It comes from
// personal-attribute OIDs (Attributes.Layout): the CA's profile or
// StandardAttributes.
type Layout struct {
	Name, BirthDate, Sex, Address, NamePositions, AddressPositions asn1.ObjectIdentifier
}

// Order returns the type-ids in the order real certificates carry them.
func (l Layout) Order() []asn1.ObjectIdentifier {
	return []asn1.ObjectIdentifier{l.Name, l.BirthDate, l.Sex, l.Address, l.NamePositions, l.AddressPositions}
}

func (l Layout) check() error {
	seen := map[string]bool{}
	for _, o := range l.Order() {
		if len(o) == 0 || seen[o.String()] {
			return ErrBadLayout
		}
		seen[o.String()] = true
	}
	return nil
}

// Sex codes of the certificate (profile 2.2: 1 男, 2 女, 3 不明).
const (
	SexMale    = "1"
	SexFemale  = "2"
	SexUnknown = "3"
)

// BasicInfo is the personal data of a signature certificate, as encoded.
type BasicInfo struct {
	Name string // surname U+3000 given name
	// BirthDate is "EYYYYMMDD"; see ParseBirthDate.
	BirthDate string
	Sex       string // SexMale, SexFemale or SexUnknown
	Address   string
	// NamePositions and AddressPositions hold one '0' or '1' per character
	// (Unicode code point) of Name and Address; '1' marks a substitute.
	NamePositions, AddressPositions string
}

// Validate checks the encodings: date, sex, address length, and positions
// of the right length made of '0' and '1'.
func (b BasicInfo) Validate() error {
	if b.Name == "" || !utf8.ValidString(b.Name) {
		return fmt.Errorf("%w: name", ErrMissing)
	}
	if b.Address == "" || !utf8.ValidString(b.Address) {
		return fmt.Errorf("%w: address", ErrMissing)
	}
	if n := utf8.RuneCountInString(b.Address); n > MaxAddressLength {
		return fmt.Errorf("%w: address of %d characters exceeds %d", ErrMalformed, n, MaxAddressLength)
	}
	if _, err := ParseBirthDate(b.BirthDate); err != nil {
		return err
	}
	switch b.Sex {
	case SexMale, SexFemale, SexUnknown:
	default:
		return fmt.Errorf("%w: %q", ErrBadSex, b.Sex)
	}
	if _, err := ParsePositions(b.NamePositions, b.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if _, err := ParsePositions(b.AddressPositions, b.Address); err != nil {
		return fmt.Errorf("address: %w", err)
	}
	return nil
}

// CertificateName returns name with the separator between surname and given
// name made U+3000: the resident file and the terminal may use an ASCII
// space, real certificates use the ideographic space. One character becomes
// one character, so substitute positions are unchanged.
func CertificateName(name string) string { return strings.ReplaceAll(name, " ", NameSeparator) }

// JoinName joins surname and given name as real certificates do.
func JoinName(surname, given string) string {
	if given == "" {
		return surname
	}
	return surname + NameSeparator + given
}

// Positions returns the position string of a text of n characters with
// substitutes at the given 0-based character indexes (out-of-range indexes
// are ignored; validate first).
func Positions(n int, substitutes []int) string {
	b := []byte(strings.Repeat("0", n))
	for _, p := range substitutes {
		if p >= 0 && p < n {
			b[p] = '1'
		}
	}
	return string(b)
}

// ParsePositions checks a position string against text (one '0'/'1' per
// character of text) and returns the indexes of the '1's, ascending. An
// empty string is accepted as "no substitutes" only for empty text.
func ParsePositions(positions, text string) ([]int, error) {
	n := utf8.RuneCountInString(text)
	if len(positions) != n {
		return nil, fmt.Errorf("%w: %d positions for %d characters", ErrBadPositions, len(positions), n)
	}
	var out []int
	for i := 0; i < len(positions); i++ {
		switch positions[i] {
		case '0':
		case '1':
			out = append(out, i)
		default:
			return nil, fmt.Errorf("%w: %q at %d is neither 0 nor 1", ErrBadPositions, positions[i], i)
		}
	}
	return out, nil
}

// ReadBasicInfo walks the subjectAltName of cert and returns the six
// entries of layout l. It refuses a missing or repeated entry, an entry
// whose value is not one UTF8String, and values that break the encodings
// (BasicInfo.Validate). Other GeneralNames and otherNames are ignored, as a
// reader of real certificates must.
func ReadBasicInfo(cert *x509.Certificate, l Layout) (*BasicInfo, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	values, err := OtherNames(cert)
	if err != nil {
		return nil, err
	}
	got := map[string]string{}
	for _, v := range values {
		k := v.TypeID.String()
		for _, want := range l.Order() {
			if want.Equal(v.TypeID) {
				if _, dup := got[k]; dup {
					return nil, fmt.Errorf("%w: %s", ErrDuplicate, k)
				}
				got[k] = v.Value
			}
		}
	}
	for _, want := range l.Order() {
		if _, ok := got[want.String()]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrMissing, want)
		}
	}
	b := &BasicInfo{
		Name: got[l.Name.String()], BirthDate: got[l.BirthDate.String()], Sex: got[l.Sex.String()],
		Address: got[l.Address.String()], NamePositions: got[l.NamePositions.String()], AddressPositions: got[l.AddressPositions.String()],
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

// HasBasicInfo reports whether cert's subjectAltName holds any entry of l
// (a user-authentication certificate must hold none, CPS §3.1, §7.1).
func HasBasicInfo(cert *x509.Certificate, l Layout) bool {
	values, err := OtherNames(cert)
	if err != nil {
		return false
	}
	for _, v := range values {
		for _, o := range l.Order() {
			if o.Equal(v.TypeID) {
				return true
			}
		}
	}
	return false
}

// OtherName is one otherName GeneralName whose value is a UTF8String.
type OtherName struct {
	TypeID asn1.ObjectIdentifier
	Value  string
}

// otherNameASN1 is RFC 5280's OtherName with the value's [0] EXPLICIT
// wrapper left raw.
type otherNameASN1 struct {
	TypeID asn1.ObjectIdentifier
	Value  asn1.RawValue `asn1:"tag:0,explicit"`
}

// OtherNames returns the otherName entries of cert's subjectAltName in
// certificate order, each of whose values must be exactly one UTF8String
// (ErrMalformed otherwise). ErrNoSubjectAltName when there is no SAN.
func OtherNames(cert *x509.Certificate) ([]OtherName, error) {
	var raw []byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidSubjectAltName) {
			raw = e.Value
		}
	}
	if raw == nil {
		return nil, ErrNoSubjectAltName
	}
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(raw, &seq)
	if err != nil || len(rest) != 0 || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, fmt.Errorf("%w: not a SEQUENCE of GeneralName", ErrMalformed)
	}
	var out []OtherName
	for b := seq.Bytes; len(b) > 0; {
		var gn asn1.RawValue
		if b, err = asn1.Unmarshal(b, &gn); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if gn.Class != asn1.ClassContextSpecific || gn.Tag != 0 {
			continue // not an otherName
		}
		var on otherNameASN1
		// gn.FullBytes is [0] IMPLICIT OtherName: reparse it as a SEQUENCE.
		if _, err := asn1.UnmarshalWithParams(gn.FullBytes, &on, "tag:0"); err != nil {
			return nil, fmt.Errorf("%w: otherName: %v", ErrMalformed, err)
		}
		var s asn1.RawValue
		rest, err := asn1.Unmarshal(on.Value.Bytes, &s)
		if err != nil || len(rest) != 0 || s.Class != asn1.ClassUniversal || s.Tag != asn1.TagUTF8String || s.IsCompound || !utf8.Valid(s.Bytes) {
			return nil, fmt.Errorf("%w: otherName %v is not one UTF8String", ErrMalformed, on.TypeID)
		}
		out = append(out, OtherName{TypeID: on.TypeID, Value: string(s.Bytes)})
	}
	return out, nil
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// OIDSubjectAltName is id-ce-subjectAltName (RFC 5280 §4.2.1.6).
func OIDSubjectAltName() asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier(nil), oidSubjectAltName...)
}

// MarshalSubjectAltName encodes b as the subjectAltName extension value
// (GeneralNames of six otherNames in layout order). b must validate.
func MarshalSubjectAltName(b BasicInfo, l Layout) ([]byte, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	values := []string{b.Name, b.BirthDate, b.Sex, b.Address, b.NamePositions, b.AddressPositions}
	var names []asn1.RawValue
	for i, oid := range l.Order() {
		v, err := asn1.MarshalWithParams(values[i], "utf8")
		if err != nil {
			return nil, err
		}
		inner, err := asn1.Marshal(otherNameASN1{TypeID: oid, Value: asn1.RawValue{FullBytes: mustExplicit0(v)}})
		if err != nil {
			return nil, err
		}
		// inner is a universal SEQUENCE; otherName is [0] IMPLICIT, so
		// retag it as context-specific 0, constructed.
		var seq asn1.RawValue
		if _, err := asn1.Unmarshal(inner, &seq); err != nil {
			return nil, err
		}
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: seq.Bytes})
	}
	return asn1.Marshal(names)
}

func mustExplicit0(v []byte) []byte {
	b, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: v})
	return b
}
