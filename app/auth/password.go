// Package auth holds the operator log-in primitives: fingerprint verification and enrolment
// through fprintd over D-Bus (TS Art. 3(3): operators log in with biometrics), and password
// verifiers for the operators a supervisor exempted from biometrics.
//
// The log-in policy (who may use which method, lockout, idle log-out, audit) lives in the app
// package's Terminal; this package only answers "does this finger / password match".
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"

	"madoguchi/app/apperr"
)

// Argon2Params are the argon2id cost parameters. The zero value means DefaultArgon2.
type Argon2Params struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// DefaultArgon2 follows the OWASP password-storage minimum for argon2id (m=19 MiB, t=2, p=1).
var DefaultArgon2 = Argon2Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// MinPasswordLen is the shortest password accepted for an exempted operator.
	MinPasswordLen = 10
)

// HashPassword returns a verifier ("argon2id$t$m$p$<hex>") and a fresh per-user salt from rnd.
func HashPassword(password string, p Argon2Params, rnd io.Reader) (verifier, salt []byte, err error) {
	if len([]rune(password)) < MinPasswordLen {
		return nil, nil, apperr.New(apperr.InvalidInput, "auth: password shorter than %d characters", MinPasswordLen)
	}
	if p == (Argon2Params{}) {
		p = DefaultArgon2
	}
	salt = make([]byte, saltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return nil, nil, apperr.Wrap(apperr.Internal, err, "auth: salt")
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	return []byte(fmt.Sprintf("argon2id$%d$%d$%d$%x", p.Time, p.MemoryKiB, p.Threads, key)), salt, nil
}

// CheckPassword reports whether password matches the verifier and salt, comparing in constant
// time. A malformed verifier is an error, never a match.
func CheckPassword(password string, verifier, salt []byte) (bool, error) {
	parts := strings.Split(string(verifier), "$")
	var p Argon2Params
	var want []byte
	if len(parts) != 5 || parts[0] != "argon2id" {
		return false, apperr.New(apperr.Internal, "auth: malformed password verifier")
	}
	if _, err := fmt.Sscanf(parts[1]+" "+parts[2]+" "+parts[3]+" "+parts[4], "%d %d %d %x", &p.Time, &p.MemoryKiB, &p.Threads, &want); err != nil || len(want) != keyLen {
		return false, apperr.New(apperr.Internal, "auth: malformed password verifier")
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// RandomReader is crypto/rand.Reader, named for injection sites.
var RandomReader io.Reader = rand.Reader
