package printout

import (
	"fmt"
	"time"
)

// Date is a civil date without time of day or zone, such as a date of birth.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// IsZero reports whether d is unset.
func (d Date) IsZero() bool { return d == Date{} }

func (d Date) valid() bool {
	if d.Year < 1 || d.Month < 1 || d.Month > 12 || d.Day < 1 {
		return false
	}
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Day() == d.Day
}

// era is one Japanese era (元号) with its first day.
type era struct {
	name  string
	first Date
}

// eras, newest first. The first days are those fixed by the era proclamations; before Meiji 6
// Japan used the lunisolar calendar, so earlier dates are printed in the Gregorian calendar only.
var eras = []era{
	{"令和", Date{2019, time.May, 1}},
	{"平成", Date{1989, time.January, 8}},
	{"昭和", Date{1926, time.December, 25}},
	{"大正", Date{1912, time.July, 30}},
	{"明治", Date{1873, time.January, 1}},
}

func (d Date) before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// wareki returns d in the Japanese calendar ("令和8年1月15日", "平成元年1月8日"), or "" before
// Meiji 6.
func (d Date) wareki() string {
	for _, e := range eras {
		if d.before(e.first) {
			continue
		}
		y := d.Year - e.first.Year + 1
		if e.name == "明治" {
			y = d.Year - 1867
		}
		ys := fmt.Sprint(y)
		if y == 1 {
			ys = "元"
		}
		return fmt.Sprintf("%s%s年%d月%d日", e.name, ys, int(d.Month), d.Day)
	}
	return ""
}

// format prints a civil date in both calendars: "昭和60年4月1日（1985-04-01）".
func (d Date) format() string {
	iso := fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
	if w := d.wareki(); w != "" {
		return w + "（" + iso + "）"
	}
	return iso
}

func dateOf(t time.Time) Date {
	t = t.In(jst)
	return Date{t.Year(), t.Month(), t.Day()}
}

// formatInstant prints an instant in Japan Standard Time, where the holder lives and where the
// certificate's validity is counted (CPS §6.3.2.2 counts in calendar days in Japan):
// "令和8年1月15日（2026-01-15）14:03:05 JST".
func formatInstant(t time.Time) string {
	return dateOf(t).format() + " " + t.In(jst).Format("15:04:05") + " JST"
}

// formatDay prints only the JST calendar day of an instant.
func formatDay(t time.Time) string { return dateOf(t).format() }
