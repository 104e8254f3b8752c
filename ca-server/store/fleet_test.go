package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLeaseFencing: one holder at a time; another takes an expired lease
// with a greater fence, and a write made under the old fence is refused in
// its own transaction (issue 14, "jobs run once"). On the old code there
// was no lease: every replica ran every job and two checkpoint writers
// fought.
func TestLeaseFencing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		now := time.Unix(1_700_000_000, 0)
		a, err := s.AcquireLease(ctx, "jobs", "replica-a", 10*time.Second, now)
		if err != nil || a.Fence != 1 {
			t.Fatalf("first acquire: %+v, %v", a, err)
		}
		if _, err := s.AcquireLease(ctx, "jobs", "replica-b", 10*time.Second, now.Add(5*time.Second)); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("b while a holds: %v, want ErrLeaseHeld", err)
		}
		if r, err := s.AcquireLease(ctx, "jobs", "replica-a", 10*time.Second, now.Add(5*time.Second)); err != nil || r.Fence != 1 {
			t.Fatalf("renew: %+v, %v", r, err)
		}
		// a writes under its fence
		fa := WithFence(ctx, a)
		if err := s.ArchiveCRL(fa, ArchivedCRL{Series: "signature", Number: 1, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, []byte{1}); err != nil {
			t.Fatal(err)
		}
		// a stops renewing (kill -9); b takes over after expiry
		b, err := s.AcquireLease(ctx, "jobs", "replica-b", 10*time.Second, now.Add(16*time.Second))
		if err != nil || b.Fence != 2 {
			t.Fatalf("takeover: %+v, %v", b, err)
		}
		if err := s.ArchiveCRL(fa, ArchivedCRL{Series: "signature", Number: 2, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, []byte{2}); !errors.Is(err, ErrFenced) {
			t.Fatalf("deposed holder's write: %v, want ErrFenced", err)
		}
		if err := s.ArchiveCRL(WithFence(ctx, b), ArchivedCRL{Series: "signature", Number: 2, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, []byte{2}); err != nil {
			t.Fatal(err)
		}
		if err := s.ArchiveCRL(ctx, ArchivedCRL{Series: "signature", Number: 2, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, []byte{3}); !errors.Is(err, ErrConflict) {
			t.Fatalf("same number again: %v", err)
		}
		list, err := s.ArchivedCRLs(ctx, "signature")
		if err != nil || len(list) != 2 || list[1].Number != 2 || list[1].Size != 1 {
			t.Fatalf("archive list %+v, %v", list, err)
		}
		der, _, err := s.ArchivedCRLDER(ctx, "signature", 2)
		if err != nil || len(der) != 1 || der[0] != 2 {
			t.Fatalf("archived DER %v, %v", der, err)
		}
		if _, err := s.w.ExecContext(ctx, `DELETE FROM crl_archive`); err == nil {
			t.Fatal("crl_archive rows deleted: must be append-only")
		}
		// a clean release lets the next one in at once
		if err := s.ReleaseLease(ctx, b); err != nil {
			t.Fatal(err)
		}
		if c, err := s.AcquireLease(ctx, "jobs", "replica-c", 10*time.Second, now.Add(17*time.Second)); err != nil || c.Fence != 3 {
			t.Fatalf("after release: %+v, %v", c, err)
		}
	})
}

// TestStatusChangesRecorded: every status change, by whatever process,
// leaves a row the replicas' OCSP responders follow (TS Art. 36). On the old
// code nothing recorded a change made outside the running serve.
func TestStatusChangesRecorded(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		now := time.Now()
		term := enrol(t, s, "t1")
		before, err := s.LastStatusChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		is, err := begin(t, s, term.ID, "r1", sum("p1"), CertSign, false, now)
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, s, is, now)
		if _, err := s.HoldCertificate(ctx, StatusRequest{Serial: is.Serial, Kind: "lost-card-phone-report", Channel: "phone", Terminal: "local",
			Operator: "op", Evidence: "call", At: now}); err != nil {
			t.Fatal(err)
		}
		chs, err := s.StatusChangesAfter(ctx, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		var states []State
		for _, c := range chs {
			if c.Serial != is.Serial || c.CertType != CertSign {
				t.Fatalf("change %+v", c)
			}
			states = append(states, c.State)
		}
		if len(states) != 3 || states[0] != StatePrepared || states[1] != StateDelivered || states[2] != StateHeld {
			t.Fatalf("changes %v, want prepared, delivered, held", states)
		}
		if n, err := s.PruneStatusChanges(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("prune of an hour ago: %d, %v", n, err)
		}
		if n, err := s.PruneStatusChanges(ctx, time.Now().Add(time.Minute)); err != nil || n < 3 {
			t.Fatalf("prune: %d, %v", n, err)
		}
		if rest, _ := s.StatusChangesAfter(ctx, 0, 100); len(rest) != 0 {
			t.Fatalf("after prune: %+v", rest)
		}
	})
}
