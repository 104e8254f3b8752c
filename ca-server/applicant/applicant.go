// Package applicant holds the applicant data the CA receives from a counter
// terminal — the items of the resident-record file the CS application makes
// (TS Art. 3(1)) — checks them, and derives the CA's person key.
//
// Scope: data and validation only; no storage, no I/O. Values are plain data
// and safe to share between goroutines as long as nobody mutates them.
//
// Personal data: names, dates and addresses are personal data and never
// appear in error texts. The resident-record code (住民票コード) is accepted
// only so that PersonKey can hash it; the CA keeps the hash, never the code
// (TS Art. 31(iii), DOMAIN §9), and ResidentCode prints as "[redacted]".
package applicant

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Length limits in Unicode code points. No JPKI source fixes them; they are
// Madoguchi's choice, sized above the longest realistic resident-record
// values (foreign residents' romanised names, addresses with 方書) while
// bounding the size of a certificate.
const (
	MaxNameLength          = 100
	MaxNameKanaLength      = 200
	MaxAddressLength       = 200
	MaxFormerSurnameLength = 50
	MaxAliasLength         = 100
)

// Field names used in FieldError.Field.
const (
	FieldName          = "name"
	FieldNameKana      = "nameKana"
	FieldBirthDate     = "birthDate"
	FieldSex           = "sex"
	FieldAddress       = "address"
	FieldFormerSurname = "formerSurname"
	FieldAlias         = "alias"
	FieldResidentCode  = "residentCode"
	FieldCardExpiry    = "cardExpiry"
	FieldCurrentExpiry = "currentCertificateExpiry"
)

// Sex is the resident record's 男女の別 (住民基本台帳法第7条第3号), coded as in
// ISO 5218 and the resident-register network: 1 male, 2 female. The register
// records only these two values, so ISO 5218's 0 (not known) and 9 (not
// applicable) are rejected with ErrUnknownSexCode; the zero value means "not
// given" (ErrEmpty).
type Sex uint8

// Sex codes.
const (
	SexMale   Sex = 1
	SexFemale Sex = 2
)

// Valid reports whether s is a known code.
func (s Sex) Valid() bool { return s == SexMale || s == SexFemale }

// Code returns the one-digit code ("1", "2") used inside certificates.
func (s Sex) Code() string { return fmt.Sprintf("%d", uint8(s)) }

// ParseSex parses a one-digit sex code.
func ParseSex(code string) (Sex, error) {
	switch code {
	case "1":
		return SexMale, nil
	case "2":
		return SexFemale, nil
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownSexCode, code)
}

// Text is a name or address as recorded, with the positions of substitute
// characters (代替文字). When the register's character has no code in the
// system's character set, a substitute stands in its place: for names the
// applicant chooses it (a similar character or the kana reading), for
// addresses it is fixed in advance; either way the positions are recorded in
// the certificate (R02 II-2-5(4)(5)).
type Text struct {
	Value string
	// Substitutes are the 0-based code-point indexes into Value of the
	// substitute characters, strictly ascending. Code points, not bytes or
	// UTF-16 units, so a non-BMP character such as 𠮷 counts once.
	Substitutes []int
}

// ResidentCode is the 11-digit resident-record code (住民票コード). It formats
// as "[redacted]" under every fmt verb so that it can never reach a log.
type ResidentCode string

// Format implements fmt.Formatter.
func (ResidentCode) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// Applicant is one applicant's data from the resident-record file.
type Applicant struct {
	Name     Text   // 氏名, required
	NameKana string // 氏名の振り仮名; optional: kept for the counter, never put in a certificate (TS Art. 11 lists only 氏名, 出生の年月日, 男女の別, 住所)
	// BirthDate is 出生の年月日, required.
	BirthDate Date
	Sex       Sex  // 男女の別, required
	Address   Text // 住所, required
	// FormerSurname is 旧氏, given when recorded on the resident record of a
	// person whose surname changed (TS Art. 3(1)).
	FormerSurname Text
	// Alias is 通称, given when recorded on a foreign resident's record
	// (TS Art. 3(1)). 旧氏 comes from the family register, which foreign
	// residents do not have, so at most one of FormerSurname and Alias is set.
	Alias Text
	// ResidentCode is used only to compute PersonKey; drop it afterwards.
	ResidentCode ResidentCode
	// CardExpiry is the expiry date of the card the certificate goes on; the
	// certificate ends no later than this day (CPS §6.3.2.2 ②).
	CardExpiry Date
	// EarlyRenewal marks a renewal while the current certificate has less
	// than three months left; the new certificate then runs to the 6th
	// birthday instead of the 5th (CPS §6.3.2.2 ①). CurrentExpiry is that
	// current certificate's last day (JST) and is required exactly when
	// EarlyRenewal is set; the issuer checks the three-month window.
	EarlyRenewal  bool
	CurrentExpiry Date
}

// Validate checks every field against the calendar day of now in JST and
// returns all failures joined (errors.Join), each a *FieldError, or nil. It
// does not modify a.
func (a *Applicant) Validate(now time.Time) error {
	today := DateOf(now)
	var errs []error
	add := func(e *FieldError) {
		if e != nil {
			errs = append(errs, e)
		}
	}

	add(checkText(FieldName, a.Name, MaxNameLength, true))
	add(checkText(FieldNameKana, Text{Value: a.NameKana}, MaxNameKanaLength, false))

	switch {
	case a.BirthDate.IsZero():
		add(fieldErr(FieldBirthDate, ErrEmpty))
	case !a.BirthDate.Valid():
		add(fieldErr(FieldBirthDate, ErrInvalidDate))
	case a.BirthDate.After(today):
		add(fieldErr(FieldBirthDate, ErrFutureBirthDate))
	}

	switch {
	case a.Sex == 0:
		add(fieldErr(FieldSex, ErrEmpty))
	case !a.Sex.Valid():
		add(fieldErr(FieldSex, ErrUnknownSexCode))
	}

	add(checkText(FieldAddress, a.Address, MaxAddressLength, true))
	add(checkText(FieldFormerSurname, a.FormerSurname, MaxFormerSurnameLength, false))
	add(checkText(FieldAlias, a.Alias, MaxAliasLength, false))
	if a.FormerSurname.Value != "" && a.Alias.Value != "" {
		add(fieldErr(FieldAlias, ErrFormerSurnameAndAlias))
	}

	if err := checkResidentCode(a.ResidentCode); err != nil {
		add(err)
	}

	switch {
	case a.CardExpiry.IsZero():
		add(fieldErr(FieldCardExpiry, ErrEmpty))
	case !a.CardExpiry.Valid():
		add(fieldErr(FieldCardExpiry, ErrInvalidDate))
	case a.CardExpiry.Before(today):
		add(fieldErr(FieldCardExpiry, ErrCardExpired))
	}

	switch {
	case a.EarlyRenewal && a.CurrentExpiry.IsZero():
		add(fieldErr(FieldCurrentExpiry, ErrRenewalWithoutExpiry))
	case !a.EarlyRenewal && !a.CurrentExpiry.IsZero():
		add(fieldErr(FieldCurrentExpiry, ErrExpiryWithoutRenewal))
	case a.EarlyRenewal && !a.CurrentExpiry.Valid():
		add(fieldErr(FieldCurrentExpiry, ErrInvalidDate))
	}
	return errors.Join(errs...)
}

func checkResidentCode(c ResidentCode) *FieldError {
	if c == "" {
		return fieldErr(FieldResidentCode, ErrEmpty)
	}
	if len(c) != 11 {
		return fieldErr(FieldResidentCode, ErrInvalidResidentCode)
	}
	for i := 0; i < len(c); i++ {
		if c[i] < '0' || c[i] > '9' {
			return fieldErr(FieldResidentCode, ErrInvalidResidentCode)
		}
	}
	return nil
}

// checkText checks encoding, characters, length and substitute positions.
// Empty optional text must carry no substitutes.
func checkText(field string, t Text, limit int, required bool) *FieldError {
	if t.Value == "" {
		if required {
			return fieldErr(field, ErrEmpty)
		}
		if len(t.Substitutes) > 0 {
			e := fieldErr(field, ErrSubstitutePosition)
			e.Position = t.Substitutes[0]
			return e
		}
		return nil
	}
	if !utf8.ValidString(t.Value) {
		e := fieldErr(field, ErrInvalidUTF8)
		for i := 0; i < len(t.Value); {
			r, size := utf8.DecodeRuneInString(t.Value[i:])
			if r == utf8.RuneError && size <= 1 {
				e.Position = i
				break
			}
			i += size
		}
		return e
	}
	n := 0
	for _, r := range t.Value {
		if kind := characterFault(r); kind != nil {
			e := fieldErr(field, kind)
			e.Position, e.Rune = n, r
			return e
		}
		n++
	}
	if n > limit {
		e := fieldErr(field, ErrFieldTooLong)
		e.Limit, e.Length = limit, n
		return e
	}
	prev := -1
	for _, p := range t.Substitutes {
		if p <= prev || p >= n {
			e := fieldErr(field, ErrSubstitutePosition)
			e.Position = p
			return e
		}
		prev = p
	}
	return nil
}

// characterFault returns ErrControlCharacter or ErrInvalidCharacter for a
// character that must not appear in a recorded name or address, or nil.
//
// Rejected: control characters (a sign of a broken file); format characters
// such as bidi overrides and zero-width spaces (they make two different
// strings look alike); private-use characters (vendor 外字 codes that mean
// nothing to a verifier — R02 II-2-5(4)(5) requires a substitute from the
// system's character set instead); surrogates and noncharacters; U+FFFD, the
// mark a decoder leaves for invalid UTF-8 or an unpaired UTF-16 surrogate
// (encoding/json turns "\ud842" into it); line and paragraph separators; and
// spaces other than U+0020 and the ideographic space U+3000. Characters
// outside JIS X 0208 and outside the BMP (𠮷) and ideographic variation
// selectors are accepted.
func characterFault(r rune) error {
	switch {
	case unicode.IsControl(r):
		return ErrControlCharacter
	case r == utf8.RuneError,
		unicode.Is(unicode.Cf, r),
		unicode.Is(unicode.Co, r),
		unicode.Is(unicode.Cs, r),
		unicode.Is(unicode.Zl, r),
		unicode.Is(unicode.Zp, r),
		isNoncharacter(r),
		unicode.Is(unicode.Zs, r) && r != ' ' && r != '\u3000':
		return ErrInvalidCharacter
	}
	return nil
}

func isNoncharacter(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}
