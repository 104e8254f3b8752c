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

// SummaryOf returns the notice summary of an issued certificate of this kind.
func SummaryOf(cert *x509.Certificate, kind CertKind) (Certificate, error) {
	if kind != Signature && kind != UserAuth {
		return Certificate{}, apperr.New(apperr.InvalidInput, "printout: certificate kind %d is not an end-entity kind", kind)
	}
	return Certificate{Kind: kind, Serial: cert.SerialNumber, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter}, nil
}

// CopyOf fills a certificate copy from a certificate of this kind (as read from the card),
// reading the personal attributes with the shared contract madoguchi/jpki (the layout of real
// JPKI certificates, the OIDs of jpki.StandardAttributes, which the CA's default signature
// profile writes), which refuses malformed or missing ones. The caller sets Municipality, Date
// and OperatorID.
func CopyOf(cert *x509.Certificate, kind CertKind) (CertificateCopy, error) {
	sum, err := SummaryOf(cert, kind)
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
		if jpki.HasPersonalData(cert) {
			return CertificateCopy{}, apperr.New(apperr.InvalidInput, "printout: personal data in a user-authentication certificate")
		}
		return c, nil
	}
	attrs, err := jpki.StandardAttributes()
	if err != nil {
		return CertificateCopy{}, apperr.Wrap(apperr.Internal, err, "printout: personal-attribute OIDs")
	}
	personal, err := personalOf(cert, attrs)
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

// personalOf reads the four items (OIDs from attrs) with jpki.ReadBasicInfo and 旧氏/通称 from their extensions.
func personalOf(cert *x509.Certificate, attrs jpki.Attributes) (*Personal, error) {
	layout, ok := attrs.Layout()
	if !ok {
		return nil, fmt.Errorf("no personal-attribute OIDs")
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
		attr jpki.Attribute
		dst  *Text
	}{{jpki.AttrFormerSurname, &out.FormerSurname}, {jpki.AttrAlias, &out.Alias}} {
		oids, ok := attrs[f.attr]
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
