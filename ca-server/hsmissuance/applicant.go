package hsmissuance

import (
	"context"
	"errors"
	"time"

	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/issuance"
	"madoguchi/jpki"
	"madoguchi/jpki/wire"
)

// ToApplicant converts the wire form to ca-server/applicant's, without
// validating it (Validate does). Errors are *wire.Error with
// CodeInvalidApplicant and name the field, never its value.
func ToApplicant(w wire.Applicant) (applicant.Applicant, error) {
	bad := func(err error) (applicant.Applicant, error) {
		return applicant.Applicant{}, wire.Wrap(wire.CodeInvalidApplicant, err, "%s", err.Error())
	}
	a := applicant.Applicant{
		Name:          applicant.Text{Value: w.Name},
		NameKana:      w.NameKana,
		Address:       applicant.Text{Value: w.Address},
		FormerSurname: applicant.Text{Value: w.FormerSurname},
		Alias:         applicant.Text{Value: w.Alias},
		ResidentCode:  applicant.ResidentCode(w.ResidentCode),
	}
	var err error
	for _, f := range []struct {
		field     string
		text      *applicant.Text
		positions string
	}{
		{applicant.FieldName, &a.Name, w.NameSubstitutes},
		{applicant.FieldAddress, &a.Address, w.AddressSubstitutes},
	} {
		if f.positions == "" {
			continue
		}
		if f.text.Substitutes, err = substitutes(f.positions, f.text.Value); err != nil {
			fe := &applicant.FieldError{Field: f.field, Kind: applicant.ErrSubstitutePosition}
			var pe interface{ Position() int }
			if errors.As(err, &pe) {
				fe.Position = pe.Position()
			}
			return bad(fe)
		}
	}
	if w.Sex != "" {
		if a.Sex, err = applicant.ParseSex(w.Sex); err != nil {
			return bad(&applicant.FieldError{Field: applicant.FieldSex, Kind: applicant.ErrUnknownSexCode})
		}
	}
	if w.BirthDate != "" {
		if a.BirthDate, err = applicant.ParseDate(w.BirthDate); err != nil {
			return bad(&applicant.FieldError{Field: applicant.FieldBirthDate, Kind: applicant.ErrInvalidDate})
		}
	}
	if w.CardExpiry != "" {
		if a.CardExpiry, err = applicant.ParseDate(w.CardExpiry); err != nil {
			return bad(&applicant.FieldError{Field: applicant.FieldCardExpiry, Kind: applicant.ErrInvalidDate})
		}
	}
	return a, nil
}

// substitutes parses a position string against the substituted text: the
// count must equal the text's characters, only '0'/'1', and every '1' at a
// character a substitute may be (jpki.MaySubstitute: a JIS X 0208 kanji or
// kana, never a space, digit, hyphen or a 外字 itself). The CA cannot know
// which register character was replaced, but it can refuse positions that
// cannot be true.
func substitutes(positions, text string) ([]int, error) {
	subs, err := jpki.ParsePositions(positions, text)
	if err != nil {
		return nil, err
	}
	if err := jpki.CheckSubstitutes(text, subs); err != nil {
		return nil, err
	}
	return subs, nil
}

// HMACTimeout bounds one person-key HMAC in the HSM (Check has no context).
const HMACTimeout = 30 * time.Second

// ApplicantChecker validates applicant data with ca-server/applicant and
// computes the person key as HMAC-SHA-256 under the ceremony's person-hash
// key inside the HSM, so the CA never holds the key and keeps only the hash
// of the resident-record code (TS Art. 31(iii)). Safe for concurrent use.
type ApplicantChecker struct {
	HSM *hsm.HSM
	Key hsm.Key // the PERSON-HASH HMAC key (ceremony.LabelPersonHash)
}

var _ issuance.ApplicantChecker = ApplicantChecker{}

// Check implements issuance.ApplicantChecker.
func (c ApplicantChecker) Check(w wire.Applicant, now time.Time) (issuance.Applicant, error) {
	a, err := ToApplicant(w)
	if err != nil {
		return issuance.Applicant{}, err
	}
	if err := a.Validate(now); err != nil {
		// FieldError texts name fields and kinds, never values.
		return issuance.Applicant{}, wire.Wrap(wire.CodeInvalidApplicant, err, "%s", err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), HMACTimeout)
	defer cancel()
	h, err := applicant.PersonKey(func(msg []byte) ([]byte, error) { return c.HSM.HMACSHA256(ctx, c.Key, msg) }, a.ResidentCode)
	if err != nil {
		var fe *applicant.FieldError
		if errors.As(err, &fe) {
			return issuance.Applicant{}, wire.Wrap(wire.CodeInvalidApplicant, err, "%s", err.Error())
		}
		return issuance.Applicant{}, wire.Wrap(wire.CodeUnavailable, err, "person key unavailable")
	}
	return issuance.Applicant{PersonHash: h[:], BirthDate: a.BirthDate.StartJST(), CardExpiry: a.CardExpiry.StartJST(), Data: w}, nil
}
