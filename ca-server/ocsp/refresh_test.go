package ocsp_test

import (
	"context"
	"math/big"
	"sync"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/ca-server/ocsp"
)

// TestChangeDuringSignNeverCachesStale: a request reads "good", a hold is
// committed and announced (Update) while that request is still signing,
// and the request's answer then reaches the cache last. The next answer
// must be the hold (TS Art. 36). Seen failing on the old code: the late
// "good", signed in the same second, replaced the re-signed hold in the
// cache until the half-life refresh.
func TestChangeDuringSignNeverCachesStale(t *testing.T) {
	for _, announce := range []string{"Update", "Refresh"} {
		t.Run(announce, func(t *testing.T) {
			f := newFixture(t, nil)
			var mu sync.Mutex
			st := ocsp.CertStatus{State: ocsp.Good}
			entered, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			src := ocsp.StatusFunc(func(ctx context.Context, serial *big.Int) (ocsp.CertStatus, error) {
				mu.Lock()
				cur := st
				mu.Unlock()
				block := false
				once.Do(func() { block = true })
				if block { // the first request stalls after reading
					close(entered)
					<-release
				}
				return cur, nil
			})
			now := time.Now()
			r, err := ocsp.New(ocsp.Config{Issuer: f.ca, ResponderCert: f.responder, Signer: testKeys(t)[1], Source: src, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			done := make(chan struct{})
			go func() { defer close(done); r.Response(ctx, serialGood) }()
			<-entered
			mu.Lock()
			st = ocsp.CertStatus{State: ocsp.Held, RevokedAt: revokedAt}
			mu.Unlock()
			var aerr error
			if announce == "Update" {
				aerr = r.Update(ctx, serialGood)
			} else {
				aerr = r.Refresh(ctx, serialGood)
			}
			if aerr != nil {
				t.Fatal(aerr)
			}
			close(release)
			<-done
			der, err := r.Response(ctx, serialGood)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := xocsp.ParseResponse(der, f.ca)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != xocsp.Revoked || resp.RevocationReason != xocsp.CertificateHold {
				t.Fatalf("after the hold: status %d reason %d, want revoked (certificateHold)", resp.Status, resp.RevocationReason)
			}
		})
	}
}

// TestOtherSerialsChangeStillCaches: a change of one serial while another
// is being signed does not stop the other's answer from being cached. With
// one global change counter a stream of revocations made every concurrent
// answer uncached, so each request cost an HSM signature again
// (ocspbench's concurrent pre-signing asked the store again 54 times).
func TestOtherSerialsChangeStillCaches(t *testing.T) {
	f := newFixture(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	src := ocsp.StatusFunc(func(ctx context.Context, serial *big.Int) (ocsp.CertStatus, error) {
		if serial.Cmp(serialGood) == 0 {
			block := false
			once.Do(func() { block = true })
			if block {
				close(entered)
				<-release
			}
		}
		return ocsp.CertStatus{State: ocsp.Good}, nil
	})
	r, err := ocsp.New(ocsp.Config{Issuer: f.ca, ResponderCert: f.responder, Signer: testKeys(t)[1], Source: src})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	done := make(chan struct{})
	go func() { defer close(done); r.Response(ctx, serialGood) }()
	<-entered
	other := new(big.Int).Add(serialGood, big.NewInt(1))
	if err := r.Update(ctx, other); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	before := r.Stats().Signatures
	if _, err := r.Response(ctx, serialGood); err != nil {
		t.Fatal(err)
	}
	if n := r.Stats().Signatures - before; n != 0 {
		t.Fatalf("answer for %x signed %d more times: a change of another serial stopped it being cached", serialGood, n)
	}
}
