// Package termkey keeps the terminal's own secrets: its TLS client key for mutual TLS with the
// CA (TS Art. 7(i), Art. 10) and the resident-record file's HMAC key (TS Art. 3(1)).
//
// Two places, chosen by the terminal's key URI (--key-uri, settings.json "key_uri"):
//   - "" (the default): the TLS key is a PKCS#8 PEM file (mode 0600) in the terminal's data
//     directory and the HMAC key a row of terminal.db. Whoever copies the data directory can
//     act as the terminal from another machine until its certificate is revoked: the residual
//     risk of the default (TestAttackCopiedDataDir shows it).
//   - an RFC 7512 "pkcs11:" URI (internal/pkcs11uri): both keys are generated in that PKCS#11
//     token (SoftHSM in tests; tpm2-pkcs11 or a smart card on a real terminal) as sensitive,
//     non-extractable objects, and used there (CKM_ECDSA, CKM_SHA256_HMAC). The data
//     directory then holds no key: a copy of it, without the token and its PIN, cannot
//     authenticate to the CA or forge a resident-record file.
//
// Enrolment with a token: Generate makes a new P-256 key pair in the token; Save is a no-op;
// after the certificate is stored, Retire destroys the token's older TLS keys. A failed
// enrolment calls Discard, which destroys the new key and leaves the old one.
//
// Concurrency: a *Keys is safe for concurrent use (the token's session is under a mutex).
package termkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"madoguchi/app/resident"
	"madoguchi/internal/atomicfile"
)

// Keys is where the terminal's keys live: a key file (default) or a token.
type Keys struct {
	keyFile string
	tok     *Token
}

// Open returns the terminal's keys: in the token named by uri, or, with uri "", in keyFile
// (the TLS key's PEM file; the HMAC key stays in terminal.db).
func Open(keyFile, uri string) (*Keys, error) {
	k := &Keys{keyFile: keyFile}
	if uri == "" {
		return k, nil
	}
	t, err := OpenToken(uri)
	if err != nil {
		return nil, err
	}
	k.tok = t
	return k, nil
}

// InToken reports whether the keys live in a PKCS#11 token.
func (k *Keys) InToken() bool { return k.tok != nil }

// Close releases the token (nothing for the file default).
func (k *Keys) Close() error {
	if k.tok != nil {
		return k.tok.Close()
	}
	return nil
}

// Generate makes a fresh ECDSA P-256 TLS key for an enrolment CSR: in the token (sensitive,
// non-extractable), or in memory for the file default (written by Save).
func (k *Keys) Generate() (crypto.Signer, error) {
	if k.tok != nil {
		return k.tok.newTLSKey()
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// Save keeps key as the terminal's TLS key before the certificate is written: the file
// default writes the PEM file (0600) atomically; a token already holds it.
func (k *Keys) Save(key crypto.Signer) error {
	if k.tok != nil {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	defer clear(pemKey)
	return atomicfile.WriteAll(k.keyFile, pemKey, 0o600)
}

// Retire destroys the token's TLS keys other than key, once the certificate of key is stored.
func (k *Keys) Retire(key crypto.Signer) error {
	if k.tok == nil {
		return nil
	}
	s, ok := key.(*ecSigner)
	if !ok {
		return errors.New("termkey: not a key of this token")
	}
	return k.tok.destroyTLSKeys(s, nil)
}

// Discard forgets a key whose enrolment failed (a token key is destroyed).
func (k *Keys) Discard(key crypto.Signer) {
	if s, ok := key.(*ecSigner); ok && k.tok != nil {
		_ = k.tok.destroyTLSKeys(nil, s)
	}
}

// Certificate loads the client certificate (PEM) and pairs it with its key: the key file, or
// the token key whose public key is the certificate's (ErrNoKey when the token has none).
func (k *Keys) Certificate(certFile string) (tls.Certificate, error) {
	if k.tok == nil {
		return tls.LoadX509KeyPair(certFile, k.keyFile)
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return tls.Certificate{}, fmt.Errorf("termkey: %s holds no PEM certificate", certFile)
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return tls.Certificate{}, err
	}
	s, err := k.tok.signerFor(leaf.PublicKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: s, Leaf: leaf}, nil
}

// ResidentFileKey is the resident-record file's MAC key: the token's HMAC key (generated on
// first use), or nil for the default (the key in terminal.db).
func (k *Keys) ResidentFileKey() (resident.FileKey, error) {
	if k.tok == nil {
		return nil, nil
	}
	h, err := k.tok.ResidentFileKey()
	if err != nil {
		return nil, err
	}
	return h, nil
}
