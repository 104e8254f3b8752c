package hsm

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"

	"github.com/miekg/pkcs11"
)

// CMAC returns AES-CMAC(key, data) (NIST SP 800-38B, CKM_AES_CMAC), 16
// bytes. key needs UseSign.
func (h *HSM) CMAC(ctx context.Context, key Key, data []byte) ([]byte, error) {
	if key.Kind != KindAES {
		return nil, fmt.Errorf("%w: cmac with a %s key", ErrBadInput, key.Kind)
	}
	return h.sign(ctx, "cmac", key, pkcs11.NewMechanism(pkcs11.CKM_AES_CMAC, nil), data)
}

// HMACSHA256 returns HMAC-SHA-256(key, data) (the person hash).
func (h *HSM) HMACSHA256(ctx context.Context, key Key, data []byte) ([]byte, error) {
	if key.Kind != KindHMAC {
		return nil, fmt.Errorf("%w: hmac with a %s key", ErrBadInput, key.Kind)
	}
	return h.sign(ctx, "hmac", key, pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil), data)
}

func (h *HSM) sign(ctx context.Context, op string, key Key, m *pkcs11.Mechanism, data []byte) ([]byte, error) {
	var out []byte
	err := h.do(ctx, op, retryOnce, []Key{key}, func(s pkcs11.SessionHandle) error {
		if err := h.p11().SignInit(s, []*pkcs11.Mechanism{m}, h.obj(key)); err != nil {
			return wrapErr(op, err)
		}
		var err error
		out, err = h.p11().Sign(s, data)
		return wrapErr(op, err)
	})
	if err != nil {
		return nil, err // the closure may still run (call deadline): never read what it writes
	}
	return out, nil
}

// WrapKWP wraps key under wrappingKey with RFC 5649 (AES key wrap with
// padding) inside the HSM. wrappingKey needs UseWrap; key must be
// extractable (ErrKeyUnextractable otherwise) and, if it was made
// ExtractableForBackup, wrappingKey must be CKA_TRUSTED (ErrKeyNotWrappable).
// An RSA private key is wrapped as PKCS#8 PrivateKeyInfo DER.
func (h *HSM) WrapKWP(ctx context.Context, wrappingKey, key Key) ([]byte, error) {
	if wrappingKey.Kind != KindAES {
		return nil, fmt.Errorf("%w: wrap with a %s key", ErrBadInput, wrappingKey.Kind)
	}
	var out []byte
	// Wrapping creates nothing in the token: safe to repeat.
	err := h.do(ctx, "wrap kwp", retryOnce, []Key{wrappingKey, key}, func(s pkcs11.SessionHandle) error {
		var err error
		out, err = h.p11().WrapKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(h.mech.kwp(), nil)}, h.obj(wrappingKey), h.obj(key))
		return wrapErr("wrap kwp", err)
	})
	if err != nil {
		return nil, err // the closure may still run (call deadline): never read what it writes
	}
	return out, nil
}

// UnwrapRSAKWP unwraps an RFC 5649-wrapped PKCS#8 RSA private key into the
// token (restore of a CA key from backup) and creates its public key object
// with the same label and id. opts.Extractable applies to the private key.
func (h *HSM) UnwrapRSAKWP(ctx context.Context, unwrappingKey Key, wrapped []byte, label string, opts KeyOptions) (RSAKeyPair, error) {
	if err := checkLabel(label); err != nil {
		return RSAKeyPair{}, err
	}
	if unwrappingKey.Kind != KindAES {
		return RSAKeyPair{}, fmt.Errorf("%w: unwrap with a %s key", ErrBadInput, unwrappingKey.Kind)
	}
	if opts.Extractable == ExportInClear {
		return RSAKeyPair{}, fmt.Errorf("%w: an rsa private key is never exported in clear", ErrBadInput)
	}
	id, err := opts.id()
	if err != nil {
		return RSAKeyPair{}, err
	}
	privAttrs := rsaPrivateTemplate(label, id, opts)
	var kp RSAKeyPair
	err = h.do(ctx, "unwrap rsa", retryPolicy(!opts.Token), []Key{unwrappingKey}, func(s pkcs11.SessionHandle) error {
		priv, err := h.p11().UnwrapKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(h.mech.kwp(), nil)}, h.obj(unwrappingKey), wrapped, privAttrs)
		if err != nil {
			return wrapErr("unwrap kwp", err)
		}
		kp.Private = Key{Label: label, ID: id, Kind: KindRSAPrivate, handle: priv}
		h.stamp(&kp.Private, s, opts.Token)
		if kp.PublicKey, err = h.rsaPublic(s, priv); err != nil {
			_ = h.p11().DestroyObject(s, priv)
			return err
		}
		pubAttrs := append(KindRSAPublic.template(),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, opts.Token),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, kp.PublicKey.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		)
		if kp.PublicKey.E != 65537 {
			_ = h.p11().DestroyObject(s, priv)
			return fmt.Errorf("hsm: unwrapped rsa key has exponent %d (want 65537)", kp.PublicKey.E)
		}
		pub, err := h.p11().CreateObject(s, pubAttrs)
		if err != nil {
			_ = h.p11().DestroyObject(s, priv)
			return wrapErr("create rsa public key", err)
		}
		kp.Public = Key{Label: label, ID: id, Kind: KindRSAPublic, handle: pub}
		h.stamp(&kp.Public, s, opts.Token)
		return nil
	})
	if err != nil {
		return RSAKeyPair{}, err // the closure may still run (call deadline): never read what it writes
	}
	return kp, nil
}

// TrimPKCS8Padding returns the DER of a PKCS#8 structure without the zero
// bytes SoftHSM appends before RFC 5649 wrapping (it pads to a multiple of
// 8, so the unwrapped value carries 1–7 trailing zeros). Data that is not a
// single DER SEQUENCE followed only by zeros is refused.
func TrimPKCS8Padding(b []byte) ([]byte, error) {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(b, &raw)
	if err != nil {
		return nil, fmt.Errorf("hsm: unwrapped key is not der: %w", err)
	}
	for _, c := range rest {
		if c != 0 {
			return nil, errors.New("hsm: unwrapped key has trailing non-zero bytes")
		}
	}
	if len(rest) > 7 {
		return nil, fmt.Errorf("hsm: unwrapped key has %d trailing bytes (at most 7 expected)", len(rest))
	}
	return b[:len(b)-len(rest)], nil
}

// Signer is a crypto.Signer over an RSA private key in the HSM: PKCS#1 v1.5
// (CKM_RSA_PKCS over a DigestInfo, since crypto.Signer is given the digest)
// and PSS (CKM_RSA_PKCS_PSS) when opts is *rsa.PSSOptions. Safe for
// concurrent use.
type Signer struct {
	h   *HSM
	key Key
	pub *rsa.PublicKey
}

var _ crypto.Signer = (*Signer)(nil)

// Signer returns a crypto.Signer for the private key kp.Private.
func (h *HSM) Signer(kp RSAKeyPair) (*Signer, error) {
	if kp.Private.Kind != KindRSAPrivate || kp.PublicKey == nil {
		return nil, fmt.Errorf("%w: signer needs an rsa private key and its public key", ErrBadInput)
	}
	return &Signer{h: h, key: kp.Private, pub: kp.PublicKey}, nil
}

// Public returns the *rsa.PublicKey.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Key names the private key object.
func (s *Signer) Key() Key { return s.key }

// DigestInfo prefixes (RFC 8017 §9.2 note 1).
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

var pssHash = map[crypto.Hash][2]uint{
	crypto.SHA256: {pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256},
	crypto.SHA384: {pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384},
	crypto.SHA512: {pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512},
}

// Sign signs digest (already hashed with opts.HashFunc()). rand is unused:
// the HSM supplies PSS salt.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.SignContext(context.Background(), digest, opts)
}

// SignContext is Sign with a context bounding the wait for a session.
func (s *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	hash := opts.HashFunc()
	if hash.Size() != len(digest) {
		return nil, fmt.Errorf("%w: digest of %d bytes for %v", ErrBadInput, len(digest), hash)
	}
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		p, ok := pssHash[hash]
		if !ok {
			return nil, fmt.Errorf("%w: pss with %v", ErrBadInput, hash)
		}
		salt := pss.SaltLength
		switch salt {
		case rsa.PSSSaltLengthEqualsHash:
			salt = hash.Size()
		case rsa.PSSSaltLengthAuto:
			salt = (s.pub.N.BitLen()-1+7)/8 - 2 - hash.Size()
		}
		if salt < 0 {
			return nil, fmt.Errorf("%w: pss salt length %d", ErrBadInput, pss.SaltLength)
		}
		m := pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(p[0], p[1], uint(salt)))
		return s.h.sign(ctx, "sign rsa pss", s.key, m, digest)
	}
	prefix, ok := digestInfoPrefix[hash]
	if !ok {
		return nil, fmt.Errorf("%w: pkcs#1 v1.5 with %v", ErrBadInput, hash)
	}
	msg := make([]byte, 0, len(prefix)+len(digest))
	msg = append(append(msg, prefix...), digest...)
	return s.h.sign(ctx, "sign rsa pkcs1", s.key, pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil), msg)
}

// UnwrapSecretKWP unwraps an RFC 5649-wrapped AES or HMAC key into the token
// (restore of the person-hash key from backup). opts.Usage and
// opts.Extractable apply to the new key.
func (h *HSM) UnwrapSecretKWP(ctx context.Context, unwrappingKey Key, wrapped []byte, kind KeyKind, label string, opts KeyOptions) (Key, error) {
	if err := checkLabel(label); err != nil {
		return Key{}, err
	}
	if unwrappingKey.Kind != KindAES || (kind != KindAES && kind != KindHMAC) {
		return Key{}, fmt.Errorf("%w: unwrap a %s key with a %s key", ErrBadInput, kind, unwrappingKey.Kind)
	}
	if opts.Extractable == ExportInClear {
		return Key{}, fmt.Errorf("%w: unwrapped keys are not exported in clear", ErrBadInput)
	}
	if kind == KindHMAC {
		opts.Usage = UseSign
	}
	id, err := opts.id()
	if err != nil {
		return Key{}, err
	}
	attrs := opts.secretAttrs(kind, label, id)
	k := Key{Label: label, ID: id, Kind: kind}
	err = h.do(ctx, "unwrap secret", retryPolicy(!opts.Token), []Key{unwrappingKey}, func(s pkcs11.SessionHandle) error {
		var err error
		k.handle, err = h.p11().UnwrapKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(h.mech.kwp(), nil)}, h.obj(unwrappingKey), wrapped, attrs)
		h.stamp(&k, s, opts.Token)
		return wrapErr("unwrap kwp", err)
	})
	if err != nil {
		return Key{}, err // the closure may still run (call deadline): never read what it writes
	}
	return k, nil
}
