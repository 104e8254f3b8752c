package jpki

import (
	"fmt"
	"time"
)

// Era digits of the date of birth (profile 2.2: 1 明治, 2 大正, 3 昭和,
// 4 平成, 5 令和, 0 不明). The eight digits after the era are the Gregorian
// date, not the year within the era: 昭和55年2月17日 is "319800217" (public
// readers of real certificates render it so).
const (
	EraUnknown = 0
	EraMeiji   = 1
	EraTaisho  = 2
	EraShowa   = 3
	EraHeisei  = 4
	EraReiwa   = 5
)

// eraStarts are the first days of each era (Gregorian, JST): 大正 from
// 1912-07-30, 昭和 from 1926-12-25, 平成 from 1989-01-08 (昭和64年1月7日 is
// the last day of 昭和), 令和 from 2019-05-01 (平成31年4月30日 the last of
// 平成). 明治 is taken from 1868-01-25 (明治元年, 改元 1868-10-23, applied from
// the start of the year); earlier dates get EraUnknown.
var eraStarts = []struct {
	era     int
	y, m, d int
}{
	{EraReiwa, 2019, 5, 1},
	{EraHeisei, 1989, 1, 8},
	{EraShowa, 1926, 12, 25},
	{EraTaisho, 1912, 7, 30},
	{EraMeiji, 1868, 1, 25},
}

func dayNumber(y, m, d int) int { return y*10000 + m*100 + d }

// EraOf returns the era digit of a Gregorian date.
func EraOf(y, m, d int) int {
	n := dayNumber(y, m, d)
	for _, e := range eraStarts {
		if n >= dayNumber(e.y, e.m, e.d) {
			return e.era
		}
	}
	return EraUnknown
}

func validDate(y, m, d int) bool {
	if y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 {
		return false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	return t.Year() == y && int(t.Month()) == m && t.Day() == d
}

// BirthDate returns the "EYYYYMMDD" encoding of a Gregorian date, or an
// error for a date that does not exist.
func BirthDate(y, m, d int) (string, error) {
	if !validDate(y, m, d) {
		return "", fmt.Errorf("%w: %04d-%02d-%02d does not exist", ErrBadDate, y, m, d)
	}
	return fmt.Sprintf("%d%04d%02d%02d", EraOf(y, m, d), y, m, d), nil
}

// Date is a parsed date of birth.
type Date struct {
	Era              int
	Year, Month, Day int
}

// ParseBirthDate parses "EYYYYMMDD": nine ASCII digits, a real Gregorian
// date, and an era digit that is the date's era (or 0, 不明).
func ParseBirthDate(s string) (Date, error) {
	if len(s) != 9 {
		return Date{}, fmt.Errorf("%w: %d characters, want 9", ErrBadDate, len(s))
	}
	for i := 0; i < 9; i++ {
		if s[i] < '0' || s[i] > '9' {
			return Date{}, fmt.Errorf("%w: not digits", ErrBadDate)
		}
	}
	num := func(a, b int) int {
		n := 0
		for i := a; i < b; i++ {
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	d := Date{Era: num(0, 1), Year: num(1, 5), Month: num(5, 7), Day: num(7, 9)}
	if !validDate(d.Year, d.Month, d.Day) {
		return Date{}, fmt.Errorf("%w: no such date", ErrBadDate)
	}
	if d.Era != EraUnknown && d.Era != EraOf(d.Year, d.Month, d.Day) {
		return Date{}, fmt.Errorf("%w: era %d does not match %04d-%02d-%02d", ErrBadDate, d.Era, d.Year, d.Month, d.Day)
	}
	return d, nil
}
