package applicant

import (
	"errors"
	"fmt"
)

// Kinds of validation failure. Validate returns *FieldError values whose
// Unwrap yields one of these, so callers branch with errors.Is and read the
// field, limit or position with errors.As. Error texts never contain the
// field's value: it is personal data (DOMAIN §9).
var (
	ErrEmpty                 = errors.New("applicant: required field is empty")
	ErrInvalidDate           = errors.New("applicant: invalid date")
	ErrFutureBirthDate       = errors.New("applicant: date of birth is in the future")
	ErrUnknownSexCode        = errors.New("applicant: unknown sex code")
	ErrFieldTooLong          = errors.New("applicant: field too long")
	ErrInvalidCharacter      = errors.New("applicant: invalid character")
	ErrControlCharacter      = errors.New("applicant: control character")
	ErrInvalidUTF8           = errors.New("applicant: invalid UTF-8")
	ErrFormerSurnameAndAlias = errors.New("applicant: both former surname and alias given")
	ErrSubstitutePosition    = errors.New("applicant: invalid substitute-character position")
	ErrInvalidResidentCode   = errors.New("applicant: resident-record code must be 11 digits")
	ErrCardExpired           = errors.New("applicant: card expiry date has passed")
	ErrRenewalWithoutExpiry  = errors.New("applicant: early renewal without the current certificate's expiry date")
	ErrExpiryWithoutRenewal  = errors.New("applicant: current certificate expiry given without early renewal")
	ErrBadHMAC               = errors.New("applicant: person-key HMAC returned a wrong-sized digest")
)

// FieldError is one validation failure of one field.
type FieldError struct {
	Field string // field name as in the resident-record file, e.g. "name"
	Kind  error  // one of the Err* values above
	// Limit is the maximum length in Unicode code points (ErrFieldTooLong).
	Limit int
	// Length is the actual length in code points (ErrFieldTooLong).
	Length int
	// Position is the 0-based code-point index of the offending character
	// (ErrInvalidCharacter, ErrSubstitutePosition) or the byte offset of the
	// first invalid byte (ErrInvalidUTF8). -1 when not applicable.
	Position int
	// Rune is the offending character (ErrInvalidCharacter).
	Rune rune
}

func (e *FieldError) Error() string {
	switch e.Kind {
	case ErrFieldTooLong:
		return fmt.Sprintf("%v: %s has %d characters, limit %d", e.Kind, e.Field, e.Length, e.Limit)
	case ErrInvalidCharacter, ErrControlCharacter:
		return fmt.Sprintf("%v: %s at character %d (U+%04X)", e.Kind, e.Field, e.Position, e.Rune)
	case ErrInvalidUTF8:
		return fmt.Sprintf("%v: %s at byte %d", e.Kind, e.Field, e.Position)
	case ErrSubstitutePosition:
		return fmt.Sprintf("%v: %s position %d", e.Kind, e.Field, e.Position)
	}
	return fmt.Sprintf("%v: %s", e.Kind, e.Field)
}

// Unwrap returns the kind, for errors.Is.
func (e *FieldError) Unwrap() error { return e.Kind }

func fieldErr(field string, kind error) *FieldError {
	return &FieldError{Field: field, Kind: kind, Position: -1}
}
