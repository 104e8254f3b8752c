package applicant

import (
	"fmt"
	"strconv"
	"time"
)

// JST is Japan Standard Time (UTC+9). Japan has kept no daylight saving time
// since 1951, so a fixed zone equals Asia/Tokyo for every date a resident
// record or a card can carry, and needs no tzdata on the server.
var JST = time.FixedZone("JST", 9*60*60)

// Minimum and maximum years a Date may carry. Resident records (住民票) start
// their era codes with 明治 (1868); 9999 is the largest year X.509
// GeneralizedTime can express (RFC 5280 §4.1.2.5.2).
const (
	MinYear = 1868
	MaxYear = 9999
)

// Date is a civil calendar date with no time of day and no zone: a date of
// birth, or the expiry date printed on a card. Dates in the JPKI sources are
// Japanese calendar days; convert an instant with DateOf, which uses JST.
//
// The zero Date is not valid; Valid reports whether a Date names a real day.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the JST calendar date of the instant t.
func DateOf(t time.Time) Date {
	y, m, d := t.In(JST).Date()
	return Date{Year: y, Month: m, Day: d}
}

// NewDate returns the Date y-m-d without checking it; use Valid.
func NewDate(y int, m time.Month, d int) Date { return Date{Year: y, Month: m, Day: d} }

// ParseDate parses "YYYY-MM-DD" or "YYYYMMDD". It returns an error wrapping
// ErrInvalidDate when s has another shape or names no real day (e.g. 2023-02-29).
func ParseDate(s string) (Date, error) {
	var ys, ms, ds string
	switch {
	case len(s) == 10 && s[4] == '-' && s[7] == '-':
		ys, ms, ds = s[0:4], s[5:7], s[8:10]
	case len(s) == 8:
		ys, ms, ds = s[0:4], s[4:6], s[6:8]
	default:
		return Date{}, fmt.Errorf("applicant: date %q: %w", s, ErrInvalidDate)
	}
	y, ok1 := digits(ys)
	m, ok2 := digits(ms)
	d, ok3 := digits(ds)
	dt := Date{Year: y, Month: time.Month(m), Day: d}
	if !ok1 || !ok2 || !ok3 || !dt.Valid() {
		return Date{}, fmt.Errorf("applicant: date %q: %w", s, ErrInvalidDate)
	}
	return dt, nil
}

func digits(s string) (int, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// Valid reports whether d is a real Gregorian day between MinYear and MaxYear.
func (d Date) Valid() bool {
	if d.Year < MinYear || d.Year > MaxYear || d.Month < time.January || d.Month > time.December {
		return false
	}
	return d.Day >= 1 && d.Day <= DaysIn(d.Year, d.Month)
}

// IsZero reports whether d is the zero Date (an absent field).
func (d Date) IsZero() bool { return d == Date{} }

// String formats d as "YYYY-MM-DD".
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// Compact formats d as "YYYYMMDD", the form used inside certificates.
func (d Date) Compact() string { return fmt.Sprintf("%04d%02d%02d", d.Year, int(d.Month), d.Day) }

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Date) Compare(e Date) int {
	switch {
	case d.Year != e.Year:
		return sign(d.Year - e.Year)
	case d.Month != e.Month:
		return sign(int(d.Month) - int(e.Month))
	default:
		return sign(d.Day - e.Day)
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// Before reports whether d is strictly before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is strictly after e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

// StartJST returns 00:00:00 JST of d.
func (d Date) StartJST() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, JST)
}

// EndJST returns the last whole second of d in JST (23:59:59 JST), the
// inclusive end of a period that runs "until d" (民法第141条: a period ends
// when its last day ends; RFC 5280 §4.1.2.5: notAfter is inclusive and has
// one-second precision).
func (d Date) EndJST() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 23, 59, 59, 0, JST)
}

// AddMonthsClamped returns the day n calendar months after d; when that month
// has no such day it returns the month's last day (民法第143条第2項).
func (d Date) AddMonthsClamped(n int) Date {
	total := d.Year*12 + int(d.Month) - 1 + n
	y, m := total/12, time.Month(total%12+1)
	day := d.Day
	if last := DaysIn(y, m); day > last {
		day = last
	}
	return Date{Year: y, Month: m, Day: day}
}

// MarshalText encodes d as "YYYY-MM-DD".
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText accepts what ParseDate accepts.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// IsLeap reports whether y is a Gregorian leap year.
func IsLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// DaysIn returns the number of days in month m of year y.
func DaysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if IsLeap(y) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// BirthdayIn returns the holder's birthday in year y. A person born on 29
// February has their birthday on 28 February in a common year (DOMAIN §3:
// 年齢計算ニ関スル法律 with 民法第143条).
func (d Date) BirthdayIn(y int) Date {
	if d.Month == time.February && d.Day == 29 && !IsLeap(y) {
		return Date{Year: y, Month: time.February, Day: 28}
	}
	return Date{Year: y, Month: d.Month, Day: d.Day}
}
