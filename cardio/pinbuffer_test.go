package cardio_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
)

// keeping is a transport that keeps a reference to every command buffer it was handed, as
// a driver or a logging layer below cardio might.
type keeping struct {
	cardio.Transport
	mu   sync.Mutex
	kept [][]byte
}

func (k *keeping) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	k.mu.Lock()
	k.kept = append(k.kept, cmd)
	k.mu.Unlock()
	return k.Transport.Transmit(ctx, cmd)
}

// TestPINAPDUBuffersAreCleared: the command APDUs that carried a PIN (VERIFY, CHANGE
// REFERENCE DATA) are zeroed once the card answered, so no copy of the applicant's PIN made
// by cardio outlives the call (DOMAIN §2: nothing stores the PIN). The caller's own slice is
// left alone: the caller decides when its copy ends.
func TestPINAPDUBuffersAreCleared(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(api *cardio.Card, pin []byte) error
		card func(t *testing.T) *vcard.Card
		w    cardio.Which
		pin  string
	}{
		{"set user-auth pin", func(api *cardio.Card, pin []byte) error { return api.SetPIN(ctx, cardio.UserAuth, pin) },
			func(t *testing.T) *vcard.Card { return vcardtest.Blank(t, "", 0x36) }, cardio.UserAuth, "4826"},
		{"verify signature pin", func(api *cardio.Card, pin []byte) error { return api.VerifyPIN(ctx, cardio.Signature, pin) },
			func(t *testing.T) *vcard.Card { return vcardtest.Personalised(t, "", 0x37).Card }, cardio.Signature, "JPKI2024"},
		{"wrong user-auth pin", func(api *cardio.Card, pin []byte) error { return api.VerifyPIN(ctx, cardio.UserAuth, pin) },
			func(t *testing.T) *vcard.Card { return vcardtest.Personalised(t, "", 0x38).Card }, cardio.UserAuth, "9157"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &keeping{Transport: vcard.Insert(tc.card(t))}
			api := cardio.New(tr)
			pin := []byte(tc.pin)
			_ = tc.run(api, pin) // success or refusal: the buffers must be cleared either way
			if string(pin) != tc.pin {
				t.Fatal("the caller's pin slice was changed")
			}
			if len(tr.kept) == 0 {
				t.Fatal("no apdu reached the card")
			}
			for i, cmd := range tr.kept {
				if bytes.Contains(cmd, pin) {
					t.Errorf("command apdu %d still holds the pin after the call returned", i)
				}
			}
		})
	}
}
