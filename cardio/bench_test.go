package cardio_test

import (
	"context"
	"crypto/rand"
	"testing"

	"madoguchi/cardio"
	"madoguchi/cardio/perso"
	"madoguchi/cardio/scp"
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

// shortOnly is a transport in front of a card that refuses extended READ BINARY with 6700
// without sending it, as a card without extended-length support would: cardio then reads
// certificates in 256-byte chunks (the behaviour before extended reads).
type shortOnly struct{ cardio.Transport }

func (s shortOnly) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if len(cmd) == 7 && cmd[1] == 0xB0 && cmd[4] == 0x00 {
		return []byte{0x67, 0x00}, nil
	}
	return s.Transport.Transmit(ctx, cmd)
}

// BenchmarkPersonalisationRealStack measures the whole personalisation exchange of one card
// through pcscd and vpcd, as the counter terminal runs it with the CA (here the software
// issuer): INITIALIZE UPDATE relayed to the CA, the CA's protected script (two keys, two
// certificates, two CA certificates) built and relayed, the CA's check of every response, the
// applicant's two PINs, and the read-back check (serial, signature PIN, the four certificates
// compared). It reports APDUs per personalisation (apdus/op) and the time per APDU (ns/apdu);
// compare with BenchmarkReadBinaryRoundTrip (cardio/pcsc) measured in the same run
// (docs/BENCHMARKS.md "Card personalisation (cardio)"). Between iterations, untimed, the CA
// resets both PINs through the same stack so the card takes a new personalisation.
// Sub-benchmarks: "pcscd+vpcd/extended-reads" is the real stack; "pcscd+vpcd/short-reads" the
// same against a card without extended-length READ BINARY (the APDU count before extended
// reads); "in-process" the same exchange with the card called directly (same card code and
// state file, no PC/SC): the card's and the CA's own work, the baseline.
func BenchmarkPersonalisationRealStack(b *testing.B) {
	issuer := stockIssuer(b)
	p := issuedPKI(b)
	ctx := context.Background()
	reset := func(b *testing.B, api *cardio.Card) {
		hc, err := scp.NewHostChallenge(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		iu, err := api.InitializeUpdate(ctx, hc)
		if err != nil {
			b.Fatal(err)
		}
		sess, err := scp.NewHostSession(ctx, issuer, hc, iu)
		if err != nil {
			b.Fatal(err)
		}
		script, err := perso.BuildIssuanceScript(ctx, sess,
			perso.ResetPIN{FID: perso.FIDUserAuthPIN}, perso.ResetPIN{FID: perso.FIDSignaturePIN})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := api.RunScript(ctx, script.APDUs()); err != nil {
			b.Fatal(err)
		}
	}
	run := func(b *testing.B, card *vcard.Card, tr cardio.Transport, short bool) {
		ct := &counting{Transport: tr}
		tr = ct
		if short {
			tr = shortOnly{ct}
		}
		api := cardio.New(tr)
		total := 0
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if card.Lifecycle() != vcard.LifecycleBlank {
				reset(b, api)
			}
			ct.n = 0
			b.StartTimer()
			if err := personalise(ctx, api, issuer, p); err != nil {
				b.Fatal(err)
			}
			total += ct.n
		}
		b.StopTimer()
		b.ReportMetric(float64(total)/float64(b.N), "apdus/op")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/apdu")
	}
	b.Run("in-process", func(b *testing.B) {
		card := stockCard(b, issuer)
		run(b, card, vcard.Insert(card), false)
	})
	b.Run("pcscd+vpcd", func(b *testing.B) {
		env := testenv.PCSCD(b)
		card := stockCard(b, issuer)
		vcardtest.PlugIn(b, card, env.Ports[0], env.Readers[0])
		pc := vcardtest.Connect(b, env.Readers[0])
		b.Run("extended-reads", func(b *testing.B) { run(b, card, pc, false) })
		b.Run("short-reads", func(b *testing.B) { run(b, card, pc, true) })
	})
}
