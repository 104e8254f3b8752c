package wire

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// The terminal's audit witness (issue 13, threat 2): the terminal's audit chain is an unkeyed
// hash chain in its own database, so whoever holds that file can rewrite all of it. The
// terminal therefore sends its chain head to the CA (at least every 10 minutes and at every
// log-out); the CA records it in its own audit log and answers with a receipt signed by the
// audit checkpoint key in the HSM (TS Art. 20(2), CPS §5.4: records protected against
// alteration). A rewrite of any record up to a witnessed head changes the hash the CA holds.
//
//	POST /v1/terminal-audit/heads          AuditHeadRequest → AuditReceipt
//	GET  /v1/terminal-audit/heads/latest   → WitnessedHead
//
// Witness codes.
const (
	// CodeAuditHeadBackwards: the head's sequence number is below the last one the CA
	// witnessed for this terminal (409): records were removed or the file was replaced.
	CodeAuditHeadBackwards Code = "audit_head_backwards"
	// CodeAuditHeadForked: the chain disagrees with a head the CA witnessed (same sequence
	// number, other hash; or the anchor the terminal gives is not what the CA holds) (409):
	// witnessed records were rewritten.
	CodeAuditHeadForked Code = "audit_head_forked"
	// CodeAuditAnchorStale: the anchor names another head than the CA's last one for this
	// terminal (409): the terminal must read the latest head (GET) and send again.
	CodeAuditAnchorStale Code = "audit_anchor_stale"
)

// AuditHeadRequest is the terminal's audit chain head, and the anchor: the hash of its own
// record at the sequence number of the last head the CA witnessed for it (zero values when the
// CA witnessed nothing yet). The CA refuses a head whose anchor is not exactly its last witnessed
// head, so a rewrite cannot be laundered by witnessing a new head on top of it.
type AuditHeadRequest struct {
	Seq        int64     `json:"seq"`
	Hash       []byte    `json:"hash"`        // SHA-256 chain hash of record Seq
	NewestAt   time.Time `json:"newest_at"`   // time of record Seq (terminal clock; informative)
	AnchorSeq  int64     `json:"anchor_seq"`  // the CA's last witnessed seq for this terminal
	AnchorHash []byte    `json:"anchor_hash"` // the terminal's hash of record AnchorSeq
}

// AuditReceipt is the CA's signed statement that it saw terminal TerminalID's audit chain with
// hash Hash at record Seq, at time WitnessedAt (CA clock). Signature is by the audit
// checkpoint key named KeyID (sha256: of its SubjectPublicKeyInfo) over ReceiptDigest.
// KeyCertificate is that key's certificate (DER) so the terminal can pin it; a terminal must
// not trust a key only because a receipt carries it (see VerifyAuditReceipt).
type AuditReceipt struct {
	TerminalID     string    `json:"terminal_id"`
	Seq            int64     `json:"seq"`
	Hash           []byte    `json:"hash"`
	WitnessedAt    time.Time `json:"witnessed_at"`
	KeyID          string    `json:"key_id"`
	Signature      []byte    `json:"signature"`
	KeyCertificate []byte    `json:"key_certificate,omitempty"`
}

// WitnessedHead is the last head the CA witnessed for the calling terminal (Found false: none).
type WitnessedHead struct {
	Found       bool      `json:"found"`
	TerminalID  string    `json:"terminal_id"`
	Seq         int64     `json:"seq"`
	Hash        []byte    `json:"hash"`
	WitnessedAt time.Time `json:"witnessed_at"`
	// KeyCertificate is the CA's current audit checkpoint key certificate (DER), served over
	// the authenticated channel so the terminal can pin it for checking receipts offline.
	KeyCertificate []byte `json:"key_certificate,omitempty"`
}

// receiptDomain separates receipt signatures from every other use of the audit checkpoint key
// (checkpoints sign "madoguchi audit checkpoint v1").
const receiptDomain = "madoguchi terminal audit receipt v1\x00"

// ReceiptDigest is the SHA-256 the audit checkpoint key signs for a receipt: the domain string,
// then the terminal id, the key id (each 4-byte length-prefixed), seq and the CA time (8-byte
// big-endian, nanoseconds since 1970) and the 32-byte head hash.
func ReceiptDigest(r AuditReceipt) []byte {
	h := sha256.New()
	h.Write([]byte(receiptDomain))
	for _, f := range []string{r.TerminalID, r.KeyID} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(r.Seq))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(r.WitnessedAt.UnixNano()))
	h.Write(b[:])
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(r.Hash)))
	h.Write(n[:])
	h.Write(r.Hash)
	return h.Sum(nil)
}

// AuditKeyID names an audit checkpoint key: "sha256:" and the hex SHA-256 of its
// SubjectPublicKeyInfo (the same name ca-server/audit.KeyIDOf gives checkpoints).
func AuditKeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("wire: audit key: %w", err)
	}
	h := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(h[:]), nil
}

// ErrBadReceipt is returned by VerifyAuditReceipt for a receipt that does not verify.
var ErrBadReceipt = errors.New("wire: audit receipt does not verify")

// VerifyAuditReceipt checks r's signature under pub, which must be a key the verifier already
// trusts (pinned), and that r names that key. RSA (PKCS #1 v1.5, the HSM's audit key) and
// ECDSA are accepted.
func VerifyAuditReceipt(pub crypto.PublicKey, r AuditReceipt) error {
	id, err := AuditKeyID(pub)
	if err != nil {
		return err
	}
	if id != r.KeyID {
		return fmt.Errorf("%w: signed by key %s, checked against %s", ErrBadReceipt, r.KeyID, id)
	}
	if len(r.Hash) != sha256.Size || r.Seq < 1 || r.TerminalID == "" {
		return fmt.Errorf("%w: incomplete receipt", ErrBadReceipt)
	}
	if !VerifyDigestSignature(pub, ReceiptDigest(r), r.Signature) {
		return fmt.Errorf("%w: bad signature (key %s)", ErrBadReceipt, r.KeyID)
	}
	return nil
}

// VerifyDigestSignature checks sig over a SHA-256 digest under pub: RSA PKCS #1 v1.5 (the HSM's
// audit key) or ECDSA. The CA's checkpoints and its receipts to terminals are both verified
// with it; any other key type does not verify.
func VerifyDigestSignature(pub crypto.PublicKey, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	default:
		return false
	}
}
