package issuer

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/profile"
	"madoguchi/jpki"
)

// Encoding of personal attributes (TS Art. 11: in the extension area), as
// real 署名用電子証明書 carry them (J-LIS プロファイル仕様書 2.2; see
// madoguchi/jpki for the layout and the encodings):
//
//	subjectAltName (non-critical; the subject is not empty)
//	  otherName name               UTF8String  surname U+3000 given name
//	  otherName dateOfBirth        UTF8String  EYYYYMMDD (era digit + Gregorian date)
//	  otherName sex                UTF8String  "1" male, "2" female
//	  otherName address            UTF8String
//	  otherName name positions     UTF8String  one '0'/'1' per character of the name
//	  otherName address positions  UTF8String  one '0'/'1' per character of the address
//
// OIDs come from the profile. 旧氏 and 通称 (TS Art. 3(1)) have no public
// J-LIS encoding we could find, so they keep ours (see signature.json's
// notes): each a separate non-critical extension whose value is a DER
// UTF8String, with, only when it has substitutes, a second extension holding
// SubstitutePositions ::= SEQUENCE SIZE (1..MAX) OF INTEGER (0..MAX), the
// 0-based character indexes, strictly ascending.
//
// Every profile with an issuerAltName gets the extension (non-critical):
// GeneralNames { directoryName } (real certificates of both kinds: C=JP,
// O=公的個人認証サービス).

var oidIssuerAltName = asn1.ObjectIdentifier{2, 5, 29, 18}

// Attributes are the personal attributes of a signature certificate.
type Attributes struct {
	Name          applicant.Text
	Sex           applicant.Sex
	BirthDate     applicant.Date
	Address       applicant.Text
	FormerSurname applicant.Text
	Alias         applicant.Text
}

// basicInfo returns the jpki encoding of a's four items.
func basicInfo(a *applicant.Applicant) (jpki.BasicInfo, error) {
	dob, err := jpki.BirthDate(a.BirthDate.Year, int(a.BirthDate.Month), a.BirthDate.Day)
	if err != nil {
		return jpki.BasicInfo{}, err
	}
	// One ASCII space becomes one U+3000: positions are unchanged.
	name := jpki.CertificateName(a.Name.Value)
	b := jpki.BasicInfo{
		Name: name, BirthDate: dob, Sex: a.Sex.Code(), Address: a.Address.Value,
		NamePositions:    jpki.Positions(utf8.RuneCountInString(name), a.Name.Substitutes),
		AddressPositions: jpki.Positions(utf8.RuneCountInString(a.Address.Value), a.Address.Substitutes),
	}
	return b, b.Validate()
}

// issuerAltName returns the issuerAltName extension of p, if it has one.
func issuerAltName(p *profile.Profile) ([]pkix.Extension, error) {
	rdns := p.IssuerAltNameRDNs()
	if rdns == nil {
		return nil, nil
	}
	name, err := asn1.Marshal(rdns)
	if err != nil {
		return nil, fmt.Errorf("issuer: issuerAltName: %w", err)
	}
	// directoryName [4] is EXPLICIT (Name is a CHOICE).
	v, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: name}})
	if err != nil {
		return nil, fmt.Errorf("issuer: issuerAltName: %w", err)
	}
	return []pkix.Extension{{Id: oidIssuerAltName, Value: v}}, nil
}

// attributeExtensions returns the extensions for a's attributes under p:
// the subjectAltName with the four items and positions, then 旧氏 and 通称.
// A profile without personal data yields none.
func attributeExtensions(p *profile.Profile, a *applicant.Applicant) ([]pkix.Extension, error) {
	if !p.CarriesPersonalData() {
		return nil, nil
	}
	layout, _ := p.Layout()
	for _, o := range layout.Order() {
		if o == nil {
			return nil, fmt.Errorf("%w: subjectAltName layout in %s", ErrProfileLacksAttribute, p)
		}
	}
	b, err := basicInfo(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidApplicant, err)
	}
	san, err := jpki.MarshalSubjectAltName(b, layout)
	if err != nil {
		return nil, fmt.Errorf("issuer: subjectAltName: %w", err)
	}
	exts := []pkix.Extension{{Id: jpki.OIDSubjectAltName(), Value: san}}
	for _, attr := range []profile.Attribute{profile.AttrFormerSurname, profile.AttrAlias} {
		text := a.FormerSurname
		if attr == profile.AttrAlias {
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
// personal-data arc 1.2.392.200149.8.5.5, or a subjectAltName otherName
// under it, whatever the profile.
func HasPersonalData(cert *x509.Certificate) bool {
	arc := profile.PersonalDataArc
	for _, e := range cert.Extensions {
		if len(e.Id) > len(arc) && e.Id[:len(arc)].Equal(arc) {
			return true
		}
	}
	names, _ := jpki.OtherNames(cert)
	for _, n := range names {
		if len(n.TypeID) > len(arc) && n.TypeID[:len(arc)].Equal(arc) {
			return true
		}
	}
	return false
}

// DecodeAttributes reads the personal attributes of cert as encoded by Issue
// under profile p: the four items and positions with jpki.ReadBasicInfo,
// 旧氏 and 通称 from their extensions. Under a profile without personal data
// it returns zero Attributes, or ErrPersonalDataNotAllowed if cert has any.
// Otherwise it refuses a missing entry (ErrMissingAttribute), extensions
// under the personal-data arc that p does not define (ErrUnknownAttribute),
// critical ones (ErrCriticalAttribute), and any value that is not exactly the
// encoding above (ErrMalformedAttribute).
func DecodeAttributes(cert *x509.Certificate, p *profile.Profile) (*Attributes, error) {
	out := &Attributes{}
	if !p.CarriesPersonalData() {
		if HasPersonalData(cert) {
			return nil, ErrPersonalDataNotAllowed
		}
		return out, nil
	}
	layout, _ := p.Layout()
	b, err := jpki.ReadBasicInfo(cert, layout)
	switch {
	case errors.Is(err, jpki.ErrMissing), errors.Is(err, jpki.ErrNoSubjectAltName):
		return nil, fmt.Errorf("%w: %w", ErrMissingAttribute, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrMalformedAttribute, err)
	}
	if out.Sex, err = applicant.ParseSex(b.Sex); err != nil {
		return nil, fmt.Errorf("%w: sex: %w", ErrMalformedAttribute, err)
	}
	d, err := jpki.ParseBirthDate(b.BirthDate)
	if err != nil {
		return nil, fmt.Errorf("%w: dateOfBirth: %w", ErrMalformedAttribute, err)
	}
	out.BirthDate = applicant.Date{Year: d.Year, Month: time.Month(d.Month), Day: d.Day}
	namePos, _ := jpki.ParsePositions(b.NamePositions, b.Name)
	addrPos, _ := jpki.ParsePositions(b.AddressPositions, b.Address)
	out.Name = applicant.Text{Value: b.Name, Substitutes: namePos}
	out.Address = applicant.Text{Value: b.Address, Substitutes: addrPos}

	type slot struct {
		attr        profile.Attribute
		substitutes bool
	}
	byOID := map[string]slot{}
	for _, attr := range []profile.Attribute{profile.AttrFormerSurname, profile.AttrAlias} {
		if oids, ok := p.Attributes[attr]; ok {
			byOID[oids.OID.String()] = slot{attr, false}
			if oids.Substitutes != nil {
				byOID[oids.Substitutes.String()] = slot{attr, true}
			}
		}
	}
	values := map[profile.Attribute]string{}
	subs := map[profile.Attribute][]int{}
	arc := profile.PersonalDataArc
	for _, e := range cert.Extensions {
		s, known := byOID[e.Id.String()]
		if !known {
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
