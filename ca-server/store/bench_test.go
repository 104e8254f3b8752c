package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"madoguchi/internal/testenv"
)

// BenchmarkIssuanceWritePath measures the store's part of one issuance —
// open the channel, record the key fingerprint, reserve (BeginIssuance),
// prepared (MarkPrepared), delivered (ConfirmIssuance): five write
// transactions — on SQLite (synchronous=FULL, the baseline) and on
// PostgreSQL in the same run: durable (fsync on, as in production) and with
// the test harness's fsync off. "parallel" runs 4 goroutines per CPU, as a
// server does with several terminals; one ns/op is still one issuance.
func BenchmarkIssuanceWritePath(b *testing.B) {
	ctx := context.Background()
	backends := []struct {
		name string
		open func(b *testing.B) Writer
	}{
		{"sqlite", func(b *testing.B) Writer {
			s, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "ca.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres-durable", func(b *testing.B) Writer {
			return openBenchPostgres(b, testenv.PostgresOptions{Durable: true})
		}},
		{"postgres-durable-no-commit-token", func(b *testing.B) Writer {
			// the cost of the commit token (failover): the same store
			// without it, as before issue 14
			commitTokens = false
			b.Cleanup(func() { commitTokens = true })
			return openBenchPostgres(b, testenv.PostgresOptions{Durable: true})
		}},
		{"postgres-fsync-off", func(b *testing.B) Writer {
			return openBenchPostgres(b, testenv.PostgresOptions{})
		}},
	}
	for _, be := range backends {
		for _, parallel := range []bool{false, true} {
			name := be.name + "/serial"
			if parallel {
				name = be.name + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				s := be.open(b)
				enrol(b, s, "t1")
				var n atomic.Int64
				issue := func() {
					i := n.Add(1)
					now := t0.Add(time.Duration(i) * time.Millisecond)
					// random-looking ids and serials, as the service makes
					// them: sequential ones would put every concurrent
					// writer on the same index pages
					id := fmt.Sprintf("%x", sum(fmt.Sprint(i))[:16])
					ch := Channel{ID: "ch-" + id, TerminalID: "t1", HostChallenge: []byte("12345678"), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
					if err := s.CreateChannel(ctx, ch); err != nil {
						b.Fatal(err)
					}
					key := sum("key-" + id)
					if err := s.RecordKeyFingerprint(ctx, key, now); err != nil {
						b.Fatal(err)
					}
					is := Issuance{ID: "is-" + id, TerminalID: "t1", RequestID: "req-" + id, RequestSHA256: sum(id), OperatorID: "op1",
						ChannelID: ch.ID, CardSerial: "card-" + id, PersonHash: sum("person-" + id), CertType: CertSign,
						Serial: id, KeySHA256: key, Deadline: now.Add(10 * time.Minute)}
					if err := s.BeginIssuance(ctx, is, now); err != nil {
						b.Fatal(err)
					}
					if _, err := s.MarkPrepared(ctx, is.ID, make([]byte, 1200), make([]byte, 2000), make([]byte, 64), now); err != nil {
						b.Fatal(err)
					}
					if _, err := s.ConfirmIssuance(ctx, is.ID, "confirm-"+id, sum("responses-"+id), now); err != nil {
						b.Fatal(err)
					}
				}
				retries := serialisationRetries.Load()
				b.ResetTimer()
				if parallel {
					b.SetParallelism(4)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							issue()
						}
					})
				} else {
					for b.Loop() {
						issue()
					}
				}
				// PostgreSQL transactions run again after a serialisation
				// failure, per issuance (always 0 on SQLite)
				b.ReportMetric(float64(serialisationRetries.Load()-retries)/float64(b.N), "retries/op")
			})
		}
	}
}

func openBenchPostgres(b *testing.B, opts testenv.PostgresOptions) Writer {
	pg := testenv.PostgresWith(b, opts)
	s, err := OpenPostgres(context.Background(), pg.DSN)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
