package hsmissuance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/issuer"
	"madoguchi/ca-server/profile"
	"madoguchi/ca-server/store"
)

// serialLen is the issuer's serial size: 16 octets, top bit clear.
const serialLen = 16

// ErrSerialMismatch: the certificate's serial is not the one reserved in
// the store (never expected; checked because revocation finds certificates
// by the stored serial).
var ErrSerialMismatch = errors.New("hsmissuance: issued serial differs from the reserved serial")

// CA is one issuing CA: its certificate, its key as a crypto.Signer (an
// hsm.Signer in production) and the end of the key's usable period.
type CA struct {
	Certificate *x509.Certificate
	Signer      crypto.Signer
	// KeyUsableUntil is the end of the key's usable period, at most 4
	// years from its generation (TS Art. 8(3)): ceremony.CAKey.IssueUntil.
	KeyUsableUntil time.Time
}

// Issuer signs user certificates with the CA keys (issuance.Issuer), over
// ca-server/issuer. Safe for concurrent use if the signers are (hsm.Signer
// is).
type Issuer struct {
	Signature, UserAuth CA
	// Profiles holds the "signature" and "user-authentication" profiles.
	Profiles *profile.Set
	// Rand supplies the randomness of the signature process (nil:
	// crypto/rand); the serial is the one the store reserved.
	Rand io.Reader
}

var _ issuance.Issuer = (*Issuer)(nil)

// Profile names in the profile set.
const (
	ProfileSignature = "signature"
	ProfileUserAuth  = "user-authentication"
)

func (i *Issuer) pick(t store.CertType) (CA, *profile.Profile, error) {
	var ca CA
	var name string
	switch t {
	case store.CertSign:
		ca, name = i.Signature, ProfileSignature
	case store.CertAuth:
		ca, name = i.UserAuth, ProfileUserAuth
	default:
		return CA{}, nil, fmt.Errorf("hsmissuance: unknown certificate type %q", t)
	}
	p, err := i.Profiles.Get(name)
	if err != nil {
		return CA{}, nil, fmt.Errorf("hsmissuance: %w", err)
	}
	return ca, p, nil
}

// Issue implements issuance.Issuer: it builds and signs the certificate with
// the serial the store reserved. It refuses after the CA key's usable period
// (issuer.ErrCAKeyExpired, TS Art. 8(3)), a public key that is not RSA, and
// applicant data that ca-server/applicant rejects.
func (i *Issuer) Issue(ctx context.Context, req issuance.IssueRequest) ([]byte, error) {
	ca, p, err := i.pick(req.CertType)
	if err != nil {
		return nil, err
	}
	pub, ok := req.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T", issuer.ErrSubjectKeySize, req.PublicKey)
	}
	if req.Serial == nil || req.Serial.Sign() <= 0 || req.Serial.BitLen() > 8*serialLen-1 {
		return nil, fmt.Errorf("%w: reserved serial must be positive and at most 127 bits", issuer.ErrSerial)
	}
	a, err := ToApplicant(req.Applicant.Data)
	if err != nil {
		return nil, err
	}
	if !req.CurrentNotAfter.IsZero() {
		// CPS §6.3.2.2 ①: the service found the current certificate inside
		// the renewal window; issuer.NotAfter checks the window again.
		a.EarlyRenewal, a.CurrentExpiry = true, applicant.DateOf(req.CurrentNotAfter)
	}
	rnd := i.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	// issuer draws its serial as the first 16 random bytes with the top bit
	// cleared: feed it the reserved one.
	serial := req.Serial.FillBytes(make([]byte, serialLen))
	now := req.Now
	iss, err := issuer.New(issuer.Config{Certificate: ca.Certificate, Signer: ca.Signer, KeyUsableUntil: ca.KeyUsableUntil,
		Now: func() time.Time { return now }, Rand: io.MultiReader(bytes.NewReader(serial), rnd)})
	if err != nil {
		return nil, err
	}
	out, err := iss.Issue(ctx, issuer.Request{Profile: p, Applicant: &a, PublicKey: pub})
	if err != nil {
		return nil, err
	}
	if out.Serial.Cmp(req.Serial) != 0 {
		return nil, ErrSerialMismatch
	}
	return out.DER, nil
}

// CACertificate implements issuance.Issuer.
func (i *Issuer) CACertificate(t store.CertType) []byte {
	ca, _, err := i.pick(t)
	if err != nil || ca.Certificate == nil {
		return nil
	}
	return ca.Certificate.Raw
}
