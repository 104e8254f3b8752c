package printout

// The only coupling to other packages' types: small conversions from workflow cases and X.509
// certificates to this package's plain structs.

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/workflow"
	"madoguchi/ca-server/profile"
	"madoguchi/jpki"
)

// KindOf converts a workflow certificate type.
func KindOf(t workflow.CertType) (CertKind, error) {
	switch t {
	case workflow.SignatureCert:
		return Signature, nil
	case workflow.UserAuthCert:
		return UserAuth, nil
	}
	return 0, apperr.New(apperr.InvalidInput, "printout: unknown certificate type %q", t)
}

// ExplanationsOf converts the explanations a case recorded as given (workflow.Case.Explained).
func ExplanationsOf(items []workflow.Item) ([]Explanation, error) {
	out := make([]Explanation, 0, len(items))
	for _, it := range items {
		switch it {
		case workflow.LegalEffect:
			out = append(out, LegalEffect)
		case workflow.ProtectKey:
			out = append(out, ProtectKey)
		case workflow.ReportLoss:
			out = append(out, ReportLoss)
		case workflow.FalseApplication:
			out = append(out, FalseApplication)
		default:
			return nil, apperr.New(apperr.InvalidInput, "printout: unknown explanation item %q", it)
		}
	}
	return out, nil
}

// kindOfProfile maps a certificate profile to the certificate kind.
func kindOfProfile(p *profile.Profile) (CertKind, error) {
	switch p.Kind {
	case profile.KindSignature:
		return Signature, nil
	case profile.KindUserAuthentication:
		return UserAuth, nil
	}
	return 0, apperr.New(apperr.InvalidInput, "printout: %s is not an end-entity profile", p)
}

// SummaryOf returns the notice summary of an issued certificate under profile p.
func SummaryOf(cert *x509.Certificate, p *profile.Profile) (Certificate, error) {
	kind, err := kindOfProfile(p)
	if err != nil {
		return Certificate{}, err
	}
	return Certificate{Kind: kind, Serial: cert.SerialNumber, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter}, nil
}

// CopyOf fills a certificate copy from a certificate issued under profile p (as read from the
// card), reading the personal attributes with the shared contract madoguchi/jpki (the layout of
// real JPKI certificates; the OIDs from p), which refuses malformed or missing ones. The caller sets Municipality, Date and OperatorID.
func CopyOf(cert *x509.Certificate, p *profile.Profile) (CertificateCopy, error) {
	sum, err := SummaryOf(cert, p)
	if err != nil {
		return CertificateCopy{}, err
	}
	c := CertificateCopy{
		Certificate:        sum,
		Subject:            cert.Subject.String(),
		Issuer:             cert.Issuer.String(),
		SignatureAlgorithm: cert.SignatureAlgorithm.String(),
		KeyUsage:           cert.KeyUsage,
		FingerprintSHA256:  sha256.Sum256(cert.Raw),
	}
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		c.PublicKey = fmt.Sprintf("RSA %dビット", k.N.BitLen())
	default:
		c.PublicKey = strings.TrimPrefix(fmt.Sprintf("%T", k), "*")
	}
	for _, oid := range cert.PolicyIdentifiers {
		c.Policies = append(c.Policies, oid.String())
	}
	for _, eku := range cert.ExtKeyUsage {
		c.ExtKeyUsage = append(c.ExtKeyUsage, extKeyUsageName(eku))
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		c.ExtKeyUsage = append(c.ExtKeyUsage, oid.String())
	}
	if sum.Kind != Signature {
		// CPS §3.1, §7.1: a user-authentication certificate carries no personal data.
		if hasPersonalData(cert) {
			return CertificateCopy{}, apperr.New(apperr.InvalidInput, "printout: personal data in a user-authentication certificate")
		}
		return c, nil
	}
	personal, err := personalOf(cert, p)
	if err != nil {
		return CertificateCopy{}, apperr.Wrap(apperr.InvalidInput, err, "printout: personal attributes")
	}
	c.Personal = personal
	return c, nil
}

func extKeyUsageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageClientAuth:
		return "クライアント認証（clientAuth）"
	case x509.ExtKeyUsageServerAuth:
		return "サーバ認証（serverAuth）"
	case x509.ExtKeyUsageEmailProtection:
		return "電子メール保護（emailProtection）"
	case x509.ExtKeyUsageCodeSigning:
		return "コード署名（codeSigning）"
	case x509.ExtKeyUsageOCSPSigning:
		return "OCSP署名（OCSPSigning）"
	}
	return fmt.Sprintf("拡張鍵用途 %d", int(u))
}

// personalOf reads the four items with jpki.ReadBasicInfo and 旧氏/通称 from their extensions.
func personalOf(cert *x509.Certificate, p *profile.Profile) (*Personal, error) {
	layout, ok := p.Layout()
	if !ok {
		return nil, fmt.Errorf("%s carries no personal data", p)
	}
	b, err := jpki.ReadBasicInfo(cert, layout)
	if err != nil {
		return nil, err
	}
	d, err := jpki.ParseBirthDate(b.BirthDate)
	if err != nil {
		return nil, err
	}
	namePos, _ := jpki.ParsePositions(b.NamePositions, b.Name)
	addrPos, _ := jpki.ParsePositions(b.AddressPositions, b.Address)
	out := &Personal{
		Name:      Text{b.Name, namePos},
		BirthDate: Date{d.Year, time.Month(d.Month), d.Day},
		Address:   Text{b.Address, addrPos},
	}
	switch b.Sex {
	case jpki.SexMale:
		out.Sex = Male
	case jpki.SexFemale:
		out.Sex = Female
	default:
		return nil, fmt.Errorf("sex code %q not printable", b.Sex)
	}
	for _, f := range []struct {
		attr profile.Attribute
		dst  *Text
	}{{profile.AttrFormerSurname, &out.FormerSurname}, {profile.AttrAlias, &out.Alias}} {
		oids, ok := p.Attributes[f.attr]
		if !ok {
			continue
		}
		v, subs, err := jpki.ReadTextExtension(cert, oids.OID, oids.Substitutes)
		if err != nil {
			return nil, err
		}
		*f.dst = Text{v, subs}
	}
	return out, nil
}

// hasPersonalData reports an extension or a subjectAltName otherName under J-LIS's personal-data
// arc.
func hasPersonalData(cert *x509.Certificate) bool {
	arc := profile.PersonalDataArc
	under := func(o []int) bool { return len(o) > len(arc) && arc.Equal(o[:len(arc)]) }
	for _, e := range cert.Extensions {
		if under(e.Id) {
			return true
		}
	}
	names, _ := jpki.OtherNames(cert)
	for _, n := range names {
		if under(n.TypeID) {
			return true
		}
	}
	return false
}
