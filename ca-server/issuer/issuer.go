// Package issuer builds and signs JPKI user certificates — signature and
// user-authentication — from a profile, the applicant's data and the
// subject's public key, with the CA key behind a crypto.Signer.
//
// Scope: certificate construction and signing, the validity rule (CPS
// §6.3.2.2) and the decoding of personal attributes. It does not store,
// audit-log or check "one certificate per person"; the caller does that
// around Issue.
//
// Concurrency: an *Issuer is immutable after New and Issue may be called from
// several goroutines at once, provided the configured Signer and Rand are
// safe for concurrent use (crypto/rand is; an HSM signer must use a session
// pool).
package issuer

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/profile"
	"madoguchi/internal/wallclock"
)

// Errors. Callers branch on them with errors.Is.
var (
	ErrMissingConfig          = errors.New("issuer: incomplete configuration")
	ErrNotCA                  = errors.New("issuer: CA certificate is not a CA certificate")
	ErrCACertKeyUsage         = errors.New("issuer: CA certificate lacks keyCertSign or cRLSign")
	ErrCACertNoKeyID          = errors.New("issuer: CA certificate lacks a subject key identifier")
	ErrCAKeyNotRSA2048        = errors.New("issuer: CA key is not RSA 2048")
	ErrKeyMismatch            = errors.New("issuer: signer's public key does not match the CA certificate")
	ErrCAKeyExpired           = errors.New("issuer: CA key usage period is over")
	ErrKeyUsagePeriodTooLong  = errors.New("issuer: CA key usage period exceeds 4 years")
	ErrCACertNotValid         = errors.New("issuer: CA certificate is not valid now")
	ErrNoProfile              = errors.New("issuer: no profile")
	ErrUnsupportedValidity    = errors.New("issuer: unsupported validity rule")
	ErrNoApplicant            = errors.New("issuer: no applicant")
	ErrInvalidApplicant       = errors.New("issuer: invalid applicant data")
	ErrProfileLacksAttribute  = errors.New("issuer: profile has no OID for an attribute the applicant has")
	ErrNoSubjectKey           = errors.New("issuer: no subject public key")
	ErrSubjectKeySize         = errors.New("issuer: subject key is not RSA 2048")
	ErrSubjectKeyExponent     = errors.New("issuer: subject key exponent is not 65537")
	ErrSubjectKeyIsCAKey      = errors.New("issuer: subject key is the CA key")
	ErrNotInRenewalWindow     = errors.New("issuer: early renewal outside the three-month window")
	ErrCardExpired            = errors.New("issuer: card has expired")
	ErrOutlivesCA             = errors.New("issuer: certificate would outlive the CA certificate")
	ErrSerial                 = errors.New("issuer: cannot make a serial number")
	ErrSign                   = errors.New("issuer: signing failed")
	ErrMissingAttribute       = errors.New("issuer: certificate lacks a required personal attribute")
	ErrUnknownAttribute       = errors.New("issuer: unknown personal-attribute extension")
	ErrCriticalAttribute      = errors.New("issuer: personal-attribute extension marked critical")
	ErrMalformedAttribute     = errors.New("issuer: malformed personal-attribute extension")
	ErrPersonalDataNotAllowed = errors.New("issuer: personal data in a certificate whose profile carries none")
)

const (
	// TS Art. 2, Art. 8(2): RSA with a 2048-bit modulus, for user and CA keys.
	rsaBits = 2048
	// The only public exponent accepted for user keys (the HSM generates
	// F4; anything else signals a foreign key).
	rsaExponent = 65537
	// TS Art. 8(3): the CA key is used for at most four years from
	// generation. The CA certificate cannot predate its key, so a usage end
	// later than NotBefore + 4 years is certainly too long.
	caKeyUsageYears = 4
	// serialBytes: 128-bit serial with the high bit cleared, so the DER
	// INTEGER is positive and at most 16 octets (RFC 5280 §4.1.2.2: ≤ 20).
	serialBytes = 16
)

// Config configures an Issuer. Certificate, Signer and KeyUsableUntil are
// required.
type Config struct {
	// Certificate is the CA certificate whose key signs: it must be a CA
	// certificate with keyCertSign and cRLSign and a subject key identifier.
	Certificate *x509.Certificate
	// Signer holds the CA private key: an HSM signer in production, a Go
	// key in tests. Its public key must equal Certificate's.
	Signer crypto.Signer
	// KeyUsableUntil ends the CA key's usage period: 4 years from the key's
	// generation at most (TS Art. 8(3), CPS §6.3.2.1). New and Issue refuse
	// at or after this instant.
	KeyUsableUntil time.Time
	// Now returns the current time (the issuance instant); nil means
	// time.Now. Inject a trusted clock (CPS §6.8).
	Now func() time.Time
	// Rand supplies serial-number randomness; nil means crypto/rand.
	Rand io.Reader
}

// Issuer issues user certificates under one CA key.
type Issuer struct {
	cert           *x509.Certificate
	signer         crypto.Signer
	keyUsableUntil time.Time
	now            func() time.Time
	rand           io.Reader
}

// New checks cfg and returns an Issuer. It refuses, in this order: a missing
// field (ErrMissingConfig); a certificate that is not a CA (ErrNotCA), lacks
// keyCertSign or cRLSign (ErrCACertKeyUsage) or a subject key identifier
// (ErrCACertNoKeyID); a CA key that is not RSA 2048 (ErrCAKeyNotRSA2048, TS
// Art. 8(2)); a signer whose public key is not the certificate's
// (ErrKeyMismatch: a wrong HSM object must never sign); a usage period longer
// than 4 years (ErrKeyUsagePeriodTooLong) or already over (ErrCAKeyExpired),
// TS Art. 8(3).
func New(cfg Config) (*Issuer, error) {
	switch {
	case cfg.Certificate == nil:
		return nil, fmt.Errorf("%w: no CA certificate", ErrMissingConfig)
	case cfg.Signer == nil:
		return nil, fmt.Errorf("%w: no signer", ErrMissingConfig)
	case cfg.KeyUsableUntil.IsZero():
		return nil, fmt.Errorf("%w: no CA key usage end (TS Art. 8(3))", ErrMissingConfig)
	}
	c := cfg.Certificate
	if !c.BasicConstraintsValid || !c.IsCA {
		return nil, ErrNotCA
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, fmt.Errorf("%w: has %#x", ErrCACertKeyUsage, int(c.KeyUsage))
	}
	if len(c.SubjectKeyId) == 0 {
		return nil, ErrCACertNoKeyID
	}
	caPub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok || caPub.N.BitLen() != rsaBits {
		return nil, ErrCAKeyNotRSA2048
	}
	if !caPub.Equal(cfg.Signer.Public()) {
		return nil, ErrKeyMismatch
	}
	if cfg.KeyUsableUntil.After(c.NotBefore.AddDate(caKeyUsageYears, 0, 0)) {
		return nil, fmt.Errorf("%w: usable until %v, CA certificate from %v", ErrKeyUsagePeriodTooLong,
			cfg.KeyUsableUntil.UTC().Format(time.RFC3339), c.NotBefore.UTC().Format(time.RFC3339))
	}
	iss := &Issuer{
		cert:           c,
		signer:         cfg.Signer,
		keyUsableUntil: cfg.KeyUsableUntil,
		now:            cfg.Now,
		rand:           cfg.Rand,
	}
	if iss.now == nil {
		iss.now = wallclock.Now
	}
	if iss.rand == nil {
		iss.rand = rand.Reader
	}
	if now := iss.now(); !now.Before(iss.keyUsableUntil) {
		return nil, fmt.Errorf("%w: ended %v", ErrCAKeyExpired, iss.keyUsableUntil.UTC().Format(time.RFC3339))
	}
	return iss, nil
}

// Certificate returns the CA certificate.
func (i *Issuer) Certificate() *x509.Certificate { return i.cert }

// Request is one certificate to issue.
type Request struct {
	Profile *profile.Profile
	// Applicant supplies the date of birth and card expiry (validity) and,
	// for profiles that carry personal data, the attributes. It is
	// validated again at the issuance instant.
	Applicant *applicant.Applicant
	// PublicKey is the holder's key generated in the HSM: RSA 2048, e=65537.
	PublicKey *rsa.PublicKey
}

// Issued is a signed certificate.
type Issued struct {
	DER       []byte
	Serial    *big.Int
	NotBefore time.Time
	NotAfter  time.Time
}

// Issue builds and signs a certificate. Preconditions, checked in this order:
// ctx not done; the CA key's usage period not over (ErrCAKeyExpired) and the
// CA certificate valid now (ErrCACertNotValid); a profile with a supported
// validity rule; an RSA 2048 public key with e=65537 that is not the CA key;
// applicant data valid now (ErrInvalidApplicant wrapping the applicant
// package's *FieldError); every attribute and substitute list the applicant
// has is defined by a personal-data profile (ErrProfileLacksAttribute); the
// validity rule satisfied (ErrNotInRenewalWindow, ErrCardExpired); the
// certificate ends no later than the CA certificate (ErrOutlivesCA).
//
// notBefore is the issuance instant (CPS §7.1(1): the day of issuance);
// notAfter is NotAfter. The subject holds no personal data (TS Art. 31(iii)):
// it is the profile's template with the serial.
func (i *Issuer) Issue(ctx context.Context, req Request) (*Issued, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	now := i.now()
	if !now.Before(i.keyUsableUntil) {
		return nil, fmt.Errorf("%w: ended %v", ErrCAKeyExpired, i.keyUsableUntil.UTC().Format(time.RFC3339))
	}
	if now.Before(i.cert.NotBefore) || now.After(i.cert.NotAfter) {
		return nil, ErrCACertNotValid
	}
	p := req.Profile
	if p == nil {
		return nil, ErrNoProfile
	}
	if p.Validity != profile.ValidityHolderBirthdayOrCardExpiry {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedValidity, p.Validity)
	}
	if err := i.checkSubjectKey(req.PublicKey); err != nil {
		return nil, err
	}
	a := req.Applicant
	if a == nil {
		return nil, ErrNoApplicant
	}
	if err := a.Validate(now); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidApplicant, err)
	}
	exts, err := attributeExtensions(p, a)
	if err != nil {
		return nil, err
	}
	ian, err := issuerAltName(p)
	if err != nil {
		return nil, err
	}
	exts = append(exts, ian...)
	notAfter, err := NotAfter(now, a)
	if err != nil {
		return nil, err
	}
	if notAfter.After(i.cert.NotAfter) {
		return nil, fmt.Errorf("%w: %v > %v", ErrOutlivesCA, notAfter.UTC().Format(time.RFC3339), i.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := i.serial()
	if err != nil {
		return nil, err
	}
	rawSubject, err := asn1.Marshal(p.SubjectFor(serial))
	if err != nil {
		return nil, fmt.Errorf("issuer: subject: %w", err)
	}
	skid := sha1.Sum(x509.MarshalPKCS1PublicKey(req.PublicKey)) // RFC 5280 §4.2.1.2 method (1)
	policies := make([]x509.OID, 0, len(p.Policies))
	for _, o := range p.Policies {
		oid, err := x509.OIDFromInts(toUint64s(o))
		if err != nil {
			return nil, fmt.Errorf("issuer: policy %v: %w", o, err)
		}
		policies = append(policies, oid)
	}
	notBefore := now.Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            rawSubject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		SignatureAlgorithm:    p.SignatureAlgorithm,
		KeyUsage:              p.KeyUsage,
		UnknownExtKeyUsage:    p.ExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          skid[:],
		Policies:              policies,
		PolicyIdentifiers:     p.Policies,
		CRLDistributionPoints: []string{p.CRLURLFor(i.cert.SubjectKeyId, serial)}, // its shard's CRL (RFC 5280 §5.2.5)
		OCSPServer:            []string{p.OCSPURL(i.cert.SubjectKeyId)},
		ExtraExtensions:       exts,
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	der, err := x509.CreateCertificate(i.rand, tmpl, i.cert, req.PublicKey, i.signer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSign, err)
	}
	return &Issued{DER: der, Serial: serial, NotBefore: notBefore, NotAfter: notAfter}, nil
}

func toUint64s(o asn1.ObjectIdentifier) []uint64 {
	u := make([]uint64, len(o))
	for k, v := range o {
		u[k] = uint64(v)
	}
	return u
}

func (i *Issuer) checkSubjectKey(k *rsa.PublicKey) error {
	switch {
	case k == nil || k.N == nil:
		return ErrNoSubjectKey
	case k.N.BitLen() != rsaBits:
		return fmt.Errorf("%w: %d bits", ErrSubjectKeySize, k.N.BitLen())
	case k.E != rsaExponent:
		return fmt.Errorf("%w: e=%d", ErrSubjectKeyExponent, k.E)
	case k.Equal(i.cert.PublicKey):
		return ErrSubjectKeyIsCAKey
	}
	return nil
}

// serial returns a random positive 127-bit serial: 16 random octets with the
// top bit cleared (RFC 5280 §4.1.2.2: positive, at most 20 octets, and
// unpredictable so that a chosen-prefix collision cannot be prepared).
// Uniqueness across the CA is the store's job (unique index).
func (i *Issuer) serial() (*big.Int, error) {
	b := make([]byte, serialBytes)
	if _, err := io.ReadFull(i.rand, b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSerial, err)
	}
	b[0] &= 0x7f
	s := new(big.Int).SetBytes(b)
	if s.Sign() == 0 {
		return nil, fmt.Errorf("%w: randomness returned zero", ErrSerial)
	}
	return s, nil
}
