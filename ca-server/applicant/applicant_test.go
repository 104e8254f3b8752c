package applicant

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2025, time.June, 10, 12, 0, 0, 0, JST)

func validApplicant() Applicant {
	return Applicant{
		Name:         Text{Value: "𠮷田　髙子", Substitutes: []int{1}},
		NameKana:     "ヨシダ　タカコ",
		BirthDate:    NewDate(1990, time.May, 14),
		Sex:          SexFemale,
		Address:      Text{Value: "東京都千代田区霞が関二丁目1番2号", Substitutes: []int{4, 6}},
		ResidentCode: "12345678901",
		CardExpiry:   NewDate(2034, time.May, 14),
	}
}

func TestValidateAcceptsValid(t *testing.T) {
	cases := map[string]func(a *Applicant){
		"as is":               func(a *Applicant) {},
		"former surname":      func(a *Applicant) { a.FormerSurname = Text{Value: "齋藤", Substitutes: []int{0}} },
		"alias":               func(a *Applicant) { a.Alias = Text{Value: "山田花子"} },
		"no kana":             func(a *Applicant) { a.NameKana = "" },
		"born today":          func(a *Applicant) { a.BirthDate = DateOf(testNow) },
		"card expires today":  func(a *Applicant) { a.CardExpiry = DateOf(testNow) },
		"early renewal":       func(a *Applicant) { a.EarlyRenewal, a.CurrentExpiry = true, NewDate(2025, 8, 1) },
		"ivs selector":        func(a *Applicant) { a.Name.Value = "葛\U000E0100城" },
		"latin name":          func(a *Applicant) { a.Name = Text{Value: "SMITH JOHN"} },
		"name at limit":       func(a *Applicant) { a.Name = Text{Value: strings.Repeat("𠮷", MaxNameLength)} },
		"male":                func(a *Applicant) { a.Sex = SexMale },
		"substitute at end":   func(a *Applicant) { a.Name.Substitutes = []int{4} },
		"no substitutes":      func(a *Applicant) { a.Name.Substitutes, a.Address.Substitutes = nil, nil },
		"feb 29 birth (leap)": func(a *Applicant) { a.BirthDate = NewDate(2000, 2, 29) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			a := validApplicant()
			mutate(&a)
			if err := a.Validate(testNow); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name     string
		mutate   func(a *Applicant)
		field    string
		kind     error
		position int // checked when >= 0
		limit    int // checked when > 0
	}{
		{"empty name", func(a *Applicant) { a.Name = Text{} }, FieldName, ErrEmpty, -1, 0},
		{"empty address", func(a *Applicant) { a.Address = Text{} }, FieldAddress, ErrEmpty, -1, 0},
		{"no birth date", func(a *Applicant) { a.BirthDate = Date{} }, FieldBirthDate, ErrEmpty, -1, 0},
		{"feb 29 common year", func(a *Applicant) { a.BirthDate = NewDate(1990, 2, 29) }, FieldBirthDate, ErrInvalidDate, -1, 0},
		{"month 13", func(a *Applicant) { a.BirthDate = NewDate(1990, 13, 1) }, FieldBirthDate, ErrInvalidDate, -1, 0},
		{"day 31 of april", func(a *Applicant) { a.BirthDate = NewDate(1990, 4, 31) }, FieldBirthDate, ErrInvalidDate, -1, 0},
		{"year before meiji", func(a *Applicant) { a.BirthDate = NewDate(1867, 1, 1) }, FieldBirthDate, ErrInvalidDate, -1, 0},
		{"born tomorrow JST", func(a *Applicant) { a.BirthDate = NewDate(2025, 6, 11) }, FieldBirthDate, ErrFutureBirthDate, -1, 0},
		{"no sex", func(a *Applicant) { a.Sex = 0 }, FieldSex, ErrEmpty, -1, 0},
		{"sex 9", func(a *Applicant) { a.Sex = 9 }, FieldSex, ErrUnknownSexCode, -1, 0},
		{"sex 3", func(a *Applicant) { a.Sex = 3 }, FieldSex, ErrUnknownSexCode, -1, 0},
		{"name too long", func(a *Applicant) { a.Name = Text{Value: strings.Repeat("𠮷", MaxNameLength+1)} }, FieldName, ErrFieldTooLong, -1, MaxNameLength},
		{"address too long", func(a *Applicant) { a.Address = Text{Value: strings.Repeat("あ", MaxAddressLength+1)} }, FieldAddress, ErrFieldTooLong, -1, MaxAddressLength},
		{"kana too long", func(a *Applicant) { a.NameKana = strings.Repeat("ア", MaxNameKanaLength+1) }, FieldNameKana, ErrFieldTooLong, -1, MaxNameKanaLength},
		{"former surname too long", func(a *Applicant) { a.FormerSurname = Text{Value: strings.Repeat("田", MaxFormerSurnameLength+1)} }, FieldFormerSurname, ErrFieldTooLong, -1, MaxFormerSurnameLength},
		{"alias too long", func(a *Applicant) { a.Alias = Text{Value: strings.Repeat("A", MaxAliasLength+1)} }, FieldAlias, ErrFieldTooLong, -1, MaxAliasLength},
		{"newline in address", func(a *Applicant) { a.Address.Value = "東京都\n千代田区" }, FieldAddress, ErrControlCharacter, 3, 0},
		{"tab in name after non-BMP", func(a *Applicant) { a.Name.Value = "𠮷\t田" }, FieldName, ErrControlCharacter, 1, 0},
		{"C1 control in kana", func(a *Applicant) { a.NameKana = "ヨシ\u0085ダ" }, FieldNameKana, ErrControlCharacter, 2, 0},
		{"bidi override", func(a *Applicant) { a.Name.Value = "山\u202E田" }, FieldName, ErrInvalidCharacter, 1, 0},
		{"zero width space", func(a *Applicant) { a.Name.Value = "山田\u200B" }, FieldName, ErrInvalidCharacter, 2, 0},
		{"private use gaiji", func(a *Applicant) { a.Name.Value = "山\uE000" }, FieldName, ErrInvalidCharacter, 1, 0},
		{"replacement char (lossy unpaired surrogate)", func(a *Applicant) { a.Name.Value = "山\uFFFD田" }, FieldName, ErrInvalidCharacter, 1, 0},
		{"noncharacter", func(a *Applicant) { a.Address.Value = "東京\uFFFF" }, FieldAddress, ErrInvalidCharacter, 2, 0},
		{"no-break space", func(a *Applicant) { a.Name.Value = "山田\u00A0花子" }, FieldName, ErrInvalidCharacter, 2, 0},
		{"encoded surrogate (CESU-8)", func(a *Applicant) { a.Name.Value = "山\xed\xa0\x80" }, FieldName, ErrInvalidUTF8, 3, 0},
		{"truncated UTF-8", func(a *Applicant) { a.Address.Value = "東京\xe4\xba" }, FieldAddress, ErrInvalidUTF8, 6, 0},
		{"substitute out of range", func(a *Applicant) { a.Name.Substitutes = []int{5} }, FieldName, ErrSubstitutePosition, 5, 0},
		{"substitute negative", func(a *Applicant) { a.Address.Substitutes = []int{-1} }, FieldAddress, ErrSubstitutePosition, -1, 0},
		{"substitutes not ascending", func(a *Applicant) { a.Address.Substitutes = []int{6, 4} }, FieldAddress, ErrSubstitutePosition, 4, 0},
		{"substitute duplicated", func(a *Applicant) { a.Address.Substitutes = []int{4, 4} }, FieldAddress, ErrSubstitutePosition, 4, 0},
		{"substitutes on empty alias", func(a *Applicant) { a.Alias = Text{Substitutes: []int{0}} }, FieldAlias, ErrSubstitutePosition, 0, 0},
		{"former surname and alias", func(a *Applicant) { a.FormerSurname.Value, a.Alias.Value = "齋藤", "SAITO" }, FieldAlias, ErrFormerSurnameAndAlias, -1, 0},
		{"no resident code", func(a *Applicant) { a.ResidentCode = "" }, FieldResidentCode, ErrEmpty, -1, 0},
		{"resident code 10 digits", func(a *Applicant) { a.ResidentCode = "1234567890" }, FieldResidentCode, ErrInvalidResidentCode, -1, 0},
		{"resident code letters", func(a *Applicant) { a.ResidentCode = "1234567890A" }, FieldResidentCode, ErrInvalidResidentCode, -1, 0},
		{"resident code full-width digits", func(a *Applicant) { a.ResidentCode = "１２３４５６７８９０１" }, FieldResidentCode, ErrInvalidResidentCode, -1, 0},
		{"no card expiry", func(a *Applicant) { a.CardExpiry = Date{} }, FieldCardExpiry, ErrEmpty, -1, 0},
		{"card expiry invalid", func(a *Applicant) { a.CardExpiry = NewDate(2030, 2, 30) }, FieldCardExpiry, ErrInvalidDate, -1, 0},
		{"card expired yesterday", func(a *Applicant) { a.CardExpiry = NewDate(2025, 6, 9) }, FieldCardExpiry, ErrCardExpired, -1, 0},
		{"renewal without expiry", func(a *Applicant) { a.EarlyRenewal = true }, FieldCurrentExpiry, ErrRenewalWithoutExpiry, -1, 0},
		{"expiry without renewal", func(a *Applicant) { a.CurrentExpiry = NewDate(2025, 8, 1) }, FieldCurrentExpiry, ErrExpiryWithoutRenewal, -1, 0},
		{"renewal invalid expiry", func(a *Applicant) { a.EarlyRenewal, a.CurrentExpiry = true, NewDate(2025, 2, 29) }, FieldCurrentExpiry, ErrInvalidDate, -1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := validApplicant()
			tc.mutate(&a)
			before := fmt.Sprintf("%#v", a)
			err := a.Validate(testNow)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Validate = %v, want %v", err, tc.kind)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate error %T is not a *FieldError", err)
			}
			if fe.Field != tc.field {
				t.Errorf("Field = %q, want %q", fe.Field, tc.field)
			}
			if tc.position >= 0 && fe.Position != tc.position {
				t.Errorf("Position = %d, want %d", fe.Position, tc.position)
			}
			if tc.position < 0 && tc.kind == ErrSubstitutePosition && fe.Position != tc.position {
				t.Errorf("Position = %d, want %d", fe.Position, tc.position)
			}
			if tc.limit > 0 && (fe.Limit != tc.limit || fe.Length != tc.limit+1) {
				t.Errorf("Limit/Length = %d/%d, want %d/%d", fe.Limit, fe.Length, tc.limit, tc.limit+1)
			}
			if !strings.HasPrefix(err.Error(), "applicant: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if after := fmt.Sprintf("%#v", a); after != before {
				t.Errorf("Validate modified the applicant")
			}
		})
	}
}

// The error text must not carry the personal data it complains about.
func TestValidateErrorsHoldNoPersonalData(t *testing.T) {
	a := validApplicant()
	a.Name.Value = "秘密の氏名\x07"
	a.Address.Value = strings.Repeat("秘", MaxAddressLength+1)
	a.ResidentCode = "98765x43210"
	err := a.Validate(testNow)
	if err == nil {
		t.Fatal("Validate accepted bad input")
	}
	for _, secret := range []string{"秘密", "秘秘", "98765"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains %q", err, secret)
		}
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	var a Applicant
	err := a.Validate(testNow)
	for _, kind := range []error{ErrEmpty} {
		if !errors.Is(err, kind) {
			t.Fatalf("err = %v", err)
		}
	}
	want := []string{FieldName, FieldBirthDate, FieldSex, FieldAddress, FieldResidentCode, FieldCardExpiry}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error is not a joined error: %T", err)
	}
	var got []string
	for _, e := range joined.Unwrap() {
		got = append(got, e.(*FieldError).Field)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fields = %v, want %v", got, want)
	}
}

func TestResidentCodeNeverFormats(t *testing.T) {
	a := validApplicant()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		if s := fmt.Sprintf(verb, a); strings.Contains(s, "12345678901") || strings.Contains(s, "3132333435") {
			t.Errorf("%s leaks the resident code: %s", verb, s)
		}
	}
}

func TestPersonKey(t *testing.T) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	mac := func(msg []byte) ([]byte, error) {
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		return m.Sum(nil), nil
	}
	h1, err := PersonKey(mac, "12345678901")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := PersonKey(mac, "12345678901")
	h3, _ := PersonKey(mac, "12345678902")
	if h1 != h2 || h1 == h3 {
		t.Fatalf("hashes not deterministic/distinct: %v %v %v", h1, h2, h3)
	}
	// Domain-separated: not the bare HMAC of the code.
	bare, _ := mac([]byte("12345678901"))
	if string(bare) == string(h1[:]) {
		t.Fatal("person key is the bare HMAC of the code")
	}
	if len(h1.String()) != 64 {
		t.Fatalf("String() = %q", h1.String())
	}

	if _, err := PersonKey(mac, "123"); !errors.Is(err, ErrInvalidResidentCode) {
		t.Errorf("short code: %v", err)
	}
	if _, err := PersonKey(mac, ""); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty code: %v", err)
	}
	short := func([]byte) ([]byte, error) { return make([]byte, 20), nil }
	if _, err := PersonKey(short, "12345678901"); !errors.Is(err, ErrBadHMAC) {
		t.Errorf("short digest: %v", err)
	}
	hsmDown := errors.New("hsm: session closed")
	failing := func([]byte) ([]byte, error) { return nil, hsmDown }
	_, err = PersonKey(failing, "12345678901")
	if !errors.Is(err, hsmDown) || strings.Contains(err.Error(), "12345678901") {
		t.Errorf("failing mac: %v", err)
	}
}

func TestParseDate(t *testing.T) {
	good := map[string]Date{
		"2024-02-29": NewDate(2024, 2, 29),
		"20240229":   NewDate(2024, 2, 29),
		"1868-01-01": NewDate(1868, 1, 1),
	}
	for s, want := range good {
		got, err := ParseDate(s)
		if err != nil || got != want {
			t.Errorf("ParseDate(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "2023-02-29", "2023-2-28", "2023/02/28", "+2023-02-28x", "20230230", "2023-00-10", "abcd-ef-gh", "2023-02-2x", "１９９０0101"} {
		if _, err := ParseDate(s); !errors.Is(err, ErrInvalidDate) {
			t.Errorf("ParseDate(%q) err = %v", s, err)
		}
	}
}

func TestDateOfUsesJST(t *testing.T) {
	// 14:59:59Z is 23:59:59 JST; one second later is the next day in Japan.
	if d := DateOf(time.Date(2025, 3, 31, 14, 59, 59, 0, time.UTC)); d != NewDate(2025, 3, 31) {
		t.Errorf("DateOf = %v", d)
	}
	if d := DateOf(time.Date(2025, 3, 31, 15, 0, 0, 0, time.UTC)); d != NewDate(2025, 4, 1) {
		t.Errorf("DateOf = %v", d)
	}
}

func TestAddMonthsClamped(t *testing.T) {
	cases := []struct{ from, want Date }{
		{NewDate(2025, 1, 15), NewDate(2025, 4, 15)},
		{NewDate(2025, 11, 30), NewDate(2026, 2, 28)},
		{NewDate(2023, 11, 30), NewDate(2024, 2, 29)},
		{NewDate(2025, 10, 31), NewDate(2026, 1, 31)},
		{NewDate(2025, 12, 31), NewDate(2026, 3, 31)},
	}
	for _, c := range cases {
		if got := c.from.AddMonthsClamped(3); got != c.want {
			t.Errorf("%v + 3 months = %v, want %v", c.from, got, c.want)
		}
	}
}

func TestParseSex(t *testing.T) {
	if s, err := ParseSex("1"); err != nil || s != SexMale || s.Code() != "1" {
		t.Errorf("ParseSex(1) = %v, %v", s, err)
	}
	if s, err := ParseSex("2"); err != nil || s != SexFemale {
		t.Errorf("ParseSex(2) = %v, %v", s, err)
	}
	for _, c := range []string{"0", "9", "", "12", "M"} {
		if _, err := ParseSex(c); !errors.Is(err, ErrUnknownSexCode) {
			t.Errorf("ParseSex(%q) = %v", c, err)
		}
	}
}
