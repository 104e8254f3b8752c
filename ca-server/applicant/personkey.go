package applicant

import (
	"encoding/hex"
	"fmt"
)

// HMACFunc computes HMAC-SHA-256 over message with the CA's person-key
// secret. In production the secret lives in the HSM and this function is a
// PKCS#11 call; tests pass a Go HMAC with a key generated at test time.
type HMACFunc func(message []byte) ([]byte, error)

// PersonHash identifies one person to the CA (to enforce one certificate of
// each type per person, CPS §4.3.1.1) without the CA keeping the
// resident-record code: the CA stores this keyed hash only (TS Art. 31(iii),
// DOMAIN §9). Being keyed, it cannot be recomputed from a code without the
// HSM, so a leaked table does not reveal codes by brute force over the
// 11-digit space.
type PersonHash [32]byte

// String returns the hash in lowercase hex.
func (h PersonHash) String() string { return hex.EncodeToString(h[:]) }

// personKeyDomain separates this use of the HMAC key from any other.
const personKeyDomain = "madoguchi/person-key/v1\x00"

// PersonKey returns the keyed hash of a resident-record code. Preconditions,
// checked in this order: code is 11 ASCII digits (ErrEmpty,
// ErrInvalidResidentCode, as *FieldError); mac returns 32 bytes (ErrBadHMAC).
// Errors never contain the code.
func PersonKey(mac HMACFunc, code ResidentCode) (PersonHash, error) {
	if err := checkResidentCode(code); err != nil {
		return PersonHash{}, err
	}
	msg := make([]byte, 0, len(personKeyDomain)+len(code))
	msg = append(append(msg, personKeyDomain...), code...)
	sum, err := mac(msg)
	clear(msg)
	if err != nil {
		return PersonHash{}, fmt.Errorf("applicant: person key: %w", err)
	}
	if len(sum) != len(PersonHash{}) {
		return PersonHash{}, fmt.Errorf("%w: %d bytes", ErrBadHMAC, len(sum))
	}
	var h PersonHash
	copy(h[:], sum)
	return h, nil
}
