package issuance

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"time"
	"unicode/utf8"

	"madoguchi/jpki/wire"
)

// BasicApplicantChecker is a minimal ApplicantChecker used until
// ca-server/applicant is wired: required fields, real calendar dates, an
// 11-digit resident-record code, and the person hash HMAC-SHA256(Key, code).
//
// The CA keeps only the keyed hash so it can enforce "one certificate of each
// type per person" without holding the code (DESIGN "Issuance"; TS Art.
// 31(iii)).
type BasicApplicantChecker struct {
	Key []byte // at least 32 bytes; secret of the CA
}

var _ ApplicantChecker = BasicApplicantChecker{}

const dateLayout = "2006-01-02"

// Check validates a.
func (c BasicApplicantChecker) Check(a wire.Applicant, now time.Time) (Applicant, error) {
	if len(c.Key) < 32 {
		return Applicant{}, wire.Wrap(wire.CodeInternal, errors.New("issuance: person-hash key shorter than 32 bytes"), "server misconfigured")
	}
	bad := func(format string, args ...any) (Applicant, error) {
		return Applicant{}, wire.Errorf(wire.CodeInvalidApplicant, format, args...)
	}
	if len(a.ResidentCode) != 11 || !allDigits(a.ResidentCode) {
		return bad("resident_code must be 11 digits")
	}
	for name, v := range map[string]string{"name": a.Name, "address": a.Address} {
		if v == "" || !utf8.ValidString(v) || utf8.RuneCountInString(v) > 200 {
			return bad("%s must be 1 to 200 characters", name)
		}
	}
	if a.Sex != "1" && a.Sex != "2" && a.Sex != "9" {
		return bad("sex must be \"1\", \"2\" or \"9\"")
	}
	birth, err := parseDate(a.BirthDate)
	if err != nil {
		return bad("birth_date %q is not a calendar date (YYYY-MM-DD)", a.BirthDate)
	}
	if birth.After(now) {
		return bad("birth_date %s is in the future", a.BirthDate)
	}
	expiry, err := parseDate(a.CardExpiry)
	if err != nil {
		return bad("card_expiry %q is not a calendar date (YYYY-MM-DD)", a.CardExpiry)
	}
	if !expiry.After(now) {
		return bad("card_expiry %s has passed", a.CardExpiry)
	}
	m := hmac.New(sha256.New, c.Key)
	m.Write([]byte(a.ResidentCode))
	return Applicant{PersonHash: m.Sum(nil), BirthDate: birth, CardExpiry: expiry, Data: a}, nil
}

// parseDate accepts only real dates: time.Parse refuses 2025-02-30.
func parseDate(s string) (time.Time, error) {
	return time.Parse(dateLayout, s)
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
