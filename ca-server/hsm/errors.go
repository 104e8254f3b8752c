package hsm

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Errors callers branch on with errors.Is. Errors returned by PKCS#11 calls
// are *Error values that match the sentinel for their CKR code.
var (
	// ErrClosed: the HSM was closed, or is closing, before the call got a session.
	ErrClosed = errors.New("hsm: closed")
	// ErrTokenNotFound: no token with the configured label is present.
	ErrTokenNotFound = errors.New("hsm: token not found")
	// ErrKeyNotFound: no object matches the label/CKA_ID asked for.
	ErrKeyNotFound = errors.New("hsm: key not found")
	// ErrAmbiguousKey: several objects match where exactly one was expected.
	ErrAmbiguousKey = errors.New("hsm: more than one key matches")
	// ErrPINIncorrect: C_Login refused the PIN (CKR_PIN_INCORRECT).
	ErrPINIncorrect = errors.New("hsm: pin incorrect")
	// ErrPINLocked: the token refuses further PIN attempts (CKR_PIN_LOCKED).
	ErrPINLocked = errors.New("hsm: pin locked")
	// ErrKeyUnextractable: the key may not leave the HSM (CKR_KEY_UNEXTRACTABLE).
	ErrKeyUnextractable = errors.New("hsm: key unextractable")
	// ErrKeyNotWrappable: the key may be wrapped only with a trusted key
	// (CKR_KEY_NOT_WRAPPABLE).
	ErrKeyNotWrappable = errors.New("hsm: key not wrappable with this key")
	// ErrAttributeSensitive: a sensitive attribute was asked for (CKR_ATTRIBUTE_SENSITIVE).
	ErrAttributeSensitive = errors.New("hsm: attribute sensitive")
	// ErrKeyHandleInvalid: the key no longer exists (CKR_KEY_HANDLE_INVALID,
	// CKR_OBJECT_HANDLE_INVALID), e.g. after Destroy.
	ErrKeyHandleInvalid = errors.New("hsm: key handle invalid")
	// ErrMechanismInvalid: the token does not offer the mechanism (CKR_MECHANISM_INVALID).
	ErrMechanismInvalid = errors.New("hsm: mechanism not supported by token")
	// ErrBadInput: the caller's arguments are wrong; nothing was sent to the token.
	ErrBadInput = errors.New("hsm: bad input")
)

// Error is a failed PKCS#11 call.
type Error struct {
	Op   string // what the package was doing, e.g. "generate rsa"
	Code uint   // CKR_* return value
}

func (e *Error) Error() string {
	return fmt.Sprintf("hsm: %s: %s", e.Op, pkcs11.Error(e.Code).Error())
}

// Is reports whether the CKR code corresponds to target's sentinel.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case pkcs11.CKR_PIN_INCORRECT:
		return target == ErrPINIncorrect
	case pkcs11.CKR_PIN_LOCKED:
		return target == ErrPINLocked
	case pkcs11.CKR_KEY_UNEXTRACTABLE:
		return target == ErrKeyUnextractable
	case pkcs11.CKR_KEY_NOT_WRAPPABLE:
		return target == ErrKeyNotWrappable
	case pkcs11.CKR_ATTRIBUTE_SENSITIVE:
		return target == ErrAttributeSensitive
	case pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID:
		return target == ErrKeyHandleInvalid
	case pkcs11.CKR_MECHANISM_INVALID:
		return target == ErrMechanismInvalid
	case pkcs11.CKR_TOKEN_NOT_PRESENT:
		return target == ErrTokenNotFound
	}
	return false
}

// wrapErr turns a miekg/pkcs11 error into *Error; other errors pass through
// with the operation prefixed.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		return &Error{Op: op, Code: uint(pe)}
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrBadInput) || errors.Is(err, ErrKeyNotFound) {
		return err
	}
	return fmt.Errorf("hsm: %s: %w", op, err)
}
