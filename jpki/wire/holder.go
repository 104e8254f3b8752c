package wire

import (
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Online revocation by the holder (CPS §4.9.3.1; DOMAIN §5): the holder of a signature
// certificate may ask for its revocation online, with a signature made by that certificate's
// key (the card's signature key). Only the signature certificate: a user-authentication
// certificate is revoked at the counter.
//
//	POST /v1/holder/revoke   (public listener)   HolderRevocation → SignedRevocationAck
//
// Format: a signed JSON object, not CMS SignedData. The payload is the exact bytes the holder
// signed; the signature is RSASSA-PKCS1-v1_5 with SHA-256 over those bytes, which is what
// every card stack produces without a CMS encoder (`pkcs11-tool --sign -m SHA256-RSA-PKCS`
// through OpenSC's JPKI module, `openssl dgst -sha256 -sign`, the card's own COMPUTE DIGITAL
// SIGNATURE over a DigestInfo), and the CA checks it with the standard library alone: no
// ASN.1 parser of attacker-supplied CMS on an unauthenticated listener. The CA parses the
// signed bytes and never re-serialises them, so there is no canonicalisation to get wrong.
//
// Replay: the payload carries a random request id, used once for ever (the CA keeps every
// status request), and the holder's signing time, accepted within HolderRequestWindow of the
// CA's clock; a CA nonce would need a round trip and server state per unauthenticated caller.
const (
	// HolderRevocationType is the payload's type: it separates these signatures from any other
	// use of the signature key.
	HolderRevocationType = "madoguchi-holder-revocation-v1"
	// HolderRevocationKind is the only request kind accepted online: revocation reason 5,
	// cessationOfOperation (CPS §4.9.3.1; key compromise and an unusable card only at the
	// counter).
	HolderRevocationKind = "stop-using"
	// HolderRequestWindow bounds |CA clock − signed_at|.
	HolderRequestWindow = 10 * time.Minute
	// MaxHolderPayload bounds the signed payload.
	MaxHolderPayload = 2048
)

// Holder revocation codes.
const (
	// CodeHolderSignatureInvalid: the signature does not verify with the certificate the
	// payload names, or the CA issued no such certificate (401; the two are not told apart, so
	// the public listener is no oracle for serials).
	CodeHolderSignatureInvalid Code = "holder_signature_invalid"
	// CodeOnlineSignatureOnly: the payload names a user-authentication certificate; only the
	// signature certificate is revoked online (403; CPS §4.9.3.1).
	CodeOnlineSignatureOnly Code = "online_revocation_signature_only"
	// CodeRequestStale: signed_at is outside HolderRequestWindow of the CA's clock (400).
	CodeRequestStale Code = "request_stale"
	// CodeRequestReplayed: the request id was already used (409): a replay changes nothing.
	CodeRequestReplayed Code = "request_replayed"
)

// HolderRevocationPayload is what the holder signs.
type HolderRevocationPayload struct {
	Type      string    `json:"type"`       // HolderRevocationType
	Serial    string    `json:"serial"`     // the signature certificate's serial (hex)
	Kind      string    `json:"kind"`       // HolderRevocationKind
	RequestID string    `json:"request_id"` // random, 16 to 64 of A-Z a-z 0-9 . _ -
	SignedAt  time.Time `json:"signed_at"`  // the holder's clock
}

// HolderRevocation is the request body: the signed payload bytes and the signature.
type HolderRevocation struct {
	Payload   []byte `json:"payload"`   // JSON of HolderRevocationPayload, exactly as signed
	Signature []byte `json:"signature"` // RSASSA-PKCS1-v1_5 SHA-256 over Payload
}

// NewHolderRevocationPayload encodes the payload the holder signs.
func NewHolderRevocationPayload(serial, requestID string, signedAt time.Time) ([]byte, error) {
	return json.Marshal(HolderRevocationPayload{Type: HolderRevocationType, Serial: serial, Kind: HolderRevocationKind,
		RequestID: requestID, SignedAt: signedAt.UTC()})
}

// SignedRevocationAck is the CA's revocation acknowledgement (RevocationAck, the same data the
// counter prints for the holder) signed by the CA's audit checkpoint key in the HSM: Payload is
// the JSON of Ack exactly as signed, Signature is over RevocationAckDigest(Payload), KeyID
// names the key (AuditKeyID) and KeyCertificate is its certificate (DER). A holder checks it
// with VerifyRevocationAck under a key it trusts (the CA's published audit key), not only the
// one the answer carries.
type SignedRevocationAck struct {
	Ack            RevocationAck `json:"ack"`
	Payload        []byte        `json:"payload"`
	KeyID          string        `json:"key_id"`
	Signature      []byte        `json:"signature"`
	KeyCertificate []byte        `json:"key_certificate,omitempty"`
}

// ackDomain separates acknowledgement signatures from the audit key's checkpoints and receipts.
const ackDomain = "madoguchi revocation acknowledgement v1\x00"

// RevocationAckDigest is the SHA-256 the audit key signs for an acknowledgement.
func RevocationAckDigest(payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte(ackDomain))
	h.Write(payload)
	return h.Sum(nil)
}

// ErrBadAck is returned by VerifyRevocationAck for an acknowledgement that does not verify.
var ErrBadAck = errors.New("wire: revocation acknowledgement does not verify")

// VerifyRevocationAck checks a's signature under pub (a key the holder trusts) and that Ack is
// exactly the signed payload.
func VerifyRevocationAck(pub crypto.PublicKey, a SignedRevocationAck) error {
	id, err := AuditKeyID(pub)
	if err != nil {
		return err
	}
	if id != a.KeyID {
		return fmt.Errorf("%w: signed by key %s, checked against %s", ErrBadAck, a.KeyID, id)
	}
	if !VerifyDigestSignature(pub, RevocationAckDigest(a.Payload), a.Signature) {
		return fmt.Errorf("%w: bad signature", ErrBadAck)
	}
	var signed RevocationAck
	if err := json.Unmarshal(a.Payload, &signed); err != nil {
		return fmt.Errorf("%w: payload: %v", ErrBadAck, err)
	}
	if !(signed.Serial == a.Ack.Serial && signed.Reason == a.Ack.Reason && signed.RevokedAt.Equal(a.Ack.RevokedAt) &&
		signed.CertType == a.Ack.CertType && signed.Kind == a.Ack.Kind) {
		return fmt.Errorf("%w: acknowledgement differs from the signed payload", ErrBadAck)
	}
	return nil
}
