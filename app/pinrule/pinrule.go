// Package pinrule checks the PINs an applicant sets at the counter: the card's format and the
// rule that a PIN must not be easily guessed by others (TS Art. 4): all the same character,
// ascending or descending runs, repeated patterns, and forms of the applicant's birth date
// (Western and Japanese era years). The two entries must match.
//
// PINs are never stored or logged (DOMAIN §2, §9): the PIN type prints as "****" under every
// fmt verb and in JSON, and errors name the rule broken, never the PIN.
//
// Concurrency: all functions are pure and safe for concurrent use.
package pinrule

import (
	"fmt"
	"strings"
	"time"

	"madoguchi/app/apperr"
	cardpin "madoguchi/cardio/pinrule"
)

// PIN holds a PIN entered by the applicant. Its zero value is the empty PIN.
type PIN struct{ s string }

// New wraps s as a PIN.
func New(s string) PIN { return PIN{s: s} }

// Reveal returns the PIN's characters for sending to the card. Never log the result.
func (p PIN) Reveal() string { return p.s }

// Len returns the number of characters.
func (p PIN) Len() int { return len([]rune(p.s)) }

const masked = "****"

// String returns "****".
func (p PIN) String() string { return masked }

// GoString returns "pinrule.PIN(****)".
func (p PIN) GoString() string { return "pinrule.PIN(" + masked + ")" }

// Format prints "****" for every verb, so %v, %s, %q, %x and %#v all mask the PIN.
func (p PIN) Format(f fmt.State, verb rune) { f.Write([]byte(masked)) }

// MarshalJSON returns "****".
func (p PIN) MarshalJSON() ([]byte, error) { return []byte(`"` + masked + `"`), nil }

// Kind is which PIN of the card.
type Kind int

// The two card PINs (DOMAIN §2).
const (
	Signature Kind = iota // signature certificate: 6–16 of A–Z 0–9, ≥1 letter and ≥1 digit
	UserAuth              // user-authentication certificate (and the card-surface input aid etc.): 4 digits
)

func (k Kind) String() string {
	if k == Signature {
		return "signature"
	}
	return "user-auth"
}

// Reason says which rule a PIN broke.
type Reason int

// The rules, in the order Check applies them.
const (
	ReasonLength         Reason = iota + 1 // signature PIN not 6–16 characters
	ReasonCharset                          // signature PIN has characters outside A–Z 0–9
	ReasonLetterAndDigit                   // signature PIN lacks a letter or a digit
	ReasonFourDigits                       // user-auth PIN not exactly 4 digits
	ReasonAllSame                          // 1111, AAAAAA
	ReasonSequence                         // 1234, 9876, ABCD, 7890
	ReasonRepeated                         // 1212, 123123, AB12AB12
	ReasonBirthday                         // derived from the applicant's birth date
	ReasonMismatch                         // the two entries differ
)

// reasonText says which rule was broken: the English error text (logs) and the detail code
// under which assets/translations words it for the applicant.
var reasonText = map[Reason]struct{ en, code string }{
	ReasonLength:         {"signature pin must be 6 to 16 characters", "length"},
	ReasonCharset:        {"signature pin may contain only A-Z and 0-9", "charset"},
	ReasonLetterAndDigit: {"signature pin needs at least one letter and one digit", "letter_and_digit"},
	ReasonFourDigits:     {"user-auth pin must be exactly 4 digits", "four_digits"},
	ReasonAllSame:        {"pin repeats one character", "all_same"},
	ReasonSequence:       {"pin is an ascending or descending run", "sequence"},
	ReasonRepeated:       {"pin repeats a shorter pattern", "repeated"},
	ReasonBirthday:       {"pin is derived from the birth date", "birthday"},
	ReasonMismatch:       {"the two pin entries differ", "mismatch"},
}

// Error is a PIN refusal. errors.Is(err, apperr.WeakPIN) holds for every Error.
type Error struct {
	Kind   Kind
	Reason Reason
}

func (e *Error) Error() string {
	return "pinrule: " + e.Kind.String() + ": " + reasonText[e.Reason].en
}

// Is makes errors.Is(err, apperr.WeakPIN) true, and errors.Is(err, &Error{Reason: r}) match on
// the reason.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case apperr.Kind:
		return t == apperr.WeakPIN
	case *Error:
		return t.Reason == e.Reason
	}
	return false
}

// ErrorKind returns apperr.WeakPIN (apperr.KindOf).
func (e *Error) ErrorKind() apperr.Kind { return apperr.WeakPIN }

// ErrorDetail implements apperr.Detailed: the code of the rule broken ("sequence"), under which
// assets/translations holds the message shown to the applicant.
func (e *Error) ErrorDetail() string { return reasonText[e.Reason].code }

// Applicant is what the birthday rule needs.
type Applicant struct {
	BirthDate time.Time // zero: birthday rule skipped
}

// Check applies the format and guessability rules of kind to pin, then requires confirm to be
// equal. It returns nil or an *Error with the first rule broken.
func Check(kind Kind, pin, confirm PIN, a Applicant) error {
	fail := func(r Reason) error { return &Error{Kind: kind, Reason: r} }
	if r := cardFormat(kind, pin.s); r != 0 {
		return fail(r)
	}
	if r := weakness(kind, pin.s, a.BirthDate); r != 0 {
		return fail(r)
	}
	if pin.s != confirm.s {
		return fail(ReasonMismatch)
	}
	return nil
}

// cardFormat asks the card's own format check (cardio/pinrule, shared with the virtual card) so
// that the terminal and the card agree; Format then names the specific rule for the message.
func cardFormat(kind Kind, pin string) Reason {
	ck := cardpin.Signature
	if kind == UserAuth {
		ck = cardpin.UserAuth
	}
	if err := cardpin.Check(ck, []byte(pin)); err != nil {
		if r := Format(kind, pin); r != 0 {
			return r
		}
		if kind == UserAuth {
			return ReasonFourDigits
		}
		return ReasonCharset
	}
	return Format(kind, pin) // stricter of the two
}

// Format returns the format rule pin breaks for kind, or 0.
func Format(kind Kind, pin string) Reason {
	switch kind {
	case UserAuth:
		if len(pin) != 4 || !allIn(pin, isDigit) {
			return ReasonFourDigits
		}
		return 0
	default:
		if !allIn(pin, func(r rune) bool { return isDigit(r) || isUpper(r) }) {
			return ReasonCharset
		}
		if len(pin) < 6 || len(pin) > 16 {
			return ReasonLength
		}
		if !strings.ContainsFunc(pin, isDigit) || !strings.ContainsFunc(pin, isUpper) {
			return ReasonLetterAndDigit
		}
		return 0
	}
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }
func isUpper(r rune) bool { return r >= 'A' && r <= 'Z' }

func allIn(s string, f func(rune) bool) bool {
	for _, r := range s {
		if !f(r) {
			return false
		}
	}
	return true
}

// weakness returns the guessability rule pin breaks, or 0. pin is already well formed (ASCII).
func weakness(kind Kind, pin string, birth time.Time) Reason {
	if strings.Count(pin, pin[:1]) == len(pin) {
		return ReasonAllSame
	}
	if isRun(pin, 1) || isRun(pin, -1) {
		return ReasonSequence
	}
	for unit := 1; unit <= len(pin)/2; unit++ {
		if len(pin)%unit == 0 && strings.Repeat(pin[:unit], len(pin)/unit) == pin {
			return ReasonRepeated
		}
	}
	if !birth.IsZero() && fromBirthday(kind, pin, birth) {
		return ReasonBirthday
	}
	return 0
}

// isRun reports whether every character is the previous one plus step within one class
// (digits wrap 9→0 and 0→9, so 7890 and 3210 count; letters do not wrap).
func isRun(pin string, step int) bool {
	for i := 1; i < len(pin); i++ {
		a, b := int(pin[i-1]), int(pin[i])
		switch {
		case isDigit(rune(a)) && isDigit(rune(b)):
			if (a-'0'+step+10)%10 != b-'0' {
				return false
			}
		case isUpper(rune(a)) && isUpper(rune(b)):
			if a+step != b {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// eras are the Japanese eras with their first day (Gregorian), newest first.
var eras = []struct {
	name  string
	start time.Time
}{
	{"Reiwa", time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC)},
	{"Heisei", time.Date(1989, 1, 8, 0, 0, 0, 0, time.UTC)},
	{"Showa", time.Date(1926, 12, 25, 0, 0, 0, 0, time.UTC)},
	{"Taisho", time.Date(1912, 7, 30, 0, 0, 0, 0, time.UTC)},
	{"Meiji", time.Date(1868, 10, 23, 0, 0, 0, 0, time.UTC)},
}

// EraYear returns the Japanese era year of t (the first year, gannen, = 1), or 0 before Meiji.
func EraYear(t time.Time) int {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	for _, e := range eras {
		if !d.Before(e.start) {
			return d.Year() - e.start.Year() + 1
		}
	}
	return 0
}

// birthdayForms returns the digit strings derived from the birth date that a guesser tries.
func birthdayForms(b time.Time) (long, short []string) {
	y, m, d := b.Year(), int(b.Month()), b.Day()
	yyyy := fmt.Sprintf("%04d", y)
	yy := fmt.Sprintf("%02d", y%100)
	mm, dd := fmt.Sprintf("%02d", m), fmt.Sprintf("%02d", d)
	long = []string{yyyy + mm + dd, yy + mm + dd, mm + dd + yyyy, dd + mm + yyyy, mm + dd + yy, dd + mm + yy}
	short = []string{mm + dd, dd + mm, yyyy, yy + mm}
	if ey := EraYear(b); ey > 0 {
		e := fmt.Sprintf("%02d", ey)
		long = append(long, e+mm+dd)
		short = append(short, e+mm)
	}
	return long, short
}

// fromBirthday: a user-auth PIN equal to any 4-digit form; a signature PIN whose digits contain
// a 6- or 8-digit form, or whose digits are exactly a 4-digit form (e.g. "A0315B").
func fromBirthday(kind Kind, pin string, b time.Time) bool {
	long, short := birthdayForms(b)
	digits := strings.Map(func(r rune) rune {
		if isDigit(r) {
			return r
		}
		return -1
	}, pin)
	for _, s := range short {
		if digits == s {
			return true
		}
	}
	if kind == UserAuth {
		return false
	}
	for _, l := range long {
		if strings.Contains(digits, l) {
			return true
		}
	}
	return false
}
