package jpki

// The vocabulary of JPKI certificates both programs speak: the kinds of end-entity certificate,
// the personal attributes a signature certificate carries and their OIDs, and J-LIS's arc for
// them. The CA's profiles (ca-server/profile) are built from these types; the terminal reads
// certificates with StandardAttributes.

import (
	"bytes"
	"crypto/x509"
	_ "embed"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Kind is the type of an end-entity certificate.
type Kind string

// Kinds of end-entity certificate.
const (
	// KindSignature is 署名用電子証明書: carries the holder's personal attributes (TS Art. 11).
	KindSignature Kind = "signature"
	// KindUserAuthentication is 利用者証明用電子証明書: carries no personal data (CPS §3.1,
	// §7.1).
	KindUserAuthentication Kind = "user-authentication"
)

// Attribute names one personal attribute carried by a signature certificate.
type Attribute string

// Personal attributes, in the order their extensions appear in a certificate.
const (
	AttrName          Attribute = "name"          // 氏名
	AttrSex           Attribute = "sex"           // 男女の別
	AttrDateOfBirth   Attribute = "dateOfBirth"   // 出生の年月日
	AttrAddress       Attribute = "address"       // 住所
	AttrFormerSurname Attribute = "formerSurname" // 旧氏
	AttrAlias         Attribute = "alias"         // 通称
)

// AttributeOrder lists every attribute in extension order.
var AttributeOrder = []Attribute{AttrName, AttrSex, AttrDateOfBirth, AttrAddress, AttrFormerSurname, AttrAlias}

// PersonalDataArc is J-LIS's arc for personal-attribute extensions (DOMAIN §2). Every attribute
// OID must lie strictly under it.
var PersonalDataArc = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5}

// UnderPersonalDataArc reports whether oid lies strictly under PersonalDataArc.
func UnderPersonalDataArc(oid asn1.ObjectIdentifier) bool {
	return len(oid) > len(PersonalDataArc) && PersonalDataArc.Equal(oid[:len(PersonalDataArc)])
}

// HasPersonalData reports whether cert carries an extension or a subjectAltName otherName under
// PersonalDataArc (a user-authentication certificate must carry none, CPS §3.1, §7.1).
func HasPersonalData(cert *x509.Certificate) bool {
	for _, e := range cert.Extensions {
		if UnderPersonalDataArc(e.Id) {
			return true
		}
	}
	names, _ := OtherNames(cert)
	for _, n := range names {
		if UnderPersonalDataArc(n.TypeID) {
			return true
		}
	}
	return false
}

// AttributeOIDs are the extension OIDs of one personal attribute.
type AttributeOIDs struct {
	OID asn1.ObjectIdentifier
	// Substitutes is the OID of the extension holding the positions of substitute characters
	// (R02 II-2-5(4)(5)); nil for non-text attributes or when none is defined.
	Substitutes asn1.ObjectIdentifier
}

// Attributes maps each personal attribute a certificate carries to its OIDs; empty for a
// user-authentication certificate. Callers must not modify an Attributes they did not make.
type Attributes map[Attribute]AttributeOIDs

// Layout returns the subjectAltName layout of the basic four items and their substitute
// positions. ok is false when a carries no personal data.
func (a Attributes) Layout() (l Layout, ok bool) {
	if len(a) == 0 {
		return Layout{}, false
	}
	return Layout{
		Name: a[AttrName].OID, BirthDate: a[AttrDateOfBirth].OID, Sex: a[AttrSex].OID, Address: a[AttrAddress].OID,
		NamePositions: a[AttrName].Substitutes, AddressPositions: a[AttrAddress].Substitutes,
	}, true
}

// Equal reports whether a and b assign the same OIDs to the same attributes.
func (a Attributes) Equal(b Attributes) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !v.OID.Equal(w.OID) || !v.Substitutes.Equal(w.Substitutes) {
			return false
		}
	}
	return true
}

//go:embed attributes.json
var attributesJSON []byte

// ErrBadAttributes reports attributes.json (or data in its shape) that break the rules.
var ErrBadAttributes = errors.New("jpki: invalid personal-attribute OIDs")

// StandardAttributes returns the personal-attribute OIDs of a JPKI signature certificate, from
// the data file attributes.json (OIDs are data, DOMAIN §2): every attribute of AttributeOrder,
// each under PersonalDataArc, with substitute positions for name and address. The map is fresh
// on each call; the error is only ever a broken data file.
func StandardAttributes() (Attributes, error) {
	a, err := standardAttributes()
	if err != nil {
		return nil, err
	}
	out := make(Attributes, len(a))
	for k, v := range a {
		out[k] = v
	}
	return out, nil
}

var standardAttributes = sync.OnceValues(func() (Attributes, error) { return ParseAttributes(attributesJSON) })

// ParseAttributes parses data in attributes.json's shape and checks it: known attributes only,
// all of them, OIDs well formed, under PersonalDataArc and each used once, substitute OIDs for
// name and address and only for text attributes.
func ParseAttributes(data []byte) (Attributes, error) {
	var f struct {
		Notes              []string `json:"notes"`
		PersonalAttributes map[string]struct {
			OID            string `json:"oid"`
			SubstitutesOID string `json:"substitutesOid"`
		} `json:"personalAttributes"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAttributes, err)
	}
	known := map[Attribute]bool{}
	for _, a := range AttributeOrder {
		known[a] = true
	}
	text := map[Attribute]bool{AttrName: true, AttrAddress: true, AttrFormerSurname: true, AttrAlias: true}
	out := Attributes{}
	seen := map[string]bool{}
	oid := func(field, s string) (asn1.ObjectIdentifier, error) {
		var o asn1.ObjectIdentifier
		for _, part := range strings.Split(s, ".") {
			n, err := strconv.Atoi(part)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%w: %s: malformed OID %q", ErrBadAttributes, field, s)
			}
			o = append(o, n)
		}
		if !UnderPersonalDataArc(o) {
			return nil, fmt.Errorf("%w: %s: %s is not under %s", ErrBadAttributes, field, o, PersonalDataArc)
		}
		if seen[o.String()] {
			return nil, fmt.Errorf("%w: %s: %s used twice", ErrBadAttributes, field, o)
		}
		seen[o.String()] = true
		return o, nil
	}
	for name, v := range f.PersonalAttributes {
		a := Attribute(name)
		if !known[a] {
			return nil, fmt.Errorf("%w: unknown attribute %q", ErrBadAttributes, name)
		}
		var oids AttributeOIDs
		var err error
		if oids.OID, err = oid(name+".oid", v.OID); err != nil {
			return nil, err
		}
		if v.SubstitutesOID != "" {
			if !text[a] {
				return nil, fmt.Errorf("%w: %s is not text and has no substitutes", ErrBadAttributes, name)
			}
			if oids.Substitutes, err = oid(name+".substitutesOid", v.SubstitutesOID); err != nil {
				return nil, err
			}
		}
		out[a] = oids
	}
	for _, a := range AttributeOrder {
		if _, ok := out[a]; !ok {
			return nil, fmt.Errorf("%w: attribute %s missing", ErrBadAttributes, a)
		}
	}
	for _, a := range []Attribute{AttrName, AttrAddress} {
		if out[a].Substitutes == nil {
			return nil, fmt.Errorf("%w: %s has no substitutesOid (R02 II-2-5(4)(5))", ErrBadAttributes, a)
		}
	}
	return out, nil
}
