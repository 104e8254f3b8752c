package hsm

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"runtime"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// KeyKind is what a Key handle refers to.
type KeyKind int

const (
	KindRSAPrivate KeyKind = iota + 1
	KindRSAPublic
	KindAES
	KindHMAC // CKK_GENERIC_SECRET used with CKM_SHA256_HMAC
)

func (k KeyKind) String() string {
	switch k {
	case KindRSAPrivate:
		return "rsa-private"
	case KindRSAPublic:
		return "rsa-public"
	case KindAES:
		return "aes"
	case KindHMAC:
		return "hmac"
	}
	return fmt.Sprintf("KeyKind(%d)", int(k))
}

func (k KeyKind) template() []*pkcs11.Attribute {
	switch k {
	case KindRSAPrivate:
		return []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA)}
	case KindRSAPublic:
		return []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA)}
	case KindAES:
		return []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES)}
	case KindHMAC:
		return []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET)}
	}
	return nil
}

// Key names one object in the token. It holds no key material, so it may be
// logged. The handle is valid for every session of this *HSM until the
// object is destroyed (session objects: until Close).
type Key struct {
	Label  string
	ID     []byte
	Kind   KeyKind
	handle pkcs11.ObjectHandle
	// where the handle lives (heal.go): its login epoch, whether it is a
	// token object (found again after a re-login), and for a session
	// object the session incarnation it dies with.
	epoch uint64
	token bool
	owner uint64
}

func (k Key) String() string {
	return fmt.Sprintf("%s key %q id %s", k.Kind, k.Label, hex.EncodeToString(k.ID))
}

// RSAKeyPair is a private key, its public key object and the public key value.
type RSAKeyPair struct {
	Private   Key
	Public    Key
	PublicKey *rsa.PublicKey
}

// Extractability says whether and why a key may leave the HSM (wrapped).
// The zero value keeps the key inside for ever. See the package doc.
type Extractability int

const (
	// NotExtractable: CKA_EXTRACTABLE false (default; derived keys, keys
	// that must never leave the token).
	NotExtractable Extractability = iota
	// ExtractableForCard: a user key that will be wrapped once for its card
	// and then destroyed (TS Art. 5(iv)).
	ExtractableForCard
	// ExtractableForBackup: a CA, person-hash or card master key wrappable
	// only under a CKA_TRUSTED key (CKA_WRAP_WITH_TRUSTED) — the ceremony's
	// backup KEK (TS Art. 27).
	ExtractableForBackup
	// ExportInClear: a derived secret key whose value may be read in clear
	// (CKA_SENSITIVE false), only for the local card-manufacturing export of
	// per-card static keys. Never for RSA keys.
	ExportInClear
)

// Usage is the set of operations a secret key allows (CKA_SIGN etc.).
type Usage uint

const (
	UseSign    Usage = 1 << iota // CMAC / HMAC (CKA_SIGN, CKA_VERIFY)
	UseDerive                    // CKA_DERIVE
	UseWrap                      // CKA_WRAP
	UseUnwrap                    // CKA_UNWRAP
	UseEncrypt                   // CKA_ENCRYPT, CKA_DECRYPT
)

// KeyOptions shapes a new key. The zero value makes a session object with a
// random 16-byte CKA_ID that never leaves the HSM.
type KeyOptions struct {
	// ID is CKA_ID; nil means 16 random bytes.
	ID []byte
	// Token makes a persistent token object; otherwise a session object
	// that disappears on Close.
	Token bool
	// Extractable: see Extractability.
	Extractable Extractability
	// Trusted sets CKA_TRUSTED (only an SO session may, in SoftHSM).
	Trusted bool
	// Usage of a secret key; ignored for RSA (private: sign; public: verify).
	Usage Usage
	// Bits: RSA modulus size (default 2048); AES key size (default 128).
	Bits int
}

func (o KeyOptions) id() ([]byte, error) {
	if o.ID != nil {
		return o.ID, nil
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("hsm: random key id: %w", err)
	}
	return id, nil
}

func (o KeyOptions) secretAttrs(kind KeyKind, label string, id []byte) []*pkcs11.Attribute {
	a := append(kind.template(),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, o.Token),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, o.Extractable != ExportInClear),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, o.Extractable != NotExtractable),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, o.Usage&UseSign != 0),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, o.Usage&UseSign != 0),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, o.Usage&UseDerive != 0),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, o.Usage&UseWrap != 0),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, o.Usage&UseUnwrap != 0),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, o.Usage&UseEncrypt != 0),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, o.Usage&UseEncrypt != 0),
	)
	if o.Extractable == ExtractableForBackup {
		a = append(a, pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, true))
	}
	if o.Trusted {
		a = append(a, pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true))
	}
	return a
}

func (o KeyOptions) aesBits() (int, error) {
	switch o.Bits {
	case 0:
		return 128, nil
	case 128, 192, 256:
		return o.Bits, nil
	}
	return 0, fmt.Errorf("%w: aes key size %d", ErrBadInput, o.Bits)
}

func checkLabel(label string) error {
	if label == "" {
		return fmt.Errorf("%w: empty key label", ErrBadInput)
	}
	return nil
}

// GenerateRSA generates an RSA key pair (default 2048 bits, e = 65537; TS
// Art. 2) with the private key sensitive and signing-only. Primality testing
// is the token's (TS Art. 5); the caller checks the public key against all
// earlier ones (TS Art. 5: never the same key twice).
func (h *HSM) GenerateRSA(ctx context.Context, label string, opts KeyOptions) (RSAKeyPair, error) {
	if err := checkLabel(label); err != nil {
		return RSAKeyPair{}, err
	}
	bits := opts.Bits
	if bits == 0 {
		bits = 2048
	}
	if bits < 2048 || bits%1024 != 0 || bits > 4096 {
		return RSAKeyPair{}, fmt.Errorf("%w: rsa key size %d (want 2048, 3072 or 4096)", ErrBadInput, bits)
	}
	if opts.Extractable == ExportInClear {
		return RSAKeyPair{}, fmt.Errorf("%w: an rsa private key is never exported in clear", ErrBadInput)
	}
	id, err := opts.id()
	if err != nil {
		return RSAKeyPair{}, err
	}
	pubAttrs := append(KindRSAPublic.template(),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, opts.Token),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, bits),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
	)
	privAttrs := rsaPrivateTemplate(label, id, opts)
	var kp RSAKeyPair
	retry := retryPolicy(!opts.Token)
	err = h.do(ctx, "generate rsa", retry, nil, func(s pkcs11.SessionHandle) error {
		pub, priv, err := h.p11().GenerateKeyPair(s,
			[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}, pubAttrs, privAttrs)
		if err != nil {
			return wrapErr("generate rsa", err)
		}
		kp.Private = Key{Label: label, ID: id, Kind: KindRSAPrivate, handle: priv}
		kp.Public = Key{Label: label, ID: id, Kind: KindRSAPublic, handle: pub}
		h.stamp(&kp.Private, s, opts.Token)
		h.stamp(&kp.Public, s, opts.Token)
		kp.PublicKey, err = h.rsaPublic(s, pub)
		return err
	})
	if err != nil {
		return RSAKeyPair{}, err // the closure may still run (call deadline): never read what it writes
	}
	return kp, nil
}

// GenerateAES generates an AES key (default 128 bits) in the token.
func (h *HSM) GenerateAES(ctx context.Context, label string, opts KeyOptions) (Key, error) {
	if err := checkLabel(label); err != nil {
		return Key{}, err
	}
	bits, err := opts.aesBits()
	if err != nil {
		return Key{}, err
	}
	id, err := opts.id()
	if err != nil {
		return Key{}, err
	}
	attrs := append(opts.secretAttrs(KindAES, label, id), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, bits/8))
	k := Key{Label: label, ID: id, Kind: KindAES}
	err = h.do(ctx, "generate aes", retryPolicy(!opts.Token), nil, func(s pkcs11.SessionHandle) error {
		var err error
		k.handle, err = h.p11().GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, attrs)
		h.stamp(&k, s, opts.Token)
		return wrapErr("generate aes", err)
	})
	if err != nil {
		return Key{}, err // the closure may still run (call deadline): never read what it writes
	}
	return k, nil
}

// GenerateHMAC generates a 256-bit generic secret for HMAC-SHA-256 (the
// person hash: a keyed hash of the resident-record code, so the CA can tell
// people apart without holding the code; TS Art. 31(iii)).
func (h *HSM) GenerateHMAC(ctx context.Context, label string, opts KeyOptions) (Key, error) {
	if err := checkLabel(label); err != nil {
		return Key{}, err
	}
	id, err := opts.id()
	if err != nil {
		return Key{}, err
	}
	opts.Usage = UseSign
	attrs := append(opts.secretAttrs(KindHMAC, label, id), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32))
	k := Key{Label: label, ID: id, Kind: KindHMAC}
	err = h.do(ctx, "generate hmac", retryPolicy(!opts.Token), nil, func(s pkcs11.SessionHandle) error {
		var err error
		k.handle, err = h.p11().GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, attrs)
		h.stamp(&k, s, opts.Token)
		return wrapErr("generate hmac key", err)
	})
	if err != nil {
		return Key{}, err // the closure may still run (call deadline): never read what it writes
	}
	return k, nil
}

// ImportAES creates an AES key object from a known value (the ceremony's
// backup KEK, reconstructed from custodian shares; test vectors). The value
// is not kept by this package; the caller wipes its copy.
func (h *HSM) ImportAES(ctx context.Context, label string, value []byte, opts KeyOptions) (Key, error) {
	if err := checkLabel(label); err != nil {
		return Key{}, err
	}
	switch len(value) {
	case 16, 24, 32:
	default:
		return Key{}, fmt.Errorf("%w: aes key of %d bytes", ErrBadInput, len(value))
	}
	id, err := opts.id()
	if err != nil {
		return Key{}, err
	}
	attrs := append(opts.secretAttrs(KindAES, label, id), pkcs11.NewAttribute(pkcs11.CKA_VALUE, value))
	k := Key{Label: label, ID: id, Kind: KindAES}
	err = h.do(ctx, "import aes", retryPolicy(!opts.Token), nil, func(s pkcs11.SessionHandle) error {
		var err error
		k.handle, err = h.p11().CreateObject(s, attrs)
		h.stamp(&k, s, opts.Token)
		return wrapErr("import aes", err)
	})
	if err != nil {
		return Key{}, err // the closure may still run (call deadline): never read what it writes
	}
	return k, nil
}

// DeriveAESECB derives an AES key whose value is AES-ECB(base, data) inside
// the HSM (CKM_AES_ECB_ENCRYPT_DATA): card static keys K = ECB(MK, serial16)
// and the session DEK S-DEK = ECB(K-DEK, host challenge ‖ card challenge).
// data must be 16 or 32 bytes; the new key has len(data) bytes. base needs
// UseDerive.
func (h *HSM) DeriveAESECB(ctx context.Context, base Key, data []byte, label string, opts KeyOptions) (Key, error) {
	if err := checkLabel(label); err != nil {
		return Key{}, err
	}
	if base.Kind != KindAES {
		return Key{}, fmt.Errorf("%w: derive from a %s key", ErrBadInput, base.Kind)
	}
	if len(data) != 16 && len(data) != 32 {
		return Key{}, fmt.Errorf("%w: ecb derivation data of %d bytes (want 16 or 32)", ErrBadInput, len(data))
	}
	if opts.Extractable == ExtractableForBackup {
		return Key{}, fmt.Errorf("%w: derived keys are not backed up", ErrBadInput)
	}
	id, err := opts.id()
	if err != nil {
		return Key{}, err
	}
	attrs := append(opts.secretAttrs(KindAES, label, id), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, len(data)))
	k := Key{Label: label, ID: id, Kind: KindAES}
	err = h.do(ctx, "derive aes ecb", retryPolicy(!opts.Token), []Key{base}, func(s pkcs11.SessionHandle) error {
		param, unpin := keyDerivationStringData(data)
		defer unpin()
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB_ENCRYPT_DATA, param)}
		var err error
		k.handle, err = h.p11().DeriveKey(s, mech, h.obj(base), attrs)
		h.stamp(&k, s, opts.Token)
		return wrapErr("derive aes ecb", err)
	})
	if err != nil {
		return Key{}, err // the closure may still run (call deadline): never read what it writes
	}
	return k, nil
}

// keyDerivationStringData builds CK_KEY_DERIVATION_STRING_DATA
// { CK_BYTE_PTR pData; CK_ULONG ulLen; } in the platform's C layout
// (LP64: two 8-byte words). miekg/pkcs11 copies the parameter bytes to C
// memory; pData points to a pinned Go copy of data (runtime.Pinner makes a
// Go pointer stored in C memory legal) until unpin is called, which must be
// after the C call returns.
func keyDerivationStringData(data []byte) (param []byte, unpin func()) {
	buf := make([]byte, len(data))
	copy(buf, data)
	var p runtime.Pinner
	p.Pin(&buf[0])
	const word = int(unsafe.Sizeof(uintptr(0)))
	param = make([]byte, 2*word)
	if word == 8 {
		binary.NativeEndian.PutUint64(param[0:], uint64(uintptr(unsafe.Pointer(&buf[0]))))
		binary.NativeEndian.PutUint64(param[8:], uint64(len(buf)))
	} else {
		binary.NativeEndian.PutUint32(param[0:], uint32(uintptr(unsafe.Pointer(&buf[0]))))
		binary.NativeEndian.PutUint32(param[4:], uint32(len(buf)))
	}
	return param, func() {
		clear(buf)
		p.Unpin()
	}
}

// KeyQuery selects keys by kind, label and (optionally) CKA_ID.
type KeyQuery struct {
	Kind  KeyKind
	Label string
	ID    []byte // nil: any id
}

// FindKey returns the one key matching q: ErrKeyNotFound if none,
// ErrAmbiguousKey if several.
func (h *HSM) FindKey(ctx context.Context, q KeyQuery) (Key, error) {
	keys, err := h.FindKeys(ctx, q)
	if err != nil {
		return Key{}, err
	}
	switch len(keys) {
	case 0:
		return Key{}, fmt.Errorf("%w: %s %q", ErrKeyNotFound, q.Kind, q.Label)
	case 1:
		return keys[0], nil
	}
	return Key{}, fmt.Errorf("%w: %d %s keys labelled %q", ErrAmbiguousKey, len(keys), q.Kind, q.Label)
}

// FindKeys returns every key matching q (an empty label matches any label).
func (h *HSM) FindKeys(ctx context.Context, q KeyQuery) ([]Key, error) {
	tmpl := q.Kind.template()
	if tmpl == nil {
		return nil, fmt.Errorf("%w: key kind %v", ErrBadInput, q.Kind)
	}
	if q.Label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, q.Label))
	}
	if q.ID != nil {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, q.ID))
	}
	var keys []Key
	err := h.do(ctx, "find keys", retryOnce, nil, func(s pkcs11.SessionHandle) error {
		keys = nil
		handles, err := h.findObjects(s, tmpl)
		if err != nil {
			return err
		}
		for _, o := range handles {
			attrs, err := h.p11().GetAttributeValue(s, o, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil), pkcs11.NewAttribute(pkcs11.CKA_ID, nil), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil)})
			if err != nil {
				return wrapErr("read key attributes", err)
			}
			k := Key{Label: string(attrs[0].Value), ID: attrs[1].Value, Kind: q.Kind, handle: o}
			h.stamp(&k, s, len(attrs[2].Value) == 1 && attrs[2].Value[0] != 0)
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, err // the closure may still run (call deadline): never read what it writes
	}
	return keys, nil
}

// FindRSAKeyPair finds the private and public key labelled label.
func (h *HSM) FindRSAKeyPair(ctx context.Context, label string) (RSAKeyPair, error) {
	priv, err := h.FindKey(ctx, KeyQuery{Kind: KindRSAPrivate, Label: label})
	if err != nil {
		return RSAKeyPair{}, err
	}
	pub, err := h.FindKey(ctx, KeyQuery{Kind: KindRSAPublic, Label: label, ID: priv.ID})
	if err != nil {
		return RSAKeyPair{}, err
	}
	pk, err := h.PublicKey(ctx, pub)
	if err != nil {
		return RSAKeyPair{}, err
	}
	return RSAKeyPair{Private: priv, Public: pub, PublicKey: pk}, nil
}

// Destroy deletes the key object. Destroying a destroyed key returns an
// error matching ErrKeyHandleInvalid.
func (h *HSM) Destroy(ctx context.Context, k Key) error {
	// Not retried: a destroy that took effect before the fault would
	// come back as ErrKeyHandleInvalid, which callers already accept.
	return h.do(ctx, "destroy", noRetry, []Key{k}, func(s pkcs11.SessionHandle) error {
		return wrapErr("destroy "+k.Kind.String()+" key", h.p11().DestroyObject(s, h.obj(k)))
	})
}

// PublicKey returns the RSA public key of an RSA public or private key
// object (modulus and exponent are never sensitive).
func (h *HSM) PublicKey(ctx context.Context, k Key) (*rsa.PublicKey, error) {
	if k.Kind != KindRSAPrivate && k.Kind != KindRSAPublic {
		return nil, fmt.Errorf("%w: public key of a %s key", ErrBadInput, k.Kind)
	}
	var pk *rsa.PublicKey
	err := h.do(ctx, "read public key", retryOnce, []Key{k}, func(s pkcs11.SessionHandle) error {
		var err error
		pk, err = h.rsaPublic(s, h.obj(k))
		return err
	})
	if err != nil {
		return nil, err // the closure may still run (call deadline): never read what it writes
	}
	return pk, nil
}

func (h *HSM) rsaPublic(s pkcs11.SessionHandle, o pkcs11.ObjectHandle) (*rsa.PublicKey, error) {
	attrs, err := h.p11().GetAttributeValue(s, o, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
	if err != nil {
		return nil, wrapErr("read rsa public key", err)
	}
	e := new(big.Int).SetBytes(attrs[1].Value)
	if !e.IsInt64() || e.Int64() > 1<<31-1 || e.Int64() < 3 {
		return nil, fmt.Errorf("hsm: rsa public exponent out of range")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(e.Int64())}, nil
}

// SecretValue reads the value of a secret key created with ExportInClear
// (card-manufacturing export). Any other key fails with ErrAttributeSensitive.
func (h *HSM) SecretValue(ctx context.Context, k Key) ([]byte, error) {
	if k.Kind != KindAES && k.Kind != KindHMAC {
		return nil, fmt.Errorf("%w: secret value of a %s key", ErrBadInput, k.Kind)
	}
	var v []byte
	err := h.do(ctx, "read secret value", retryOnce, []Key{k}, func(s pkcs11.SessionHandle) error {
		attrs, err := h.p11().GetAttributeValue(s, h.obj(k), []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return wrapErr("read secret value", err)
		}
		v = attrs[0].Value
		return nil
	})
	if err != nil {
		return nil, err // the closure may still run (call deadline): never read what it writes
	}
	return v, nil
}

// rsaPrivateTemplate is the template of every RSA private key the CA creates, generated or
// unwrapped: sensitive, signing only (no decryption, no unwrapping: G Art. 10(i), the issuer key
// serves this service alone), extractable only as opts allows, and then only under a trusted
// wrapping key.
func rsaPrivateTemplate(label string, id []byte, opts KeyOptions) []*pkcs11.Attribute {
	attrs := append(KindRSAPrivate.template(),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, opts.Token),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, opts.Extractable != NotExtractable),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
	)
	if opts.Extractable == ExtractableForBackup {
		attrs = append(attrs, pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, true))
	}
	return attrs
}
