package termkey

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"

	"madoguchi/internal/pkcs11uri"
)

// Errors of the token.
var (
	// ErrTokenNotFound: no initialised token matches the URI (a copied data directory on a
	// machine without the terminal's token ends here).
	ErrTokenNotFound = errors.New("termkey: no token matches the key URI")
	// ErrNoKey: the token holds no key for the certificate (not enrolled with this token).
	ErrNoKey = errors.New("termkey: the token holds no key for the terminal certificate")
	// ErrURI: the URI cannot name the terminal's token (see Open).
	ErrURI = errors.New("termkey: unusable key URI")
)

// moduleDirs are searched for module-name (RFC 7512 §2.3: the name without path and suffix).
var moduleDirs = []string{"/usr/lib/x86_64-linux-gnu/pkcs11", "/usr/lib/aarch64-linux-gnu/pkcs11", "/usr/lib/pkcs11", "/usr/lib/softhsm", "/usr/lib/x86_64-linux-gnu", "/usr/lib"}

// p256 is the DER OID of prime256v1 (CKA_EC_PARAMS, RFC 5480).
var p256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// Token is an open PKCS#11 token with the terminal's keys, logged in as the user. Its one
// session is shared under a mutex: PKCS#11 sessions are not safe for concurrent use, and a
// terminal signs a few TLS handshakes and resident files, never many at once.
//
// C_Initialize and the login state are per process: a terminal opens one Token; closing a
// Token finalises the module if this Token initialised it.
type Token struct {
	ctx      *pkcs11.Ctx
	finalize bool
	tlsLabel string
	macLabel string

	mu     sync.Mutex
	sess   pkcs11.SessionHandle
	closed bool
}

// OpenToken loads the module the URI names, finds the one token it matches, and logs in with
// the PIN from the pin-source file. It refuses (ErrURI):
//   - a path attribute RFC 7512 does not define (§2.4: such a URI matches nothing);
//   - pin-value: the URI is kept in settings.json, and a PIN there is a PIN on disk beside the
//     data it protects; the PIN belongs in a separate file (pin-source=file:…), readable only
//     by the terminal's account;
//   - type or id: the URI names the token; the terminal's two keys have fixed labels in it,
//     prefixed by object= when given (default "madoguchi-terminal").
//
// The PIN is never logged; errors name the URI in its redacted form.
func OpenToken(raw string) (*Token, error) {
	u, err := pkcs11uri.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURI, err)
	}
	switch {
	case len(u.VendorPath) > 0:
		return nil, fmt.Errorf("%w: %s has path attributes RFC 7512 does not define, so it matches no token", ErrURI, u)
	case u.PINValue != "":
		return nil, fmt.Errorf("%w: pin-value puts the PIN in the settings; use pin-source=file:/path", ErrURI)
	case u.Type != "" || len(u.ID) > 0:
		return nil, fmt.Errorf("%w: %s: name the token (and optionally object=), not type or id", ErrURI, u)
	}
	module, err := modulePath(u)
	if err != nil {
		return nil, err
	}
	pinFile, err := u.PINFile()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURI, err)
	}
	pin, err := readPIN(pinFile)
	if err != nil {
		return nil, err
	}
	base := "madoguchi-terminal"
	if u.Object != "" {
		base = u.Object
	}
	t := &Token{tlsLabel: base + "-tls", macLabel: base + "-resident-file-hmac"}
	t.ctx = pkcs11.New(module)
	if t.ctx == nil {
		return nil, fmt.Errorf("termkey: cannot load the PKCS#11 module %s", module)
	}
	if err := t.ctx.Initialize(); err != nil {
		if !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			t.ctx.Destroy()
			return nil, fmt.Errorf("termkey: initialise %s: %w", module, err)
		}
	} else {
		t.finalize = true
	}
	slot, err := t.findSlot(u)
	if err == nil {
		err = t.login(slot, pin)
	}
	if err != nil {
		t.unload()
		return nil, err
	}
	return t, nil
}

func modulePath(u *pkcs11uri.URI) (string, error) {
	if u.ModulePath != "" {
		if !filepath.IsAbs(u.ModulePath) {
			return "", fmt.Errorf("%w: module-path must be absolute", ErrURI)
		}
		return u.ModulePath, nil
	}
	if u.ModuleName == "" {
		return "", fmt.Errorf("%w: %s names no module (module-path= or module-name=)", ErrURI, u)
	}
	if strings.ContainsAny(u.ModuleName, "/\\") {
		return "", fmt.Errorf("%w: module-name is a name, not a path", ErrURI)
	}
	for _, d := range moduleDirs {
		p := filepath.Join(d, u.ModuleName+".so")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: module %q not found in %s", ErrURI, u.ModuleName, strings.Join(moduleDirs, ", "))
}

// readPIN reads the first line of the PIN file. The file must not be readable by others: the
// PIN is what keeps a stolen token (or a copied SoftHSM directory) from being used.
func readPIN(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("termkey: pin-source: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("termkey: pin-source %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("termkey: pin-source: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pin := string(bytes.TrimRight(line, "\r"))
	clear(b)
	if pin == "" {
		return "", fmt.Errorf("termkey: pin-source %s is empty", path)
	}
	return pin, nil
}

func trim(s string) string { return strings.TrimRight(s, " \x00") }

// findSlot returns the slot of the one initialised token that matches every library, slot and
// token attribute of u.
func (t *Token) findSlot(u *pkcs11uri.URI) (uint, error) {
	info, err := t.ctx.GetInfo()
	if err != nil {
		return 0, fmt.Errorf("termkey: module info: %w", err)
	}
	if (u.LibraryManufacturer != "" && trim(info.ManufacturerID) != u.LibraryManufacturer) ||
		(u.LibraryDescription != "" && trim(info.LibraryDescription) != u.LibraryDescription) ||
		(u.LibraryVersion != nil && (int(info.LibraryVersion.Major) != u.LibraryVersion.Major || int(info.LibraryVersion.Minor) != u.LibraryVersion.Minor)) {
		return 0, fmt.Errorf("%w: %s (the module does not match)", ErrTokenNotFound, u)
	}
	slots, err := t.ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("termkey: list slots: %w", err)
	}
	var found []uint
	for _, s := range slots {
		if u.SlotID != nil && uint64(s) != *u.SlotID {
			continue
		}
		si, err := t.ctx.GetSlotInfo(s)
		if err != nil || (u.SlotDescription != "" && trim(si.SlotDescription) != u.SlotDescription) ||
			(u.SlotManufacturer != "" && trim(si.ManufacturerID) != u.SlotManufacturer) {
			continue
		}
		ti, err := t.ctx.GetTokenInfo(s)
		if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		if (u.Token != "" && trim(ti.Label) != u.Token) || (u.Manufacturer != "" && trim(ti.ManufacturerID) != u.Manufacturer) ||
			(u.Serial != "" && trim(ti.SerialNumber) != u.Serial) || (u.Model != "" && trim(ti.Model) != u.Model) {
			continue
		}
		found = append(found, s)
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("%w: %s", ErrTokenNotFound, u)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("%w: %s matches %d tokens; add token= or serial=", ErrURI, u, len(found))
}

func (t *Token) login(slot uint, pin string) error {
	s, err := t.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("termkey: open session: %w", err)
	}
	if err := t.ctx.Login(s, pkcs11.CKU_USER, pin); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		t.ctx.CloseSession(s)
		// The PKCS#11 error says CKR_PIN_INCORRECT and the like, never the PIN.
		return fmt.Errorf("termkey: log in to the token: %w", err)
	}
	t.sess = s
	return nil
}

func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

func (t *Token) unload() {
	if t.finalize {
		t.ctx.Finalize()
	}
	t.ctx.Destroy()
}

// Close logs out and unloads the module. Signers and MAC keys of the token fail afterwards.
func (t *Token) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.ctx.Logout(t.sess)
	t.ctx.CloseSession(t.sess)
	t.unload()
	return nil
}

// do runs f with the session, under the mutex.
func (t *Token) do(f func(s pkcs11.SessionHandle) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("termkey: token closed")
	}
	return f(t.sess)
}

func (t *Token) find(s pkcs11.SessionHandle, attrs []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := t.ctx.FindObjectsInit(s, attrs); err != nil {
		return nil, err
	}
	defer t.ctx.FindObjectsFinal(s)
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := t.ctx.FindObjects(s, 16)
		if err != nil {
			return nil, err
		}
		if len(hs) == 0 {
			return all, nil
		}
		all = append(all, hs...)
	}
}

// ---- The TLS client key: ECDSA P-256, generated in the token ----

// ecSigner is a crypto.Signer over a token EC private key.
type ecSigner struct {
	t    *Token
	id   []byte
	priv pkcs11.ObjectHandle
	pub  *ecdsa.PublicKey
}

func (k *ecSigner) Public() crypto.PublicKey { return k.pub }

// Sign signs a digest with CKM_ECDSA (the token hashes nothing) and returns the ASN.1
// signature crypto/x509 and crypto/tls expect.
func (k *ecSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() == 0 || len(digest) != opts.HashFunc().Size() {
		return nil, errors.New("termkey: ECDSA signs a digest")
	}
	var raw []byte
	err := k.t.do(func(s pkcs11.SessionHandle) error {
		if err := k.t.ctx.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, k.priv); err != nil {
			return err
		}
		var err error
		raw, err = k.t.ctx.Sign(s, digest)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("termkey: sign: %w", err)
	}
	if len(raw) != 64 {
		return nil, fmt.Errorf("termkey: token returned a %d-byte P-256 signature", len(raw))
	}
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])})
}

// newTLSKey generates a fresh P-256 key pair in the token under the TLS label and a random
// CKA_ID. The private key is CKA_SENSITIVE and not CKA_EXTRACTABLE: its value never leaves
// the token, not even wrapped.
func (t *Token) newTLSKey() (*ecSigner, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	pubT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, p256),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.tlsLabel),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	privT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.tlsLabel),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	k := &ecSigner{t: t, id: id}
	err := t.do(func(s pkcs11.SessionHandle) error {
		pub, priv, err := t.ctx.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}, pubT, privT)
		if err != nil {
			return err
		}
		k.priv = priv
		k.pub, err = t.ecPublic(s, pub)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("termkey: generate the TLS key in the token: %w", err)
	}
	return k, nil
}

// ecPublic reads a P-256 public key object.
func (t *Token) ecPublic(s pkcs11.SessionHandle, o pkcs11.ObjectHandle) (*ecdsa.PublicKey, error) {
	attrs, err := t.ctx.GetAttributeValue(s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, err
	}
	point := attrs[0].Value
	// PKCS#11 says DER OCTET STRING; some tokens return the bare point.
	if !(len(point) == 65 && point[0] == 4) {
		var inner []byte
		if rest, err := asn1.Unmarshal(point, &inner); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("termkey: CKA_EC_POINT is not a DER octet string")
		}
		point = inner
	}
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
}

// tlsKeys lists the TLS key pairs in the token: CKA_ID, public key, private key handle.
func (t *Token) tlsKeys(s pkcs11.SessionHandle) ([]*ecSigner, error) {
	pubs, err := t.find(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.tlsLabel)})
	if err != nil {
		return nil, err
	}
	var out []*ecSigner
	for _, p := range pubs {
		a, err := t.ctx.GetAttributeValue(s, p, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
		if err != nil {
			return nil, err
		}
		id := a[0].Value
		pub, err := t.ecPublic(s, p)
		if err != nil {
			continue // not ours: not a P-256 key
		}
		privs, err := t.find(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.tlsLabel), pkcs11.NewAttribute(pkcs11.CKA_ID, id)})
		if err != nil {
			return nil, err
		}
		if len(privs) != 1 {
			continue
		}
		out = append(out, &ecSigner{t: t, id: id, priv: privs[0], pub: pub})
	}
	return out, nil
}

// signerFor returns the TLS key whose public key is pub (the enrolled certificate's).
func (t *Token) signerFor(pub crypto.PublicKey) (*ecSigner, error) {
	want, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, ErrNoKey
	}
	var found *ecSigner
	err := t.do(func(s pkcs11.SessionHandle) error {
		keys, err := t.tlsKeys(s)
		for _, k := range keys {
			if k.pub.Equal(want) {
				found = k
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("termkey: find the TLS key: %w", err)
	}
	if found == nil {
		return nil, ErrNoKey
	}
	return found, nil
}

// destroyTLSKeys destroys the TLS key pairs other than keep (keep nil: all of them).
func (t *Token) destroyTLSKeys(keep *ecSigner, only *ecSigner) error {
	return t.do(func(s pkcs11.SessionHandle) error {
		for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
			hs, err := t.find(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class), pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.tlsLabel)})
			if err != nil {
				return err
			}
			for _, h := range hs {
				a, err := t.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
				if err != nil {
					return err
				}
				id := a[0].Value
				if (keep != nil && bytes.Equal(id, keep.id)) || (only != nil && !bytes.Equal(id, only.id)) {
					continue
				}
				if err := t.ctx.DestroyObject(s, h); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ---- The resident-file HMAC key: a generic secret in the token ----

// HMACKey computes HMAC-SHA256 in the token (CKM_SHA256_HMAC); the key value never leaves it.
// It implements resident.FileKey.
type HMACKey struct {
	t *Token
	h pkcs11.ObjectHandle
}

// MAC returns HMAC-SHA256(key, msg).
func (k *HMACKey) MAC(msg []byte) ([]byte, error) {
	var out []byte
	err := k.t.do(func(s pkcs11.SessionHandle) error {
		if err := k.t.ctx.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, k.h); err != nil {
			return err
		}
		var err error
		out, err = k.t.ctx.Sign(s, msg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("termkey: hmac: %w", err)
	}
	return out, nil
}

// ResidentFileKey returns the token's resident-file HMAC key, generating it on first use: a
// 256-bit CKK_GENERIC_SECRET, sensitive and not extractable.
func (t *Token) ResidentFileKey() (*HMACKey, error) {
	k := &HMACKey{t: t}
	err := t.do(func(s pkcs11.SessionHandle) error {
		hs, err := t.find(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.macLabel)})
		if err != nil {
			return err
		}
		switch len(hs) {
		case 1:
			k.h = hs[0]
			return nil
		case 0:
		default:
			return fmt.Errorf("%d keys labelled %q", len(hs), t.macLabel)
		}
		k.h, err = t.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.macLabel),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("termkey: resident-file key: %w", err)
	}
	return k, nil
}
