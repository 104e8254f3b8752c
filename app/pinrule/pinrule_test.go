package pinrule

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/assets/translations"
)

func TestCheck(t *testing.T) {
	birth := time.Date(1985, 3, 15, 0, 0, 0, 0, time.UTC) // 昭和60年
	leap := time.Date(2004, 2, 29, 0, 0, 0, 0, time.UTC)  // 平成16年
	cases := []struct {
		kind    Kind
		pin     string
		confirm string // "" means same as pin
		birth   time.Time
		want    Reason
	}{
		// user-auth format
		{UserAuth, "4829", "", birth, 0},
		{UserAuth, "482", "", birth, ReasonFourDigits},
		{UserAuth, "48291", "", birth, ReasonFourDigits},
		{UserAuth, "48a9", "", birth, ReasonFourDigits},
		{UserAuth, "４８２９", "", birth, ReasonFourDigits}, // full-width digits
		// signature format
		{Signature, "K7PX2M", "", birth, 0},
		{Signature, "K7PX2", "", birth, ReasonLength},
		{Signature, "K7PX2MK7PX2MK7PX2", "", birth, ReasonLength},
		{Signature, "k7px2m", "", birth, ReasonCharset},
		{Signature, "K7PX-2M", "", birth, ReasonCharset},
		{Signature, "KPXQMZ", "", birth, ReasonLetterAndDigit},
		{Signature, "738201", "", birth, ReasonLetterAndDigit},
		// all same
		{UserAuth, "1111", "", birth, ReasonAllSame},
		{UserAuth, "0000", "", birth, ReasonAllSame},
		// runs
		{UserAuth, "1234", "", birth, ReasonSequence},
		{UserAuth, "9876", "", birth, ReasonSequence},
		{UserAuth, "7890", "", birth, ReasonSequence},
		{UserAuth, "3210", "", birth, ReasonSequence},
		{UserAuth, "1235", "", birth, 0},
		// repeated pattern
		{UserAuth, "1212", "", birth, ReasonRepeated},
		{UserAuth, "4545", "", birth, ReasonRepeated},
		{Signature, "AB12AB12", "", birth, ReasonRepeated},
		{Signature, "A1A1A1", "", birth, ReasonRepeated},
		// birthday (1985-03-15, 昭和60年)
		{UserAuth, "0315", "", birth, ReasonBirthday},
		{UserAuth, "1503", "", birth, ReasonBirthday},
		{UserAuth, "1985", "", birth, ReasonBirthday},
		{UserAuth, "8503", "", birth, ReasonBirthday},
		{UserAuth, "6003", "", birth, ReasonBirthday}, // era year + month
		{UserAuth, "0315", "", time.Time{}, 0},        // no birth date known
		{Signature, "A19850315", "", birth, ReasonBirthday},
		{Signature, "X850315", "", birth, ReasonBirthday},
		{Signature, "S600315", "", birth, ReasonBirthday}, // 昭和60年3月15日
		{Signature, "MAR0315", "", birth, ReasonBirthday},
		{Signature, "Q8Z0315K", "", birth, 0}, // digits 80315 are no birth form
		// 29 February
		{UserAuth, "0229", "", leap, ReasonBirthday},
		{Signature, "H160229", "", leap, ReasonBirthday},
		// mismatch
		{UserAuth, "4829", "4828", birth, ReasonMismatch},
		{Signature, "K7PX2M", "K7PX2N", birth, ReasonMismatch},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s/%s", c.kind, c.pin)
		t.Run(name, func(t *testing.T) {
			confirm := c.confirm
			if confirm == "" {
				confirm = c.pin
			}
			err := Check(c.kind, New(c.pin), New(confirm), Applicant{BirthDate: c.birth})
			if c.want == 0 {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Reason != c.want {
				t.Fatalf("Check = %v, want reason %d", err, c.want)
			}
			if !errors.Is(err, apperr.WeakPIN) {
				t.Fatal("error is not apperr.WeakPIN")
			}
			if strings.Contains(err.Error(), c.pin) {
				t.Fatalf("error %q reveals the PIN", err)
			}
			if translations.ErrorText("ja", pe) == "" {
				t.Fatal("no Japanese message")
			}
		})
	}
}

func TestPINNeverPrints(t *testing.T) {
	p := New("K7PX2M")
	holder := struct {
		Name string
		P    PIN
	}{"x", p}
	for _, s := range []string{
		fmt.Sprint(p), fmt.Sprintf("%v %s %q %x %X %d %+v %#v", p, p, p, p, p, p, p, p),
		fmt.Sprintf("%v %+v %#v", holder, holder, holder), p.String(), p.GoString(),
	} {
		if strings.Contains(s, "K7PX2M") || strings.Contains(s, "4b37") || !strings.Contains(s, "****") {
			t.Fatalf("formatted PIN leaks or is not masked: %q", s)
		}
	}
	b, _ := json.Marshal(holder)
	if strings.Contains(string(b), "K7PX2M") {
		t.Fatalf("json leaks PIN: %s", b)
	}
	if p.Reveal() != "K7PX2M" || p.Len() != 6 {
		t.Fatal("Reveal/Len wrong")
	}
}

func TestEraYear(t *testing.T) {
	for _, c := range []struct {
		d    time.Time
		want int
	}{
		{time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC), 1},
		{time.Date(2019, 4, 30, 0, 0, 0, 0, time.UTC), 31},
		{time.Date(1989, 1, 7, 0, 0, 0, 0, time.UTC), 64},
		{time.Date(1989, 1, 8, 0, 0, 0, 0, time.UTC), 1},
		{time.Date(1985, 3, 15, 0, 0, 0, 0, time.UTC), 60},
	} {
		if got := EraYear(c.d); got != c.want {
			t.Errorf("EraYear(%s) = %d, want %d", c.d.Format("2006-01-02"), got, c.want)
		}
	}
}
