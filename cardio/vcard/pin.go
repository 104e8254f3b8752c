package vcard

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"

	"madoguchi/cardio/pinrule"
)

// PINState is the life state of one card PIN.
type PINState string

const (
	// PINNotSet: no reference value yet; only the applicant's PIN set is accepted
	// (CPS §6.4.1.2: the applicant sets the PIN personally).
	PINNotSet PINState = "not-set"
	// PINSet: a reference value is stored and tries remain.
	PINSet PINState = "set"
	// PINBlocked: the try counter reached zero; the card refuses every use of the PIN
	// (TS Art. 17-2(xi)(xii)).
	PINBlocked PINState = "blocked"
)

// pinKinds maps each PIN file to its kind; the format and try limit come from
// cardio/pinrule, shared with the terminal so both refuse the same PINs.
var pinKinds = map[uint16]pinrule.Kind{EFUserAuthPIN: pinrule.UserAuth, EFSignaturePIN: pinrule.Signature}

// pinHashIterations is the PBKDF2 work factor for stored PIN hashes. The try counter is the
// real protection of a 4-digit PIN; the salted hash keeps the PIN itself out of the state file
// (DOMAIN §9: PINs are never stored).
const pinHashIterations = 4096

// pinRecord is one PIN as the card keeps it: a salted hash, never the PIN.
type pinRecord struct {
	State     PINState `json:"state"`
	Salt      []byte   `json:"salt,omitempty"`
	Hash      []byte   `json:"hash,omitempty"`
	TriesLeft int      `json:"tries_left"`
}

// String hides the hash so a record printed by mistake reveals nothing.
func (r pinRecord) String() string {
	return fmt.Sprintf("pin{state=%s tries=%d}", r.State, r.TriesLeft)
}

func hashPIN(pin, salt []byte) []byte {
	h, err := pbkdf2.Key(sha256.New, string(pin), salt, pinHashIterations, 32)
	if err != nil { // only for FIPS-mode parameter refusals, which these parameters avoid
		panic("vcard: pbkdf2: " + err.Error())
	}
	return h
}

// set stores a new reference value for pin with a fresh salt and full tries.
func (r *pinRecord) set(pin []byte, kind pinrule.Kind, rand io.Reader) error {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return fmt.Errorf("vcard: pin salt: %w", err)
	}
	r.Salt = salt
	r.Hash = hashPIN(pin, salt)
	r.State = PINSet
	r.TriesLeft = pinrule.MaxTries(kind)
	return nil
}

// matches compares pin with the stored hash in constant time.
func (r *pinRecord) matches(pin []byte) bool {
	return subtle.ConstantTimeCompare(hashPIN(pin, r.Salt), r.Hash) == 1
}
