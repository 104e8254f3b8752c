package status

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
)

// HMACPersons computes the person hash as HMAC-SHA256(Key, resident code),
// the same keyed hash issuance.BasicApplicantChecker stores, so a change
// report finds the person's certificates without the CA keeping the code.
type HMACPersons struct {
	Key []byte // at least 32 bytes; the CA's person-hash secret
}

var _ PersonHasher = HMACPersons{}

// PersonHash implements PersonHasher.
func (p HMACPersons) PersonHash(_ context.Context, residentCode string) ([]byte, error) {
	if len(p.Key) < 32 {
		return nil, errors.New("status: person-hash key shorter than 32 bytes")
	}
	m := hmac.New(sha256.New, p.Key)
	m.Write([]byte(residentCode))
	return m.Sum(nil), nil
}
