package ocsp

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ResponderValidityYears: the OCSP responder certificate is valid 5 years
// (CPS §6.3.2.1).
const ResponderValidityYears = 5

// OIDs for the responder certificate.
var (
	// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): clients
	// need not check the responder certificate's own revocation.
	oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
	// ErrOutlivesCA: the responder certificate would end after the CA's.
	ErrOutlivesCA = errors.New("ocsp: responder certificate would outlive the CA certificate")
)

// ResponderCertRequest describes the delegated responder certificate.
type ResponderCertRequest struct {
	Issuer       *x509.Certificate
	IssuerSigner crypto.Signer    // the CA key (HSM)
	PublicKey    crypto.PublicKey // the responder key (RSA 2048, HSM)
	Subject      pkix.Name
	Serial       *big.Int
	NotBefore    time.Time
	// Policy is the certificate policy of the OCSP responder, from the
	// profile data: 1.2.392.200149.8.5.1.3.330 for the user-authentication
	// CA (CPS §1.2).
	Policy asn1.ObjectIdentifier
}

// IssueResponderCertificate signs a delegated OCSP responder certificate:
// valid ResponderValidityYears from NotBefore (CPS §6.3.2.1), keyUsage
// digitalSignature, extKeyUsage id-kp-OCSPSigning only, id-pkix-ocsp-nocheck,
// the given policy, sha256WithRSAEncryption (TS Art. 2). It refuses a
// validity beyond the CA certificate's (ErrOutlivesCA).
func IssueResponderCertificate(q ResponderCertRequest) ([]byte, error) {
	switch {
	case q.Issuer == nil || q.IssuerSigner == nil || q.PublicKey == nil:
		return nil, fmt.Errorf("%w: responder certificate needs issuer, issuer signer and public key", ErrConfig)
	case q.Serial == nil || q.Serial.Sign() <= 0:
		return nil, fmt.Errorf("%w: responder certificate needs a positive serial", ErrConfig)
	case q.NotBefore.IsZero():
		return nil, fmt.Errorf("%w: responder certificate needs notBefore", ErrConfig)
	case len(q.Policy) == 0:
		return nil, fmt.Errorf("%w: responder certificate needs its policy OID (CPS §1.2)", ErrConfig)
	}
	notAfter := q.NotBefore.AddDate(ResponderValidityYears, 0, 0)
	if notAfter.After(q.Issuer.NotAfter) {
		return nil, fmt.Errorf("%w: until %s, CA until %s", ErrOutlivesCA,
			notAfter.UTC().Format(time.RFC3339), q.Issuer.NotAfter.UTC().Format(time.RFC3339))
	}
	spki, err := x509.MarshalPKIXPublicKey(q.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	ski := sha1.Sum(info.Key.Bytes) // RFC 5280 §4.2.1.2 method (1)
	policy, err := x509.OIDFromInts(oidInts(q.Policy))
	if err != nil {
		return nil, fmt.Errorf("%w: policy: %w", ErrConfig, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          q.Serial,
		Subject:               q.Subject,
		NotBefore:             q.NotBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:],
		Policies:              []x509.OID{policy},
		SignatureAlgorithm:    x509.SHA256WithRSA,
		ExtraExtensions:       []pkix.Extension{{Id: oidOCSPNoCheck, Value: []byte{0x05, 0x00}}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, q.Issuer, q.PublicKey, q.IssuerSigner)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSign, err)
	}
	return der, nil
}

func oidInts(o asn1.ObjectIdentifier) []uint64 {
	out := make([]uint64, len(o))
	for i, v := range o {
		out[i] = uint64(v)
	}
	return out
}
