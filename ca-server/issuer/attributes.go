package issuer

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"unicode/utf8"

	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/profile"
)

// Encoding of personal attributes (TS Art. 11: in the extension area).
//
// Each attribute is its own non-critical extension, OID from the profile,
// whose extnValue is a DER UTF8String:
//
//	name, address, formerSurname, alias   the recorded text
//	sex                                   "1" male, "2" female
//	dateOfBirth                           "YYYYMMDD" (Gregorian, civil date, no zone)
//
// A date is a string rather than GeneralizedTime because a date of birth has
// no time of day and no zone; GeneralizedTime would invent both.
//
// For a text attribute with substitute characters (R02 II-2-5(4)(5)) a second
// non-critical extension, OID from the profile's substitutesOid, holds
//
//	SubstitutePositions ::= SEQUENCE SIZE (1..MAX) OF INTEGER (0..MAX)
//
// the 0-based Unicode code-point indexes of the substitutes, strictly
// ascending. It is absent when there are none. Non-critical: a verifier that
// does not know these OIDs can still verify the signature.

// Attributes are the personal attributes of a signature certificate.
type Attributes struct {
	Name          applicant.Text
	Sex           applicant.Sex
	BirthDate     applicant.Date
	Address       applicant.Text
	FormerSurname applicant.Text
	Alias         applicant.Text
}

// attributeExtensions returns the extensions for a's attributes under p, in
// profile.AttributeOrder. A profile without personal data yields none.
func attributeExtensions(p *profile.Profile, a *applicant.Applicant) ([]pkix.Extension, error) {
	if !p.CarriesPersonalData() {
		return nil, nil
	}
	var exts []pkix.Extension
	for _, attr := range profile.AttributeOrder {
		var text applicant.Text
		switch attr {
		case profile.AttrName:
			text = a.Name
		case profile.AttrSex:
			text = applicant.Text{Value: a.Sex.Code()}
		case profile.AttrDateOfBirth:
			text = applicant.Text{Value: a.BirthDate.Compact()}
		case profile.AttrAddress:
			text = a.Address
		case profile.AttrFormerSurname:
			text = a.FormerSurname
		case profile.AttrAlias:
			text = a.Alias
		}
		if text.Value == "" {
			continue // optional attribute the applicant does not have
		}
		oids, ok := p.Attributes[attr]
		if !ok {
			return nil, fmt.Errorf("%w: %s in %s", ErrProfileLacksAttribute, attr, p)
		}
		v, err := asn1.MarshalWithParams(text.Value, "utf8")
		if err != nil {
			return nil, fmt.Errorf("issuer: encode %s: %w", attr, err)
		}
		exts = append(exts, pkix.Extension{Id: oids.OID, Value: v})
		if len(text.Substitutes) == 0 {
			continue
		}
		if oids.Substitutes == nil {
			return nil, fmt.Errorf("%w: substitutes of %s in %s", ErrProfileLacksAttribute, attr, p)
		}
		v, err = asn1.Marshal(text.Substitutes)
		if err != nil {
			return nil, fmt.Errorf("issuer: encode %s substitutes: %w", attr, err)
		}
		exts = append(exts, pkix.Extension{Id: oids.Substitutes, Value: v})
	}
	return exts, nil
}

// HasPersonalData reports whether cert has any extension under J-LIS's
// personal-data arc 1.2.392.200149.8.5.5, whatever the profile.
func HasPersonalData(cert *x509.Certificate) bool {
	arc := profile.PersonalDataArc
	for _, e := range cert.Extensions {
		if len(e.Id) > len(arc) && e.Id[:len(arc)].Equal(arc) {
			return true
		}
	}
	return false
}

// DecodeAttributes reads the personal attributes of cert as encoded by Issue
// under profile p. Under a profile without personal data it returns zero
// Attributes, or ErrPersonalDataNotAllowed if cert has any extension under
// the personal-data arc. Otherwise it requires name, sex, date of birth and
// address (ErrMissingAttribute) and refuses extensions under the arc that p
// does not define (ErrUnknownAttribute), critical ones
// (ErrCriticalAttribute), and any value that is not exactly the encoding
// above (ErrMalformedAttribute).
func DecodeAttributes(cert *x509.Certificate, p *profile.Profile) (*Attributes, error) {
	out := &Attributes{}
	if !p.CarriesPersonalData() {
		if HasPersonalData(cert) {
			return nil, ErrPersonalDataNotAllowed
		}
		return out, nil
	}
	type slot struct {
		attr        profile.Attribute
		substitutes bool
	}
	byOID := map[string]slot{}
	for attr, oids := range p.Attributes {
		byOID[oids.OID.String()] = slot{attr, false}
		if oids.Substitutes != nil {
			byOID[oids.Substitutes.String()] = slot{attr, true}
		}
	}
	values := map[profile.Attribute]string{}
	subs := map[profile.Attribute][]int{}
	for _, e := range cert.Extensions {
		s, known := byOID[e.Id.String()]
		if !known {
			arc := profile.PersonalDataArc
			if len(e.Id) > len(arc) && e.Id[:len(arc)].Equal(arc) {
				return nil, fmt.Errorf("%w: %v", ErrUnknownAttribute, e.Id)
			}
			continue
		}
		if e.Critical {
			return nil, fmt.Errorf("%w: %v", ErrCriticalAttribute, e.Id)
		}
		if s.substitutes {
			var pos []int
			rest, err := asn1.Unmarshal(e.Value, &pos)
			if err != nil || len(rest) != 0 || len(pos) == 0 {
				return nil, fmt.Errorf("%w: %s substitutes", ErrMalformedAttribute, s.attr)
			}
			subs[s.attr] = pos
			continue
		}
		v, err := decodeUTF8String(e.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformedAttribute, s.attr, err)
		}
		values[s.attr] = v
	}
	for _, a := range []profile.Attribute{profile.AttrName, profile.AttrSex, profile.AttrDateOfBirth, profile.AttrAddress} {
		if _, ok := values[a]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrMissingAttribute, a)
		}
	}
	for a, pos := range subs {
		if _, ok := values[a]; !ok {
			return nil, fmt.Errorf("%w: %s substitutes without %s", ErrMalformedAttribute, a, a)
		}
		n := utf8.RuneCountInString(values[a])
		prev := -1
		for _, q := range pos {
			if q <= prev || q >= n {
				return nil, fmt.Errorf("%w: %s substitute position %d", ErrMalformedAttribute, a, q)
			}
			prev = q
		}
	}
	var err error
	if out.Sex, err = applicant.ParseSex(values[profile.AttrSex]); err != nil {
		return nil, fmt.Errorf("%w: sex: %w", ErrMalformedAttribute, err)
	}
	dob := values[profile.AttrDateOfBirth]
	if len(dob) != 8 {
		return nil, fmt.Errorf("%w: dateOfBirth is not YYYYMMDD", ErrMalformedAttribute)
	}
	if out.BirthDate, err = applicant.ParseDate(dob); err != nil {
		return nil, fmt.Errorf("%w: dateOfBirth: %w", ErrMalformedAttribute, err)
	}
	out.Name = applicant.Text{Value: values[profile.AttrName], Substitutes: subs[profile.AttrName]}
	out.Address = applicant.Text{Value: values[profile.AttrAddress], Substitutes: subs[profile.AttrAddress]}
	out.FormerSurname = applicant.Text{Value: values[profile.AttrFormerSurname], Substitutes: subs[profile.AttrFormerSurname]}
	out.Alias = applicant.Text{Value: values[profile.AttrAlias], Substitutes: subs[profile.AttrAlias]}
	return out, nil
}

// decodeUTF8String accepts exactly one DER UTF8String holding valid,
// non-empty UTF-8.
func decodeUTF8String(der []byte) (string, error) {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(der, &raw)
	switch {
	case err != nil:
		return "", err
	case len(rest) != 0:
		return "", fmt.Errorf("trailing data")
	case raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagUTF8String || raw.IsCompound:
		return "", fmt.Errorf("not a UTF8String (tag %d)", raw.Tag)
	case len(raw.Bytes) == 0 || !utf8.Valid(raw.Bytes):
		return "", fmt.Errorf("empty or invalid UTF-8")
	}
	return string(raw.Bytes), nil
}
