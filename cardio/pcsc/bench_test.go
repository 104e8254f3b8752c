package pcsc_test

import (
	"context"
	"testing"

	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

// BenchmarkReadBinaryRoundTrip measures one bare READ BINARY (256 bytes) through
// ebfe/scard → pcscd → vpcd → the virtual card's link and back; the in-process sub-benchmark
// is the baseline (the card alone, no PC/SC).
func BenchmarkReadBinaryRoundTrip(b *testing.B) {
	l := vcardtest.Personalised(b, "", 0x51)
	run := func(b *testing.B, tr cardio.Transport) {
		ctx := context.Background()
		for _, cmd := range [][]byte{selectJPKI, selectAuth} {
			if _, err := tr.Transmit(ctx, cmd); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			rsp, err := tr.Transmit(ctx, read256)
			if err != nil || len(rsp) != 258 {
				b.Fatalf("% X %v", rsp, err)
			}
		}
	}
	b.Run("in-process", func(b *testing.B) { run(b, vcard.Insert(l.Card)) })
	b.Run("pcscd+vpcd", func(b *testing.B) {
		env := testenv.PCSCD(b)
		vcardtest.PlugIn(b, l.Card, env.Ports[0], env.Readers[0])
		run(b, vcardtest.Connect(b, env.Readers[0]))
	})
}
