package scp

import (
	"context"
	"fmt"
)

// Sizes fixed by the protocol (docs/CARD-PROTOCOL.md "Secure channel").
const (
	SerialLen    = 16 // card serial = key diversification data
	ChallengeLen = 8  // host and card challenges (SCP03 S8 mode)
	CryptoLen    = 8  // card and host cryptograms
	MACLen       = 8  // C-MAC and R-MAC as sent on the wire (truncated CMAC)
	KeyLen       = 16 // every static and session key is AES-128
	// KeyVersion is the key version number (KVN) of the card static key set. Cards answer
	// INITIALIZE UPDATE with P1 00 or P1 = KeyVersion only.
	KeyVersion byte = 0x30
)

// KeyKind names one of a card's three static keys.
type KeyKind uint8

// The card static keys, diversified per card from the issuer master keys.
const (
	KeyENC KeyKind = 1 // K-ENC: base key of S-ENC
	KeyMAC KeyKind = 2 // K-MAC: base key of S-MAC, S-RMAC and the cryptograms
	KeyDEK KeyKind = 3 // K-DEK: base key of S-DEK, which wraps imported private keys
)

// String returns "K-ENC", "K-MAC" or "K-DEK".
func (k KeyKind) String() string {
	switch k {
	case KeyENC:
		return "K-ENC"
	case KeyMAC:
		return "K-MAC"
	case KeyDEK:
		return "K-DEK"
	}
	return fmt.Sprintf("KeyKind(%d)", uint8(k))
}

// HostKeys is the host end's only access to card static keys. ca-server/cardkeys implements
// it over PKCS#11 (derive K = AES-ECB(MK, serial) with CKM_AES_ECB_ENCRYPT_DATA, then
// CKM_AES_CMAC), so the static keys never leave the HSM (TS Art. 6(ii), 7(ii): the card and
// the issuer authenticate each other with keys the terminal never holds); SoftwareIssuer is
// the software reference. Implementations must be safe for concurrent use.
type HostKeys interface {
	// CardCMAC returns the 16-byte AES-CMAC of data under the card static key kind (KeyENC or
	// KeyMAC) of the card whose serial (diversification data, 16 bytes) is given.
	CardCMAC(ctx context.Context, kind KeyKind, serial []byte, data []byte) ([]byte, error)
}

// CardKeys is one card's static key set as the card holds it. Its String and GoString
// methods redact the keys so that formatting it with %v or %#v never leaks them.
type CardKeys struct {
	ENC, MAC, DEK []byte // 16 bytes each
}

// String implements fmt.Stringer without revealing the keys.
func (CardKeys) String() string { return "scp.CardKeys{redacted}" }

// GoString implements fmt.GoStringer without revealing the keys.
func (CardKeys) GoString() string { return "scp.CardKeys{redacted}" }

// Valid reports whether all three keys are 16 bytes.
func (k CardKeys) Valid() error {
	if len(k.ENC) != KeyLen || len(k.MAC) != KeyLen || len(k.DEK) != KeyLen {
		return fmt.Errorf("scp: card static keys must be %d bytes each", KeyLen)
	}
	return nil
}

// SoftwareIssuer holds the three issuer master keys in memory and derives card keys from
// them. It is the reference for ca-server/cardkeys and makes card stock for the virtual card
// and tests; production keeps the masters in the HSM. Safe for concurrent use (read-only).
// Never format it with %v: String redacts, but prefer not to.
type SoftwareIssuer struct {
	MasterENC, MasterMAC, MasterDEK []byte // 16 bytes each
}

var _ HostKeys = (*SoftwareIssuer)(nil)

// String implements fmt.Stringer without revealing the master keys.
func (*SoftwareIssuer) String() string { return "scp.SoftwareIssuer{redacted}" }

// GoString implements fmt.GoStringer without revealing the master keys.
func (*SoftwareIssuer) GoString() string { return "scp.SoftwareIssuer{redacted}" }

// CardKeys returns the diversified static keys of the card with serial, for card stock.
func (s *SoftwareIssuer) CardKeys(serial []byte) (CardKeys, error) {
	enc, err := Diversify(s.MasterENC, serial)
	if err != nil {
		return CardKeys{}, err
	}
	mac, err := Diversify(s.MasterMAC, serial)
	if err != nil {
		return CardKeys{}, err
	}
	dek, err := Diversify(s.MasterDEK, serial)
	if err != nil {
		return CardKeys{}, err
	}
	return CardKeys{ENC: enc, MAC: mac, DEK: dek}, nil
}

// CardCMAC implements HostKeys.
func (s *SoftwareIssuer) CardCMAC(ctx context.Context, kind KeyKind, serial []byte, data []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var master []byte
	switch kind {
	case KeyENC:
		master = s.MasterENC
	case KeyMAC:
		master = s.MasterMAC
	default:
		return nil, fmt.Errorf("scp: cmac under %v is not allowed", kind)
	}
	k, err := Diversify(master, serial)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return CMAC(k, data)
}

// WrapForSession wraps plaintext (a PKCS#8 private key) with RFC 5649 under the S-DEK of
// session p, as the HSM does inside itself for ca-server. Like SoftHSM it first pads the
// plaintext with zero bytes to a multiple of 8, so the card sees the same blob shape from
// both (PLATFORM.md: SoftHSM's wrap yields PKCS#8 DER + 1–7 zero bytes).
func (s *SoftwareIssuer) WrapForSession(p SessionParams, plaintext []byte) ([]byte, error) {
	kdek, err := Diversify(s.MasterDEK, p.Serial)
	if err != nil {
		return nil, err
	}
	defer clear(kdek)
	sdek, err := SessionDEK(kdek, p.HostChallenge, p.CardChallenge)
	if err != nil {
		return nil, err
	}
	defer clear(sdek)
	padded := make([]byte, (len(plaintext)+7)/8*8)
	copy(padded, plaintext)
	defer clear(padded)
	return WrapKWP(sdek, padded)
}
