package audit

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"madoguchi/internal/wallclock"
	"madoguchi/jpki/wire"
)

// ReceiptSigner signs the receipts the CA gives terminals for their audit chain heads
// (issue 13 threat 2; wire.AuditReceipt) with the audit checkpoint key, the same HSM key
// that signs checkpoints. The signed digest (wire.ReceiptDigest) carries its own domain
// string, so a receipt can never be taken for a checkpoint or the reverse.
//
// Concurrency: safe for concurrent use when the signer is (hsm.Signer is).
type ReceiptSigner struct {
	signer crypto.Signer
	keyID  string
	cert   []byte // DER of the key's certificate, handed to terminals for pinning
	clock  func() time.Time
}

// NewReceiptSigner returns a ReceiptSigner over the audit checkpoint key s, whose certificate
// (from the ceremony state) is cert; clock may be nil (time.Now). It refuses a certificate of
// another key.
func NewReceiptSigner(s crypto.Signer, cert *x509.Certificate, clock func() time.Time) (*ReceiptSigner, error) {
	if s == nil || cert == nil {
		return nil, errors.New("audit: receipt signer needs the audit checkpoint key and its certificate")
	}
	id, err := KeyIDOf(s.Public())
	if err != nil {
		return nil, err
	}
	if cid, err := KeyIDOf(cert.PublicKey); err != nil || cid != id {
		return nil, fmt.Errorf("audit: the audit key certificate is not of the signing key (%s)", id)
	}
	if clock == nil {
		clock = wallclock.Now
	}
	return &ReceiptSigner{signer: s, keyID: id, cert: cert.Raw, clock: clock}, nil
}

// KeyCertificate returns the DER certificate of the signing key.
func (r *ReceiptSigner) KeyCertificate() []byte { return r.cert }

// Sign returns a receipt for terminal's chain head (seq, hash), witnessed now.
func (r *ReceiptSigner) Sign(terminal string, seq int64, hash []byte) (wire.AuditReceipt, error) {
	rc := wire.AuditReceipt{TerminalID: terminal, Seq: seq, Hash: append([]byte(nil), hash...),
		WitnessedAt: r.clock().UTC(), KeyID: r.keyID, KeyCertificate: r.cert}
	sig, err := r.signer.Sign(rand.Reader, wire.ReceiptDigest(rc), crypto.SHA256)
	if err != nil {
		return wire.AuditReceipt{}, fmt.Errorf("audit: sign receipt: %w", err)
	}
	rc.Signature = sig
	return rc, nil
}

// VerifyReceipt checks a receipt under one of keys (by KeyID), public keys only.
func VerifyReceipt(rc wire.AuditReceipt, keys []Key) error {
	for _, k := range keys {
		if k.ID == rc.KeyID {
			return wire.VerifyAuditReceipt(k.Public, rc)
		}
	}
	return fmt.Errorf("%w: key %q is not a known audit checkpoint key", wire.ErrBadReceipt, rc.KeyID)
}

// SignAck signs a revocation acknowledgement for the holder (online revocation, CPS §4.9.3.1;
// wire.SignedRevocationAck) with the same key; wire.RevocationAckDigest has its own domain
// string, so an acknowledgement is never taken for a receipt or a checkpoint.
func (r *ReceiptSigner) SignAck(ack wire.RevocationAck) (wire.SignedRevocationAck, error) {
	payload, err := json.Marshal(ack)
	if err != nil {
		return wire.SignedRevocationAck{}, fmt.Errorf("audit: encode acknowledgement: %w", err)
	}
	sig, err := r.signer.Sign(rand.Reader, wire.RevocationAckDigest(payload), crypto.SHA256)
	if err != nil {
		return wire.SignedRevocationAck{}, fmt.Errorf("audit: sign acknowledgement: %w", err)
	}
	return wire.SignedRevocationAck{Ack: ack, Payload: payload, KeyID: r.keyID, Signature: sig, KeyCertificate: r.cert}, nil
}
