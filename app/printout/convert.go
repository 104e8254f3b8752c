package printout

// The only coupling to other packages' types: small conversions from workflow cases and X.509
// certificates to this package's plain structs.

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"

	"madoguchi/app/apperr"
	"madoguchi/app/workflow"
	"madoguchi/ca-server/issuer"
	"madoguchi/ca-server/profile"
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
// card), decoding the personal attributes with issuer.DecodeAttributes, which refuses malformed
// or unknown ones. The caller sets Municipality, Date and OperatorID.
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
	attrs, err := issuer.DecodeAttributes(cert, p)
	if err != nil {
		return CertificateCopy{}, apperr.Wrap(apperr.InvalidInput, err, "printout: personal attributes")
	}
	if sum.Kind == Signature {
		c.Personal = &Personal{
			Name:          Text{attrs.Name.Value, attrs.Name.Substitutes},
			BirthDate:     Date{attrs.BirthDate.Year, attrs.BirthDate.Month, attrs.BirthDate.Day},
			Sex:           Sex(attrs.Sex),
			Address:       Text{attrs.Address.Value, attrs.Address.Substitutes},
			FormerSurname: Text{attrs.FormerSurname.Value, attrs.FormerSurname.Substitutes},
			Alias:         Text{attrs.Alias.Value, attrs.Alias.Substitutes},
		}
	}
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
