package perso

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"

	"madoguchi/cardio/scp"
)

// AttestationVersion is the first byte of every attestation.
const AttestationVersion byte = 0x01

// AttestationLen is the length of an encoded attestation:
// version(1) ‖ serial(16) ‖ host challenge(8) ‖ card challenge(8) ‖ count(1) ‖ digest(32).
const AttestationLen = 1 + scp.SerialLen + 2*scp.ChallengeLen + 1 + sha256.Size

// ErrAttestation means the card's FINALIZE answer does not attest exactly what the script
// sent: the CA must not mark the certificates delivered.
var ErrAttestation = errors.New("perso: attestation does not match the script")

// Attestation is what the card answers to FINALIZE after it committed the staged changes,
// under R-MAC (and R-ENC) of the session: the card's serial, the session challenges, the
// number of changes and Digest = SHA-256 over one 35-byte record per change, in order:
// INS(1) ‖ FID(2) ‖ SHA-256(content), where content is the certificate DER for WRITE FILE,
// the DER SubjectPublicKeyInfo of the imported key for PUT KEY (computed by the card from
// the key it decrypted, which proves it decrypted the right key), and empty for RESET PIN
// and DELETE KEY. TS Art. 6(iii) and DOMAIN §4.7: verify what was written before delivery.
type Attestation struct {
	Serial        []byte
	HostChallenge []byte
	CardChallenge []byte
	Count         int
	Digest        [sha256.Size]byte
}

// Encode returns the AttestationLen-byte wire form.
func (a Attestation) Encode() []byte {
	out := make([]byte, 0, AttestationLen)
	out = append(out, AttestationVersion)
	out = append(out, a.Serial...)
	out = append(out, a.HostChallenge...)
	out = append(out, a.CardChallenge...)
	out = append(out, byte(a.Count))
	return append(out, a.Digest[:]...)
}

// ParseAttestation parses the wire form of an attestation.
func ParseAttestation(b []byte) (Attestation, error) {
	if len(b) != AttestationLen || b[0] != AttestationVersion {
		return Attestation{}, fmt.Errorf("%w: %d bytes, version %x", ErrAttestation, len(b), b[:min(1, len(b))])
	}
	a := Attestation{
		Serial:        bytes.Clone(b[1:17]),
		HostChallenge: bytes.Clone(b[17:25]),
		CardChallenge: bytes.Clone(b[25:33]),
		Count:         int(b[33]),
	}
	copy(a.Digest[:], b[34:])
	return a, nil
}

// transcript accumulates the attestation records of a session, identically on both ends.
type transcript struct {
	records []byte
	count   int
}

func (t *transcript) add(ins byte, fid uint16, content []byte) {
	h := sha256.Sum256(content)
	t.records = append(t.records, ins, byte(fid>>8), byte(fid))
	t.records = append(t.records, h[:]...)
	t.count++
}

func (t *transcript) attestation(p scp.SessionParams) Attestation {
	return Attestation{
		Serial:        bytes.Clone(p.Serial),
		HostChallenge: bytes.Clone(p.HostChallenge),
		CardChallenge: bytes.Clone(p.CardChallenge),
		Count:         t.count,
		Digest:        sha256.Sum256(t.records),
	}
}

// publicKeyContent is the attested content of an imported key: its DER SubjectPublicKeyInfo.
func publicKeyContent(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("perso: encode public key: %w", err)
	}
	return der, nil
}
