package issuer

import (
	"errors"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Tokyo without relying on the host's zoneinfo

	"madoguchi/ca-server/applicant"
)

func jst(y int, m time.Month, d, hh, mm, ss int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, 0, applicant.JST)
}

func endOf(y int, m time.Month, d int) time.Time { return jst(y, m, d, 23, 59, 59) }

func TestNotAfter(t *testing.T) {
	d := applicant.NewDate
	card := d(2099, 12, 31)
	cases := []struct {
		name    string
		issued  time.Time
		birth   applicant.Date
		card    applicant.Date
		renew   bool
		current applicant.Date
		want    time.Time
		wantErr error
	}{
		{"ordinary: 5th birthday after issuance", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), card, false, applicant.Date{}, endOf(2030, 5, 14), nil},
		{"birthday the day after issuance counts", jst(2025, 5, 13, 12, 0, 0), d(1990, 5, 14), card, false, applicant.Date{}, endOf(2029, 5, 14), nil},
		{"birthday on issuance day does not count", jst(2025, 5, 14, 9, 0, 0), d(1990, 5, 14), card, false, applicant.Date{}, endOf(2030, 5, 14), nil},
		{"issued on the day of birth (newborn)", jst(2025, 5, 14, 9, 0, 0), d(2025, 5, 14), card, false, applicant.Date{}, endOf(2030, 5, 14), nil},
		{"29 Feb birth, issued 28 Feb of a leap year", jst(2024, 2, 28, 10, 0, 0), d(2000, 2, 29), card, false, applicant.Date{}, endOf(2028, 2, 29), nil},
		{"29 Feb birth, issued on 29 Feb", jst(2024, 2, 29, 10, 0, 0), d(2000, 2, 29), card, false, applicant.Date{}, endOf(2029, 2, 28), nil},
		{"29 Feb birth, issued 28 Feb of a common year (birthday)", jst(2025, 2, 28, 10, 0, 0), d(2000, 2, 29), card, false, applicant.Date{}, endOf(2030, 2, 28), nil},
		{"29 Feb birth, issued 27 Feb of a common year", jst(2025, 2, 27, 10, 0, 0), d(2000, 2, 29), card, false, applicant.Date{}, endOf(2029, 2, 28), nil},
		{"29 Feb birth, 5th birthday in a leap year", jst(2023, 3, 1, 10, 0, 0), d(2000, 2, 29), card, false, applicant.Date{}, endOf(2028, 2, 29), nil},
		{"29 Feb birth, 5th birthday in 2100 (not leap)", jst(2095, 3, 1, 10, 0, 0), d(2000, 2, 29), d(2199, 1, 1), false, applicant.Date{}, endOf(2100, 2, 28), nil},
		{"card expires before the 5th birthday", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), d(2027, 3, 31), false, applicant.Date{}, endOf(2027, 3, 31), nil},
		{"card expires on the 5th birthday", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), d(2030, 5, 14), false, applicant.Date{}, endOf(2030, 5, 14), nil},
		{"card expires the day after", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), d(2030, 5, 15), false, applicant.Date{}, endOf(2030, 5, 14), nil},
		{"card expires today", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), d(2025, 6, 10), false, applicant.Date{}, endOf(2025, 6, 10), nil},
		{"card expired yesterday", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), d(2025, 6, 9), false, applicant.Date{}, time.Time{}, ErrCardExpired},
		{"early renewal: 6th birthday", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), card, true, d(2025, 8, 1), endOf(2031, 5, 14), nil},
		{"early renewal, card still caps", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), d(2030, 12, 31), true, d(2025, 8, 1), endOf(2030, 12, 31), nil},
		{"early renewal, current ends today", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), card, true, d(2025, 6, 10), endOf(2031, 5, 14), nil},
		{"early renewal, 2 months 30 days left", jst(2025, 5, 2, 12, 0, 0), d(1990, 5, 14), card, true, d(2025, 8, 1), endOf(2030, 5, 14), nil},
		{"early renewal, exactly 3 months left", jst(2025, 5, 1, 12, 0, 0), d(1990, 5, 14), card, true, d(2025, 8, 1), time.Time{}, ErrNotInRenewalWindow},
		{"early renewal, 3 months from 30 Nov ends 28 Feb", jst(2025, 11, 30, 12, 0, 0), d(1990, 5, 14), card, true, d(2026, 2, 28), time.Time{}, ErrNotInRenewalWindow},
		{"early renewal, 27 Feb inside window from 30 Nov", jst(2025, 11, 30, 12, 0, 0), d(1990, 5, 14), card, true, d(2026, 2, 27), endOf(2031, 5, 14), nil},
		{"early renewal, current already expired", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), card, true, d(2025, 6, 9), time.Time{}, ErrNotInRenewalWindow},
		{"early renewal, 6 months left", jst(2025, 6, 10, 12, 0, 0), d(1990, 5, 14), card, true, d(2025, 12, 10), time.Time{}, ErrNotInRenewalWindow},
		// Day boundaries: the day of issuance is the JST day.
		{"00:00:00 JST on the birthday is the birthday", time.Date(2025, 5, 13, 15, 0, 0, 0, time.UTC), d(1990, 5, 14), card, false, applicant.Date{}, endOf(2030, 5, 14), nil},
		{"23:59:59 JST the day before is the day before", time.Date(2025, 5, 13, 14, 59, 59, 0, time.UTC), d(1990, 5, 14), card, false, applicant.Date{}, endOf(2029, 5, 14), nil},
		{"instant given in Los Angeles time", time.Date(2025, 5, 13, 8, 0, 0, 0, mustZone("America/Los_Angeles")), d(1990, 5, 14), card, false, applicant.Date{}, endOf(2030, 5, 14), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &applicant.Applicant{BirthDate: tc.birth, CardExpiry: tc.card, EarlyRenewal: tc.renew, CurrentExpiry: tc.current}
			got, err := NotAfter(tc.issued, a)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("NotAfter = %v, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Fatalf("NotAfter = %v, want %v", got.In(applicant.JST), tc.want)
			}
		})
	}
}

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// The instant is 23:59:59 in Asia/Tokyo and 14:59:59 UTC, and the fixed JST
// zone agrees with the IANA zone at the day boundary.
func TestNotAfterInstantInTokyo(t *testing.T) {
	tokyo := mustZone("Asia/Tokyo")
	a := &applicant.Applicant{BirthDate: applicant.NewDate(1990, 5, 14), CardExpiry: applicant.NewDate(2099, 1, 1)}
	got, err := NotAfter(time.Date(2025, 6, 10, 0, 0, 0, 0, tokyo), a)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2030, 5, 14, 23, 59, 59, 0, tokyo); !got.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", got, want)
	}
	if u := got.UTC(); u.Hour() != 14 || u.Minute() != 59 || u.Second() != 59 || u.Day() != 14 {
		t.Errorf("UTC = %v", u)
	}
	// One second later it is the next day in Tokyo.
	if next := got.Add(time.Second).In(tokyo); next.Day() != 15 || next.Hour() != 0 {
		t.Errorf("next second in Tokyo = %v", next)
	}
	for _, inst := range []time.Time{
		time.Date(1990, 5, 13, 14, 59, 59, 0, time.UTC),
		time.Date(1990, 5, 13, 15, 0, 0, 0, time.UTC),
		time.Date(2030, 12, 31, 15, 0, 0, 0, time.UTC),
	} {
		if applicant.DateOf(inst) != applicant.DateOf(inst.In(tokyo)) || inst.In(tokyo).Day() != inst.In(applicant.JST).Day() {
			t.Errorf("JST and Asia/Tokyo disagree at %v", inst)
		}
	}
}
