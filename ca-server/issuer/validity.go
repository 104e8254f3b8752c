package issuer

import (
	"fmt"
	"time"

	"madoguchi/ca-server/applicant"
)

// Birthdays counted by the validity rule (CPS §6.3.2.2 ①).
const (
	birthdaysOrdinary     = 5
	birthdaysEarlyRenewal = 6
	// renewalWindowMonths: early renewal applies while the current
	// certificate has less than three months left (CPS §6.3.2.2 ①).
	renewalWindowMonths = 3
)

// NotAfter returns the last instant of validity of a user certificate issued
// at issuedAt to applicant a, by CPS §6.3.2.2 (rule
// profile.ValidityHolderBirthdayOrCardExpiry): the earlier of
//
//	① the holder's 5th birthday after the day of issuance — the 6th when
//	  a.EarlyRenewal is set — and
//	② the card's expiry date a.CardExpiry.
//
// Days are Japanese calendar days (JST). "After the day of issuance" is
// exclusive: a birthday falling on the day of issuance is not counted
// (発行の日後). A person born on 29 February has their birthday on 28 February
// in a common year (DOMAIN §3). The period runs "until" that day inclusive,
// so the instant is the day's last second, 23:59:59 JST = 14:59:59 UTC
// (民法第141条: a period ends when its last day ends; RFC 5280 §4.1.2.5:
// notAfter is inclusive with one-second precision).
//
// Early renewal is allowed only inside the window: a.CurrentExpiry (the
// current certificate's last day) is not before the day of issuance and is
// before the day three calendar months after it (民法第143条: a month
// without the corresponding day ends on its last day); otherwise
// ErrNotInRenewalWindow. A card that has already expired gives
// ErrCardExpired.
//
// Preconditions: a.BirthDate and a.CardExpiry are valid dates (Validate).
func NotAfter(issuedAt time.Time, a *applicant.Applicant) (time.Time, error) {
	day := applicant.DateOf(issuedAt)
	n := birthdaysOrdinary
	if a.EarlyRenewal {
		if !InRenewalWindow(issuedAt, a.CurrentExpiry) {
			return time.Time{}, fmt.Errorf("%w: current certificate ends %v, issuance on %v", ErrNotInRenewalWindow, a.CurrentExpiry, day)
		}
		n = birthdaysEarlyRenewal
	}
	first := day.Year
	if !a.BirthDate.BirthdayIn(first).After(day) {
		first++
	}
	end := a.BirthDate.BirthdayIn(first + n - 1)
	if a.CardExpiry.Before(end) {
		end = a.CardExpiry
	}
	if end.Before(day) {
		return time.Time{}, fmt.Errorf("%w: card expired %v", ErrCardExpired, a.CardExpiry)
	}
	return end.EndJST(), nil
}

// InRenewalWindow reports whether a certificate whose last day (JST) is
// currentLastDay has less than three months left on the day of issuedAt
// and has not yet expired (CPS §6.3.2.2 ①: "発行を受けている利用者証明用電子
// 証明書の有効期間が満了する日までの期間が三月未満となった場合"): the last day
// is not before the day of issuance and is before the day three calendar
// months after it (民法第143条: a month without the corresponding day ends on
// its last day). The CA asks this of its own record of the person's current
// certificate (ca-server/issuance), so the 6th-birthday rule never rests on
// what a terminal claims.
func InRenewalWindow(issuedAt time.Time, currentLastDay applicant.Date) bool {
	day := applicant.DateOf(issuedAt)
	return !currentLastDay.Before(day) && currentLastDay.Before(day.AddMonthsClamped(renewalWindowMonths))
}
