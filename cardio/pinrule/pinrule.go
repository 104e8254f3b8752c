// Package pinrule checks the format of the two JPKI card PINs, shared by the card (which
// refuses a badly formed PIN at CHANGE REFERENCE DATA) and the terminal (which refuses it
// before sending). It checks format only; the "not easily guessed" rules of TS Art. 4
// (repeats, runs, birthday) live in the terminal's app package, which knows the applicant.
//
// Concurrency: pure functions, safe for concurrent use. Errors never contain the PIN.
package pinrule

import (
	"errors"
	"fmt"
)

// Kind is one of the two card PINs.
type Kind int

const (
	// UserAuth is the user-authentication PIN (PIN EF 0018): exactly 4 digits, 3 tries.
	UserAuth Kind = 1
	// Signature is the signature PIN (PIN EF 001B): 6–16 characters A–Z and 0–9 with at
	// least one letter and one digit, 5 tries.
	Signature Kind = 2
)

// PIN EF identifiers on the JPKI AP (PLATFORM.md).
const (
	FIDUserAuthPIN  uint16 = 0x0018
	FIDSignaturePIN uint16 = 0x001B
)

// String returns "user-auth" or "signature".
func (k Kind) String() string {
	switch k {
	case UserAuth:
		return "user-auth"
	case Signature:
		return "signature"
	}
	return fmt.Sprintf("pinrule.Kind(%d)", int(k))
}

// ErrFormat is wrapped by every *FormatError, for errors.Is.
var ErrFormat = errors.New("pinrule: pin format not accepted")

// FormatError says why a PIN was refused, without the PIN. Reason is a fixed English phrase.
type FormatError struct {
	Kind   Kind
	Reason string
}

// Error implements error.
func (e *FormatError) Error() string {
	return fmt.Sprintf("pinrule: %s pin %s", e.Kind, e.Reason)
}

// Unwrap returns ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }

// MaxTries returns the number of consecutive wrong tries after which the card blocks the
// PIN: 3 for UserAuth, 5 for Signature (DOMAIN §2; TS Art. 17-2(xi)(xii)), 0 for an unknown
// kind.
func MaxTries(k Kind) int {
	switch k {
	case UserAuth:
		return 3
	case Signature:
		return 5
	}
	return 0
}

// ForPINFile returns the PIN kind stored in PIN EF fid (0018 or 001B).
func ForPINFile(fid uint16) (Kind, error) {
	switch fid {
	case FIDUserAuthPIN:
		return UserAuth, nil
	case FIDSignaturePIN:
		return Signature, nil
	}
	return 0, fmt.Errorf("pinrule: ef %04X is not a pin file", fid)
}

// Check reports whether pin has the format of kind k: for UserAuth exactly 4 ASCII digits;
// for Signature 6–16 of A–Z and 0–9 (upper case only) with at least one letter and one digit.
func Check(k Kind, pin []byte) error {
	switch k {
	case UserAuth:
		if len(pin) != 4 {
			return &FormatError{Kind: k, Reason: "must be exactly 4 digits"}
		}
		for _, c := range pin {
			if c < '0' || c > '9' {
				return &FormatError{Kind: k, Reason: "must contain digits only"}
			}
		}
		return nil
	case Signature:
		if len(pin) < 6 || len(pin) > 16 {
			return &FormatError{Kind: k, Reason: "must be 6 to 16 characters"}
		}
		var letter, digit bool
		for _, c := range pin {
			switch {
			case c >= 'A' && c <= 'Z':
				letter = true
			case c >= '0' && c <= '9':
				digit = true
			default:
				return &FormatError{Kind: k, Reason: "may contain only upper-case letters a-z and digits"}
			}
		}
		if !letter || !digit {
			return &FormatError{Kind: k, Reason: "needs at least one letter and one digit"}
		}
		return nil
	}
	return fmt.Errorf("pinrule: unknown pin kind %d", int(k))
}
