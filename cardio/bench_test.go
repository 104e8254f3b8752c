package cardio_test

import (
	"context"
	"testing"

	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

// BenchmarkReadAllCertificates measures ReadCertificates (four certificate files, 4-byte
// header read then 256-byte chunks, as OpenSC reads them) through pcscd and vpcd; the
// in-process sub-benchmark is the baseline without PC/SC.
func BenchmarkReadAllCertificates(b *testing.B) {
	l := vcardtest.Personalised(b, "", 0x61)
	run := func(b *testing.B, tr cardio.Transport) {
		api := cardio.New(tr)
		ctx := context.Background()
		if err := api.VerifyPIN(ctx, cardio.Signature, []byte(l.SignPIN)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			certs, err := api.ReadCertificates(ctx)
			if err != nil || certs.Signature == nil {
				b.Fatal(err)
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
