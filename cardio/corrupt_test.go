package cardio_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"madoguchi/cardio"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

// TestCorruptAnswersAreCardErrors: a card answer replaced by random bytes (garbage@N) or cut
// short (truncate@N), as the fault campaign injects them through `vcard run --fault`, reaches
// the terminal's card stack (cardio over the real pcscd + vpcd) as an error of the operation:
// not a panic, not a hang, not a success; and the card works again for the next operation.
func TestCorruptAnswersAreCardErrors(t *testing.T) {
	env := testenv.PCSCD(t)
	l := vcardtest.Personalised(t, "", 0x3A)
	api, link, _ := realCard(t, env, l.Card)
	di, _ := digestInfo([]byte("corrupt"))
	ops := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"read certificates", func(ctx context.Context) error { _, err := api.ReadCertificates(ctx); return err }},
		{"verify pin", func(ctx context.Context) error { return api.VerifyPIN(ctx, cardio.UserAuth, []byte(l.AuthPIN)) }},
		{"sign", func(ctx context.Context) error {
			if err := api.VerifyPIN(ctx, cardio.UserAuth, []byte(l.AuthPIN)); err != nil {
				return err
			}
			_, err := api.Sign(ctx, cardio.UserAuth, di)
			return err
		}},
		{"card serial", func(ctx context.Context) error { _, err := api.CardSerial(ctx); return err }},
		{"pin tries left", func(ctx context.Context) error { _, err := api.PINTriesLeft(ctx, cardio.Signature); return err }},
	}
	seed := 0
	for _, op := range ops {
		for _, kind := range []string{"garbage", "truncate"} {
			for n := 1; n <= 3; n++ {
				seed++
				name := fmt.Sprintf("%s %s@%d seed=%d", op.name, kind, n, seed)
				for _, spec := range []string{fmt.Sprintf("seed=%d", seed), fmt.Sprintf("%s@%d", kind, n)} {
					if err := link.Faults.Apply(spec); err != nil {
						t.Fatal(err)
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := op.run(ctx)
				cancel()
				if err == nil {
					// The operation used fewer than n APDUs: the fault is still armed. Disarm it
					// by spending it, and go on (only a fault that hit must fail).
					t.Logf("%s: operation ended before the fault", name)
					_ = op.run(context.Background())
					continue
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%s: hung until the deadline: %v", name, err)
				}
				t.Logf("%s: %v", name, err)
				if err := op.run(context.Background()); err != nil {
					t.Fatalf("%s: the next, clean attempt failed: %v", name, err)
				}
			}
		}
	}
}
