package hsmissuance

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"madoguchi/ca-server/hsm"
	"madoguchi/jpki/wire"
)

// Benchmarks of issuance with key generation in SoftHSM (docs/BENCHMARKS.md
// "ca-server issuance"). Run with e.g.
//
//	go test -run '^$' -bench . -benchtime 40x ./ca-server/hsmissuance
//
// RawKeygen is the baseline: RSA-2048 generation in the same token, with
// the same number of concurrent sessions. Prepare is the whole prepare of
// the issuance service (card cryptogram, key generation or pool take,
// fingerprint check, certificate signed in the HSM, wrap for the card,
// script), called in process so the HTTP layer is not measured.

func BenchmarkRawKeygen1Sessions(b *testing.B) { benchRawKeygen(b, 1) }
func BenchmarkRawKeygen2Sessions(b *testing.B) { benchRawKeygen(b, 2) }

func BenchmarkPrepare1Sessions(b *testing.B)        { benchPrepare(b, 1, false) }
func BenchmarkPrepare2Sessions(b *testing.B)        { benchPrepare(b, 2, false) }
func BenchmarkPrepare1SessionsKeyPool(b *testing.B) { benchPrepare(b, 1, true) }
func BenchmarkPrepare2SessionsKeyPool(b *testing.B) { benchPrepare(b, 2, true) }

// parallel runs op b.N times on n goroutines and returns each call's latency.
func parallel(b *testing.B, n int, op func(worker, i int) error) []time.Duration {
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N || failed.Load() != nil {
					return
				}
				t0 := time.Now()
				if err := op(w, i); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	return lat
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := int(p*float64(len(lat))+0.5) - 1
		i = max(0, min(i, len(lat)-1))
		return float64(lat[i].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.95), "p95_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}

func benchRawKeygen(b *testing.B, sessions int) {
	a := ceremonyDev(b, b.TempDir(), sessions)
	ctx := context.Background()
	lat := parallel(b, sessions, func(_, _ int) error {
		kp, err := a.HSM.GenerateRSA(ctx, LabelUserKey, hsm.KeyOptions{Extractable: hsm.ExtractableForCard})
		if err != nil {
			return err
		}
		// destruction (a few ms) stays inside the measurement: it is part of
		// every issued key's life too
		return errorsJoin(a.HSM.Destroy(ctx, kp.Private), a.HSM.Destroy(ctx, kp.Public))
	})
	reportPercentiles(b, lat)
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func benchPrepare(b *testing.B, sessions int, pool bool) {
	o := fixtureOptions{sessions: sessions}
	if pool {
		o.poolSize, o.poolWorkers = 8, sessions
	}
	f := newFixture(b, o)
	ctx := context.Background()
	if pool {
		if err := f.deps.Pool.WaitFull(ctx); err != nil {
			b.Fatal(err)
		}
	}
	type cardT struct {
		serial string
		iu     func(hc []byte) ([]byte, error)
	}
	// one blank card per applicant: the CA writes a card only when blank or the applicant's
	// own (issue 17), and every prepared issuance stays live on its card
	cards := make([]cardT, b.N)
	for w := range cards {
		c, _, serial := f.newCard(b)
		cards[w] = cardT{serial: serial, iu: func(hc []byte) ([]byte, error) { return c.InitializeUpdate(ctx, hc) }}
	}
	lat := parallel(b, sessions, func(w, i int) error {
		ch, err := f.svc.OpenChannel(ctx, f.caller)
		if err != nil {
			return err
		}
		iu, err := cards[i].iu(ch.HostChallenge)
		if err != nil {
			return err
		}
		_, err = f.svc.Prepare(ctx, f.caller, wire.PrepareRequest{RequestID: fmt.Sprintf("bench-%d", i), ChannelID: ch.ChannelID,
			CardSerial: cards[i].serial, InitUpdateResponse: iu, CertType: "auth", Applicant: applicantData(fmt.Sprintf("%011d", 10_000_000_000+i))})
		return err
	})
	reportPercentiles(b, lat)
}
