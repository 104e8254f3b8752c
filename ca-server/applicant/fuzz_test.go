package applicant

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzParseDate: ParseDate agrees with time.Parse (the reference Gregorian calendar) on
// both shapes within MinYear..MaxYear, an accepted date re-formats to its input in the
// input's shape, and UnmarshalText(MarshalText(d)) gives d back.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"1990-05-14", "19900514", "2024-02-29", "2023-02-29", "1868-01-01", "1867-12-31",
		"9999-12-31", "0000-00-00", "2025-13-01", "2025-1-011", "+123-05-01", "1990/05/14", "１９９０-05-14", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		layout := ""
		switch {
		case len(s) == 10 && s[4] == '-' && s[7] == '-':
			layout = "2006-01-02"
		case len(s) == 8:
			layout = "20060102"
		}
		var refOK bool
		if layout != "" {
			ref, rerr := time.Parse(layout, s)
			refOK = rerr == nil && ref.Year() >= MinYear && ref.Year() <= MaxYear && ref.Format(layout) == s
			if refOK && err == nil && (ref.Year() != d.Year || ref.Month() != d.Month || ref.Day() != d.Day) {
				t.Fatalf("%q: parsed %v, time.Parse %v", s, d, ref)
			}
		}
		if (err == nil) != refOK {
			t.Fatalf("%q: ParseDate %v, time.Parse agrees: %v", s, err, refOK)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidDate) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !d.Valid() {
			t.Fatalf("%q parsed to an invalid %v", s, d)
		}
		if re := map[string]string{"2006-01-02": d.String(), "20060102": d.Compact()}[layout]; re != s {
			t.Fatalf("%q re-formats to %q", s, re)
		}
		b, _ := d.MarshalText()
		var back Date
		if err := back.UnmarshalText(b); err != nil || back != d {
			t.Fatalf("text round trip of %v: %v, %v", d, back, err)
		}
	})
}

// FuzzValidate: Validate (the CA's check of the applicant data a terminal sends) never
// modifies its input, reports only *FieldError values of the known kinds and never puts a
// field's value in an error text (personal data, DOMAIN §9); whatever it accepts meets the
// rules stated independently here: valid UTF-8, no control/format/private-use/surrogate
// character, length limits in code points, substitutes strictly ascending inside the text,
// 11-digit resident code, real dates with birth ≤ today ≤ card expiry.
func FuzzValidate(f *testing.F) {
	now := time.Date(2025, time.June, 10, 12, 0, 0, 0, JST)
	f.Add("𠮷田　髙子", "ヨシダ　タカコ", "東京都千代田区霞が関二丁目1番2号", "", "", "12345678901", []byte{1}, []byte{4, 6}, 1990, 5, 14, byte(2), 2034, 5, 14, false, 0, 0, 0)
	f.Add("齋藤", "", "住所", "旧姓", "通称", "1234567890x", []byte{0, 0}, []byte{9}, 2025, 6, 11, byte(3), 2025, 6, 9, true, 0, 0, 0)
	f.Add("葛\U000E0100城", "ｶﾅ", "a\u202eb", "", "山田花子", "12345678901", []byte{}, []byte{}, 2024, 2, 29, byte(1), 2030, 2, 28, true, 2025, 8, 1)
	f.Add("\xff\xfe", "\u0000", " ", "", "", "", []byte(nil), []byte(nil), 0, 0, 0, byte(0), 0, 0, 0, false, 2025, 1, 1)
	f.Fuzz(func(t *testing.T, name, kana, addr, former, alias, code string, nameSubs, addrSubs []byte,
		by, bm, bd int, sex byte, ey, em, ed int, renewal bool, cy, cm, cd int) {
		subs := func(b []byte) []int {
			if b == nil {
				return nil
			}
			out := make([]int, len(b))
			for i, x := range b {
				out[i] = int(x)
			}
			return out
		}
		a := Applicant{
			Name: Text{Value: name, Substitutes: subs(nameSubs)}, NameKana: kana, BirthDate: NewDate(by, time.Month(bm), bd),
			Sex: Sex(sex), Address: Text{Value: addr, Substitutes: subs(addrSubs)}, FormerSurname: Text{Value: former},
			Alias: Text{Value: alias}, ResidentCode: ResidentCode(code), CardExpiry: NewDate(ey, time.Month(em), ed),
			EarlyRenewal: renewal, CurrentExpiry: NewDate(cy, time.Month(cm), cd),
		}
		before := a
		before.Name.Substitutes = slices.Clone(a.Name.Substitutes)
		before.Address.Substitutes = slices.Clone(a.Address.Substitutes)
		err := a.Validate(now)
		if !reflect.DeepEqual(a, before) {
			t.Fatal("Validate modified its input")
		}
		if err != nil {
			var list []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				list = j.Unwrap()
			} else {
				list = []error{err}
			}
			for _, e := range list {
				var fe *FieldError
				if !errors.As(e, &fe) || !slices.Contains([]error{ErrEmpty, ErrInvalidDate, ErrFutureBirthDate, ErrUnknownSexCode,
					ErrFieldTooLong, ErrInvalidCharacter, ErrControlCharacter, ErrInvalidUTF8, ErrFormerSurnameAndAlias,
					ErrSubstitutePosition, ErrInvalidResidentCode, ErrCardExpired, ErrRenewalWithoutExpiry, ErrExpiryWithoutRenewal}, fe.Kind) {
					t.Fatalf("not a known field error: %v", e)
				}
			}
			// The texts are fixed English (ASCII) with field names and positions only, so no
			// Japanese value can leak; the resident code is the ASCII value that must not.
			msg := err.Error()
			for i := 0; i < len(msg); i++ {
				if msg[i] >= utf8.RuneSelf {
					t.Fatalf("error text carries non-ASCII input: %q", msg)
				}
			}
			if len(code) == 11 && strings.Contains(msg, code) {
				t.Fatalf("error text contains the resident code: %s", msg)
			}
			return
		}
		today := DateOf(now)
		for _, c := range []struct {
			t     Text
			limit int
			req   bool
		}{{a.Name, MaxNameLength, true}, {Text{Value: kana}, MaxNameKanaLength, false}, {a.Address, MaxAddressLength, true},
			{a.FormerSurname, MaxFormerSurnameLength, false}, {a.Alias, MaxAliasLength, false}} {
			n := utf8.RuneCountInString(c.t.Value)
			if !utf8.ValidString(c.t.Value) || n > c.limit || (c.req && n == 0) {
				t.Fatalf("accepted text %q (limit %d)", c.t.Value, c.limit)
			}
			for _, r := range c.t.Value {
				if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp) || r == utf8.RuneError ||
					(unicode.Is(unicode.Zs, r) && r != ' ' && r != '\u3000') {
					t.Fatalf("accepted character %U in %q", r, c.t.Value)
				}
			}
			for i, p := range c.t.Substitutes {
				if p < 0 || p >= n || (i > 0 && p <= c.t.Substitutes[i-1]) {
					t.Fatalf("accepted substitutes %v for %d characters", c.t.Substitutes, n)
				}
			}
		}
		if former != "" && alias != "" {
			t.Fatal("accepted both former surname and alias")
		}
		if len(code) != 11 || strings.Trim(code, "0123456789") != "" {
			t.Fatalf("accepted resident code of %d bytes", len(code))
		}
		if !a.BirthDate.Valid() || a.BirthDate.After(today) || !a.CardExpiry.Valid() || a.CardExpiry.Before(today) || !a.Sex.Valid() {
			t.Fatalf("accepted dates or sex %v %v %v", a.BirthDate, a.CardExpiry, a.Sex)
		}
		if renewal != a.CurrentExpiry.Valid() {
			t.Fatalf("accepted renewal %v with current expiry %v", renewal, a.CurrentExpiry)
		}
	})
}
