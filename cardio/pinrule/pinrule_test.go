package pinrule

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		pin  string
		ok   bool
	}{
		{UserAuth, "0000", true},
		{UserAuth, "9381", true},
		{UserAuth, "938", false},
		{UserAuth, "93812", false},
		{UserAuth, "93a1", false},
		{UserAuth, "９３８１", false}, // full-width digits
		{Signature, "ABC123", true},
		{Signature, "A1B2C3D4E5F6G7H8", true},
		{Signature, "A1B2C3D4E5F6G7H8I", false}, // 17
		{Signature, "AB12C", false},             // 5
		{Signature, "ABCDEF", false},            // no digit
		{Signature, "123456", false},            // no letter
		{Signature, "abc123", false},            // lower case
		{Signature, "ABC 123", false},
		{Signature, "ABC-123", false},
		{Kind(9), "1234", false},
	} {
		err := Check(tc.kind, []byte(tc.pin))
		if (err == nil) != tc.ok {
			t.Errorf("Check(%v, %q) = %v, want ok=%v", tc.kind, tc.pin, err, tc.ok)
		}
		if err != nil && tc.kind != Kind(9) {
			if !errors.Is(err, ErrFormat) {
				t.Errorf("Check(%v, %q): %v is not ErrFormat", tc.kind, tc.pin, err)
			}
			if tc.pin != "" && strings.Contains(err.Error(), tc.pin) {
				t.Errorf("error %q contains the pin", err)
			}
		}
	}
}

func TestTriesAndFiles(t *testing.T) {
	if MaxTries(UserAuth) != 3 || MaxTries(Signature) != 5 || MaxTries(0) != 0 {
		t.Fatal("tries")
	}
	if k, err := ForPINFile(0x0018); err != nil || k != UserAuth {
		t.Fatal("0018")
	}
	if k, err := ForPINFile(0x001B); err != nil || k != Signature {
		t.Fatal("001B")
	}
	if _, err := ForPINFile(0x0017); err == nil {
		t.Fatal("0017 is not a pin file")
	}
}
