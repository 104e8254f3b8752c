package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/hsmissuance"
	"madoguchi/cardio/vcard"
	"madoguchi/internal/testenv"
	"madoguchi/raclient"
)

// Issuance throughput of a fleet (issue 14, docs/CAPACITY.md): k `serve`
// replicas (child processes) on one PostgreSQL, one shared SoftHSM token,
// each replica with one request session and a key pool refilled by one
// worker session; one terminal goroutine per replica runs whole issuances
// over mutual TLS (channel, prepare, the card's script on a virtual card,
// confirm). The baseline in the same run, before the replicas start, is
// raw RSA-2048 generation + destroy on the same token with k sessions
// (hsmissuance's RawKeygen). Run with
//
//	go test -run '^$' -bench Fleet -benchtime 24x ./ca-server
func BenchmarkFleetIssuance1Replica(b *testing.B)  { benchFleet(b, 1) }
func BenchmarkFleetIssuance2Replicas(b *testing.B) { benchFleet(b, 2) }
func BenchmarkFleetIssuance3Replicas(b *testing.B) { benchFleet(b, 3) }

func benchFleet(b *testing.B, k int) {
	testenv.SoftHSM(b)
	pg := testenv.PostgresWith(b, testenv.PostgresOptions{Durable: true})
	data := b.TempDir()
	cards := (b.N + 1) / 2
	must := func(args ...string) string {
		b.Helper()
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			b.Fatalf("ca-server %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		return out.String()
	}
	must("ceremony-init", "--data", data, "--dev")
	batch := filepath.Join(b.TempDir(), "batch.txt")
	must("card-batch", "--data", data, "--dev", "--count", fmt.Sprint(cards), "--out", batch)
	tok := strings.TrimSpace(must("terminal-token", "--data-dir", data, "--municipality", "131016", "--database", pg.DSN))

	// Baseline: raw keygen on the same token, same run, with as many
	// generating sessions as the k replicas have: one pool worker each (a
	// request waits for the pool, it never generates a key itself).
	sessions := k
	raw := rawKeygen(b, data, sessions, max(b.N, 2*sessions))

	var replicas []*serveChild
	for i := range k {
		replicas = append(replicas, startServeChild(b, fmt.Sprintf("replica-%d", i+1), "--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--database", pg.DSN,
			"--sessions", "1", "--key-pool", "8", "--key-pool-workers", "1"))
	}
	ctx := context.Background()
	pool := x509.NewCertPool()
	rootPEM, err := os.ReadFile(filepath.Join(data, "tls-ca.crt"))
	if err != nil || !pool.AppendCertsFromPEM(rootPEM) {
		b.Fatalf("tls-ca.crt: %v", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(ctx, raclient.EnrollConfig{BaseURL: replicas[0].base, RootCAs: pool, Token: tok, Key: key, Operator: "installer"})
	if err != nil {
		b.Fatalf("enrol: %v", err)
	}
	tc, _ := raclient.TLSCertificate(enr, key)
	var clients []*raclient.Client
	for _, r := range replicas {
		c, err := raclient.New(raclient.Config{BaseURL: r.base, Certificate: tc, RootCAs: pool, MaxAttempts: 1, Timeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	bf, err := os.Open(batch)
	if err != nil {
		b.Fatal(err)
	}
	stock, err := vcard.ParseKeyBatch(bf)
	bf.Close()
	if err != nil || len(stock) != cards {
		b.Fatalf("batch: %v (%d cards)", err, len(stock))
	}
	// Let every replica's key pool fill (8 keys) before the clock starts.
	time.Sleep(time.Duration(8*k) * 300 * time.Millisecond)

	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N || failed.Load() != nil {
					return
				}
				t0 := time.Now()
				once := func(_ string, do func(*raclient.Client) error) error { return do(clients[w]) }
				if o := fleetIssue(ctx, once, stock[i/2], []string{"sign", "auth"}[i%2], fmt.Sprintf("8%010d", i/2), fmt.Sprintf("bench-%d", i), true); !o.delivered {
					failed.Store(fmt.Errorf("issuance %d: %v", i, o.err))
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
	rate := float64(b.N) / elapsed.Seconds()
	// The baseline again after the run, replicas stopped: the machine is
	// shared, and its load changes between the two measurements.
	for _, r := range replicas {
		r.stop()
	}
	rawAfter := rawKeygen(b, data, sessions, max(b.N/2, 2*sessions))
	b.ReportMetric(rate, "certs/s")
	b.ReportMetric(raw, "rawkeygen_before/s")
	b.ReportMetric(rawAfter, "rawkeygen_after/s")
	b.ReportMetric(rate/((raw+rawAfter)/2), "ratio")
	b.ReportMetric(float64(max(b.N-8*k, 0))/elapsed.Seconds()/((raw+rawAfter)/2), "sustained_ratio")
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := max(0, min(int(p*float64(len(lat))+0.5)-1, len(lat)-1))
		return float64(lat[i].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}

// rawKeygen returns RSA-2048 keys generated (and destroyed) per second on
// the data directory's token with k concurrent sessions, n keys in all.
func rawKeygen(b *testing.B, data string, k, n int) float64 {
	b.Helper()
	ctx := context.Background()
	m, _ := filepath.Glob(filepath.Join(data, "dev-shares", ceremony.PurposeToken+"-*.share"))
	if len(m) == 0 {
		b.Fatal("no dev share")
	}
	pass, _ := ceremony.ReadSecret("file:" + filepath.Join(data, "dev-shares", "dev.passphrase"))
	common := ceremony.Common{DataDir: data}
	common.HSM.PoolSize = k
	a, err := ceremony.Activate(ctx, ceremony.ActivateOptions{Common: common, Shares: []ceremony.PresentedShare{{Path: m[len(m)-1], Passphrase: pass}}})
	if err != nil {
		b.Fatalf("activate: %v", err)
	}
	defer a.HSM.Close()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && failed.Load() == nil {
				kp, err := a.HSM.GenerateRSA(ctx, hsmissuance.LabelUserKey, hsm.KeyOptions{Extractable: hsm.ExtractableForCard})
				if err == nil {
					err = a.HSM.Destroy(ctx, kp.Private)
				}
				if err == nil {
					err = a.HSM.Destroy(ctx, kp.Public)
				}
				if err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}
