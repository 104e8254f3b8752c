package ceremony

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"io"
	"time"

	"madoguchi/ca-server/hsm"
)

// CAKey is one activated CA key: its record, certificate and key pair in
// the open token. Safe for concurrent use (it holds only handles).
type CAKey struct {
	Record      KeyRecord
	Certificate *x509.Certificate
	KeyPair     hsm.RSAKeyPair
	h           *hsm.HSM
}

func loadCAKey(ctx context.Context, h *hsm.HSM, rec KeyRecord) (*CAKey, error) {
	kp, err := h.FindRSAKeyPair(ctx, rec.Label)
	if err != nil {
		return nil, err
	}
	cert, err := ReadCertificate(rec)
	if err != nil {
		return nil, err
	}
	if err := checkCertMatches(cert.Raw, kp); err != nil {
		return nil, err
	}
	return &CAKey{Record: rec, Certificate: cert, KeyPair: kp, h: h}, nil
}

// IssueUntil is the end of the key's certificate issuance, for
// issuer.Config.KeyUsableUntil: 4 years from the key's generation and from
// its certificate's notBefore, whichever is earlier (TS Art. 8(3)), and for
// a superseded key the rollover instant (it has issued nothing since).
func (k *CAKey) IssueUntil() time.Time {
	until := UsableUntil(k.Record.Generated)
	if c := k.Certificate.NotBefore.AddDate(CAKeyUsableYears, 0, 0); c.Before(until) {
		until = c
	}
	if s := k.Record.Superseded; s != nil && s.Before(until) {
		until = *s
	}
	return until
}

// IssuanceSigner returns the crypto.Signer that signs new certificates: only
// for the issuing key (ErrNotIssuingKey for a superseded key, CPS §5.6) and
// only within its usable period (ErrCAKeyExpired, TS Art. 8(3)).
func (k *CAKey) IssuanceSigner(now time.Time) (*hsm.Signer, error) {
	if err := k.Record.CheckIssuing(now); err != nil {
		return nil, err
	}
	return k.h.Signer(k.KeyPair)
}

// CRLSigner returns a crypto.Signer for CRLs and OCSP responses, for the
// issuing key and for a superseded (CRL-only) key alike. It refuses to
// sign a certificate: x509.CreateCertificate hands it the whole
// TBSCertificate (crypto.MessageSigner), and it signs a whole message only
// if it is a TBSCertList or an OCSP ResponseData (ErrNotIssuingKey
// otherwise). Its digest-only Sign, which cannot see what it signs, serves
// the streaming CRL writer and OCSP responder, which hash themselves.
func (k *CAKey) CRLSigner() (*CRLSigner, error) {
	s, err := k.h.Signer(k.KeyPair)
	if err != nil {
		return nil, err
	}
	return &CRLSigner{s: s, rec: k.Record}, nil
}

// CRLSigner signs CRLs and OCSP responses, never certificates. Safe for
// concurrent use.
type CRLSigner struct {
	s   *hsm.Signer
	rec KeyRecord
}

var (
	_ crypto.Signer        = (*CRLSigner)(nil)
	_ crypto.MessageSigner = (*CRLSigner)(nil)
)

// Public returns the CA public key.
func (c *CRLSigner) Public() crypto.PublicKey { return c.s.Public() }

// Sign signs a digest computed by the caller (streaming CRL writer, OCSP).
func (c *CRLSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return c.s.Sign(rand, digest, opts)
}

// SignContext is Sign with a context bounding the wait for an HSM session.
func (c *CRLSigner) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return c.s.SignContext(ctx, digest, opts)
}

// SignMessage signs a whole TBSCertList or OCSP ResponseData and refuses
// anything else, a TBSCertificate above all (ErrNotIssuingKey).
func (c *CRLSigner) SignMessage(rand io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if !isCRLOrOCSP(msg) {
		return nil, fmt.Errorf("%w: %s key %q (generation %d) signs only crls and ocsp responses", ErrNotIssuingKey, c.rec.Role, c.rec.Label, c.rec.Gen())
	}
	digest := msg
	if hf := opts.HashFunc(); hf != 0 {
		hh := hf.New()
		hh.Write(msg)
		digest = hh.Sum(nil)
	}
	return c.s.Sign(rand, digest, opts)
}

// isCRLOrOCSP reports whether msg is a DER TBSCertList (RFC 5280 §5.1:
// version INTEGER OPTIONAL, signature AlgorithmIdentifier, issuer Name,
// thisUpdate Time, ...) or an OCSP ResponseData (RFC 6960 §4.2.1:
// [0] version OPTIONAL, responderID [1] or [2], producedAt
// GeneralizedTime, ...). A TBSCertificate (RFC 5280 §4.1: [0] version,
// serialNumber, signature, issuer, validity SEQUENCE, ...) is neither.
func isCRLOrOCSP(msg []byte) bool {
	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(msg, &outer); err != nil || len(rest) != 0 || outer.Tag != asn1.TagSequence || outer.Class != asn1.ClassUniversal {
		return false
	}
	var elems []asn1.RawValue
	for b := outer.Bytes; len(b) > 0 && len(elems) < 5; {
		var e asn1.RawValue
		rest, err := asn1.Unmarshal(b, &e)
		if err != nil {
			return false
		}
		elems = append(elems, e)
		b = rest
	}
	univ := func(i, tag int) bool {
		return i < len(elems) && elems[i].Class == asn1.ClassUniversal && elems[i].Tag == tag
	}
	ctxTag := func(i, tag int) bool {
		return i < len(elems) && elems[i].Class == asn1.ClassContextSpecific && elems[i].Tag == tag
	}
	isTime := func(i int) bool { return univ(i, asn1.TagUTCTime) || univ(i, asn1.TagGeneralizedTime) }
	// TBSCertList.
	i := 0
	if univ(0, asn1.TagInteger) {
		i = 1
	}
	if univ(i, asn1.TagSequence) && univ(i+1, asn1.TagSequence) && isTime(i+2) {
		return true
	}
	// OCSP ResponseData.
	i = 0
	if ctxTag(0, 0) {
		i = 1
	}
	return (ctxTag(i, 1) || ctxTag(i, 2)) && univ(i+1, asn1.TagGeneralizedTime)
}
