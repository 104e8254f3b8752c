package cardio_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"madoguchi/cardio"
	"madoguchi/cardio/pinrule"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

// TestOpenSCPINLockLeavesOtherKeyRealStack is issue 17 defect 5: once one PIN of a card is
// locked, OpenSC's jpki driver must still bind the card, report that PIN locked and let the
// other key sign. OpenSC's PKCS#15 emulation (pkcs15-jpki.c) asks every PIN's tries with
// VERIFY without data at bind time and its driver (card-jpki.c, jpki_pin_cmd
// SC_PIN_CMD_GET_INFO) gives up on the whole card unless SW1 is 63; the other public JPKI
// readers (jpki/myna LookupPin, gebogebogebo/JPKIReader getPINRetryCount) read the tries the
// same way, as the low nibble of 63Cx, 0 meaning locked. So a real card answers 63C0 for a
// blocked PIN there, and 6983 (authentication method blocked, which OpenSC maps to
// CKR_PIN_LOCKED) when a PIN is presented to it.
//
// Seen failing on the old code: the virtual card answered 6983 without data too, and both
// slots came back CKR_TOKEN_NOT_RECOGNIZED (TS Art. 17-2(xi)(xii): a lock stops one key, not
// the card).
func TestOpenSCPINLockLeavesOtherKeyRealStack(t *testing.T) {
	env := testenv.PCSCD(t)
	const (
		authToken = "JPKI (User Authentication PIN)"
		signToken = "JPKI (Digital Signature PIN)"
	)
	for _, tc := range []struct {
		name                string
		lockToken, lockID   string
		wrong               string
		lockPIN             uint16
		lockWhich           cardio.Which
		otherToken, otherID string
		otherPIN            func(*vcardtest.Loaded) string
		otherCert           func(*vcardtest.Loaded) []byte
		otherPINEF          uint16
		otherWhich          cardio.Which
	}{
		{"user-auth locked", authToken, "01", "0000", vcard.EFUserAuthPIN, cardio.UserAuth,
			signToken, "02", func(l *vcardtest.Loaded) string { return l.SignPIN }, func(l *vcardtest.Loaded) []byte { return l.SignCert },
			vcard.EFSignaturePIN, cardio.Signature},
		{"signature locked", signToken, "02", "WRONG999", vcard.EFSignaturePIN, cardio.Signature,
			authToken, "01", func(l *vcardtest.Loaded) string { return l.AuthPIN }, func(l *vcardtest.Loaded) []byte { return l.AuthCert },
			vcard.EFUserAuthPIN, cardio.UserAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := vcardtest.Personalised(t, "", 0x51)
			_, stop := vcardtest.PlugIn(t, l.Card, env.Ports[0], env.Readers[0])
			t.Cleanup(func() { // the next case's card goes into the same reader
				stop()
				vcardtest.WaitPresent(t, env.Readers[0], false)
			})
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			if err := os.WriteFile(data, []byte("madoguchi: one pin locked"), 0o600); err != nil {
				t.Fatal(err)
			}
			sign := func(token, id, pin, out string) (string, error) {
				return tool("pkcs11-tool", "--module", openscPKCS11, "--token-label", token, "--login", "--pin", pin,
					"--sign", "-m", "SHA256-RSA-PKCS", "--id", id, "-i", data, "-o", out)
			}
			// Wrong PINs through OpenSC count down to the lock.
			max := pinrule.MaxTries(tc.lockWhich)
			for left := max - 1; left >= 0; left-- {
				out, err := sign(tc.lockToken, tc.lockID, tc.wrong, filepath.Join(dir, "bad"))
				if err == nil || !strings.Contains(out, "CKR_PIN_INCORRECT") && !strings.Contains(out, "CKR_PIN_LOCKED") {
					t.Fatalf("wrong pin through OpenSC: err=%v\n%s", err, out)
				}
				if st, n, _ := l.Card.PINStatus(tc.lockPIN); n != left || (left == 0) != (st == vcard.PINBlocked) {
					t.Fatalf("after a wrong pin: %s with %d tries, want %d", st, n, left)
				}
			}

			// OpenSC still binds the card: both tokens are listed, the locked one as locked.
			slots := mustTool(t, "pkcs11-tool", "--module", openscPKCS11, "-L")
			if !strings.Contains(slots, tc.lockToken) || !strings.Contains(slots, tc.otherToken) {
				t.Fatalf("pkcs11-tool -L after the lock does not list both tokens:\n%s", slots)
			}
			if !lockedFlag(slots, tc.lockToken) {
				t.Fatalf("pkcs11-tool -L does not show %q as locked:\n%s", tc.lockToken, slots)
			}
			if lockedFlag(slots, tc.otherToken) {
				t.Fatalf("pkcs11-tool -L shows %q as locked:\n%s", tc.otherToken, slots)
			}

			// The right PIN on the locked token: CKR_PIN_LOCKED, nothing signed, still blocked.
			late := filepath.Join(dir, "late")
			right := l.AuthPIN
			if tc.lockWhich == cardio.Signature {
				right = l.SignPIN
			}
			out, err := sign(tc.lockToken, tc.lockID, right, late)
			if _, serr := os.Stat(late); err == nil || serr == nil || !strings.Contains(out, "CKR_PIN_LOCKED") {
				t.Fatalf("right pin on the locked token: err=%v, want CKR_PIN_LOCKED\n%s", err, out)
			}
			if st, n, _ := l.Card.PINStatus(tc.lockPIN); st != vcard.PINBlocked || n != 0 {
				t.Fatalf("locked pin afterwards: %s with %d tries", st, n)
			}

			// The other key still signs through OpenSC, and openssl verifies the signature
			// against its certificate; its PIN counter is untouched.
			sig := filepath.Join(dir, "sig")
			if out, err := sign(tc.otherToken, tc.otherID, tc.otherPIN(l), sig); err != nil {
				t.Fatalf("the other key through OpenSC after the lock: %v\n%s", err, out)
			}
			pub := publicKeyPEM(t, dir, tc.otherID, tc.otherCert(l))
			if out := mustTool(t, "openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, data); !strings.Contains(out, "Verified OK") {
				t.Fatalf("openssl on the other key's signature: %s", out)
			}
			if st, n, _ := l.Card.PINStatus(tc.otherPINEF); st != vcard.PINSet || n != pinrule.MaxTries(tc.otherWhich) {
				t.Fatalf("other pin after the lock: %s with %d tries", st, n)
			}
		})
	}
}

// lockedFlag reports whether pkcs11-tool -L prints the token labelled label with the
// "user PIN locked" flag (CKF_USER_PIN_LOCKED).
func lockedFlag(listing, label string) bool {
	blocks := strings.Split(listing, "Slot ")
	for _, b := range blocks {
		if strings.Contains(b, "token label        : "+label) {
			return strings.Contains(b, "user PIN locked")
		}
	}
	return false
}
