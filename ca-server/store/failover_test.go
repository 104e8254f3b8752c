package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"madoguchi/internal/testenv"
)

// TestPostgresFailoverContinues: a store opened on the multi-host URL of a
// primary with a synchronous streaming standby keeps issuing while the
// primary is killed (SIGKILL) and the standby promoted: writes in flight
// reconnect to the new primary and continue, and every issuance whose
// BeginIssuance, MarkPrepared and ConfirmIssuance returned success is
// delivered exactly once on the new primary — none lost (synchronous
// replication), none doubled (commit tokens).
//
// Seen failing with the old behaviour (no retry: FailoverWait set to 0):
// 28 writes in flight at the kill returned "store: begin: failed to
// deallocate cached statement(s): conn closed" to the caller.
func TestPostgresFailoverContinues(t *testing.T) {
	ctx := context.Background()
	pair := testenv.PostgresWithStandby(t)
	s, err := OpenPostgres(ctx, pair.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	enrol(t, s, "t1")

	const workers = 3
	var (
		mu        sync.Mutex
		delivered []string
		failures  []error
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		progress  = make(chan struct{}, 1000)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				now := t0.Add(time.Duration(i) * time.Second)
				ch := Channel{ID: "ch-" + name, TerminalID: "t1", HostChallenge: []byte("12345678"), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
				key := sum("key-" + name)
				is := Issuance{ID: "is-" + name, TerminalID: "t1", RequestID: "req-" + name, RequestSHA256: sum(name),
					OperatorID: "op1", ChannelID: ch.ID, CardSerial: cardFor(sum("person-" + name)), PersonHash: sum("person-" + name), CertType: CertAuth,
					Serial: fmt.Sprintf("f%d%06d", w+1, i), KeySHA256: key, Deadline: now.Add(10 * time.Minute)}
				err := s.CreateChannel(ctx, ch)
				if err == nil {
					err = s.RecordKeyFingerprint(ctx, key, now)
				}
				if err == nil {
					err = s.BeginIssuance(ctx, is, now)
				}
				if err == nil {
					_, err = s.MarkPrepared(ctx, is.ID, []byte("der-"+name), nil, nil, now)
				}
				if err == nil {
					_, err = s.ConfirmIssuance(ctx, is.ID, "confirm-"+name, sum("r"), now)
				}
				mu.Lock()
				if err == nil {
					delivered = append(delivered, is.ID)
				} else {
					failures = append(failures, fmt.Errorf("%s: %w", name, err))
				}
				mu.Unlock()
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	waitProgress := func(n int) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for i := 0; i < n; i++ {
			select {
			case <-progress:
			case <-deadline:
				t.Fatalf("no progress: %d of %d issuances", i, n)
			}
		}
	}
	waitProgress(20)
	pair.Primary.Kill()
	if err := pair.Standby.Promote(); err != nil {
		t.Fatal(err)
	}
	for len(progress) > 0 {
		<-progress
	}
	waitProgress(20) // issuing again, on the promoted standby
	close(stop)
	wg.Wait()

	if len(failures) > 0 {
		t.Fatalf("%d issuances failed across the failover (FailoverWait %v), first: %v", len(failures), FailoverWait, failures[0])
	}
	// The promoted standby, on a direct connection, holds every delivered
	// issuance exactly once.
	direct, err := OpenPostgres(ctx, pair.Standby.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	for _, id := range delivered {
		is, err := direct.Issuance(ctx, id)
		if err != nil || is.State != StateDelivered {
			t.Fatalf("issuance %s acknowledged as delivered: %s, %v on the new primary", id, is.State, err)
		}
	}
	var n int
	if err := direct.w.QueryRowContext(ctx, `SELECT count(*) FROM issuances`).Scan(&n); err != nil || n != len(delivered) {
		t.Fatalf("%d issuances on the new primary, %v; %d delivered", n, err, len(delivered))
	}
	retried, resolved := FailoverCounts()
	t.Logf("%d issuances delivered across the failover; %d transactions retried on a lost connection, %d COMMIT outcomes resolved", len(delivered), retried, resolved)
}
