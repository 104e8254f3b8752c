package store

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"testing"
	"time"
)

// delivered makes one delivered certificate for person.
func delivered(t *testing.T, s Writer, term string, person []byte, typ CertType) Issuance {
	t.Helper()
	is, err := begin(t, s, term, "req-"+randHex(t), person, typ, false, t0)
	if err != nil {
		t.Fatal(err)
	}
	return deliver(t, s, is, t0)
}

func counterReq(serial, reqID string, reason int, at time.Time) StatusRequest {
	return StatusRequest{Serial: serial, Kind: "stop-using", Reason: reason, Channel: "counter", Terminal: "t1", Operator: "op1",
		RequestID: reqID, Evidence: "written request 42; driver's licence", At: at}
}

func TestRevokeOnceNeverUndone(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		is := delivered(t, s, "t1", sum("p1"), CertSign)
		at := t0.Add(time.Hour)
		c, err := s.RevokeCertificate(ctx, counterReq(is.Serial, "r1", 5, at))
		if err != nil {
			t.Fatal(err)
		}
		if c.State != StateRevoked || c.RevocationReason != 5 || !c.RevokedAt.Equal(at) {
			t.Fatalf("revoked = %+v", c)
		}
		// the same request id again: idempotent, unchanged
		again, err := s.RevokeCertificate(ctx, counterReq(is.Serial, "r1", 5, at.Add(time.Minute)))
		if err != nil || !again.RevokedAt.Equal(at) {
			t.Fatalf("replay: %v %+v", err, again)
		}
		// a new request: already revoked, no change
		for _, f := range []func(context.Context, StatusRequest) (Certificate, error){s.RevokeCertificate, s.HoldCertificate, s.ReleaseHold} {
			if _, err := f(ctx, counterReq(is.Serial, "r2", 1, at.Add(2*time.Hour))); !errors.Is(err, ErrAlreadyRevoked) {
				t.Fatalf("err = %v, want ErrAlreadyRevoked", err)
			}
		}
		after, _ := s.CertificateBySerial(ctx, is.Serial)
		if !reflect.DeepEqual(after, c) {
			t.Fatalf("changed:\n%+v\n%+v", after, c)
		}
		reqs, _ := s.StatusRequests(ctx, is.Serial)
		if len(reqs) != 1 || reqs[0].Evidence == "" || reqs[0].Channel != "counter" {
			t.Fatalf("requests = %+v", reqs)
		}
		// even raw SQL cannot undo a revocation
		if _, err := s.w.ExecContext(ctx, `UPDATE issuances SET state = 'delivered', revoked_at = NULL, revocation_reason = NULL WHERE serial = ?`, is.Serial); err == nil {
			t.Fatal("trigger allowed undoing a revocation")
		}
		if _, err := s.w.ExecContext(ctx, `UPDATE issuances SET revocation_reason = 1 WHERE serial = ?`, is.Serial); err == nil {
			t.Fatal("trigger allowed changing the reason")
		}
		if _, err := s.w.ExecContext(ctx, `DELETE FROM status_requests`); err == nil {
			t.Fatal("status requests deletable")
		}
	})
}

func TestRevokeRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		if _, err := s.RevokeCertificate(ctx, counterReq("abc", "r1", 5, t0)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown serial: %v", err)
		}
		pending, err := begin(t, s, "t1", "req-p", sum("p2"), CertAuth, false, t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeCertificate(ctx, counterReq(pending.Serial, "r2", 5, t0)); !errors.Is(err, ErrState) {
			t.Fatalf("pending: %v", err)
		}
		is := delivered(t, s, "t1", sum("p1"), CertSign)
		if _, err := s.RevokeCertificate(ctx, counterReq(is.Serial, "r3", 7, t0)); err == nil {
			t.Fatal("reason 7 accepted")
		}
		if _, err := s.RevokeCertificate(ctx, counterReq(is.Serial, "r4", 6, t0)); err == nil {
			t.Fatal("hold accepted as a revocation")
		}
		c, _ := s.CertificateBySerial(ctx, is.Serial)
		if c.State != StateDelivered {
			t.Fatalf("state = %s", c.State)
		}
		if n, _ := s.StatusRequests(ctx, is.Serial); len(n) != 0 {
			t.Fatalf("requests recorded for refusals: %+v", n)
		}
	})
}

func TestHoldAndRelease(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		is := delivered(t, s, "t1", sum("p1"), CertAuth)
		if _, err := s.ReleaseHold(ctx, counterReq(is.Serial, "x1", 0, t0)); !errors.Is(err, ErrNotHeld) {
			t.Fatalf("release of a delivered certificate: %v", err)
		}
		phone := StatusRequest{Serial: is.Serial, Kind: "lost-card", Channel: "phone", Terminal: "local", Operator: "callcentre1", Evidence: "call 0120", At: t0.Add(time.Hour)}
		c, err := s.HoldCertificate(ctx, phone)
		if err != nil || c.State != StateHeld || !c.HeldAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("hold: %v %+v", err, c)
		}
		if _, err := s.HoldCertificate(ctx, phone); !errors.Is(err, ErrAlreadyHeld) {
			t.Fatalf("second hold: %v", err)
		}
		// the held certificate still counts as the person's one certificate
		if v, err := s.ValidIssuance(ctx, sum("p1"), CertAuth); err != nil || v.Serial != is.Serial {
			t.Fatalf("valid issuance: %v", err)
		}
		var got []string
		snap, err := s.RevokedSnapshot(ctx, CertAuth)
		if err != nil {
			t.Fatal(err)
		}
		snap.Each(ctx, func(serial string, at time.Time, reason int) bool {
			got = append(got, serial)
			if reason != 6 || !at.Equal(t0.Add(time.Hour)) {
				t.Errorf("held entry %s %v %d", serial, at, reason)
			}
			return true
		})
		snap.Close()
		if len(got) != 1 {
			t.Fatalf("snapshot = %v", got)
		}
		c, err = s.ReleaseHold(ctx, counterReq(is.Serial, "rel1", 0, t0.Add(2*time.Hour)))
		if err != nil || c.State != StateDelivered || !c.HeldAt.IsZero() {
			t.Fatalf("release: %v %+v", err, c)
		}
		if _, err := s.ReleaseHold(ctx, counterReq(is.Serial, "rel2", 0, t0.Add(3*time.Hour))); !errors.Is(err, ErrNotHeld) {
			t.Fatalf("second release: %v", err)
		}
		reqs, _ := s.StatusRequests(ctx, is.Serial)
		if len(reqs) != 2 || reqs[0].Action != ActionHold || reqs[1].Action != ActionRelease {
			t.Fatalf("requests = %+v", reqs)
		}
	})
}

func TestResidentChangePlanAndDeferral(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		p := sum("p1")
		sig := delivered(t, s, "t1", p, CertSign)
		auth := delivered(t, s, "t1", p, CertAuth)
		moveOut := ResidentChange{PersonHash: p, Event: "move-out", OccurredAt: t0, ReceivedAt: t0, Terminal: "t1", Operator: "op1", RequestID: "c1"}
		out, err := s.ApplyResidentChange(ctx, moveOut, ChangePlan{Defer: []PlannedDeferral{{CertType: CertAuth, Reason: 5, Due: t0.AddDate(0, 0, 30), Unless: "move-in"}}})
		if err != nil || len(out.Deferred) != 1 || len(out.Revoked) != 0 {
			t.Fatalf("move-out: %v %+v", err, out)
		}
		// replay
		out2, err := s.ApplyResidentChange(ctx, moveOut, ChangePlan{Defer: []PlannedDeferral{{CertType: CertAuth, Reason: 5, Due: t0.AddDate(0, 0, 30), Unless: "move-in"}}})
		if err != nil || !out2.Replayed {
			t.Fatalf("replay: %v %+v", err, out2)
		}
		if due, _ := s.DuePendingRevocations(ctx, t0.AddDate(0, 0, 29), 10); len(due) != 0 {
			t.Fatalf("due early: %+v", due)
		}
		due, _ := s.DuePendingRevocations(ctx, t0.AddDate(0, 0, 30), 10)
		if len(due) != 1 {
			t.Fatalf("due = %+v", due)
		}
		if _, _, err := s.ApplyPendingRevocation(ctx, due[0].ID, "scheduler", t0.AddDate(0, 0, 29)); !errors.Is(err, ErrState) {
			t.Fatalf("early apply: %v", err)
		}
		pr, c, err := s.ApplyPendingRevocation(ctx, due[0].ID, "scheduler", t0.AddDate(0, 0, 30))
		if err != nil || pr.Outcome != "revoked" || c == nil || c.Serial != auth.Serial || c.RevocationReason != 5 {
			t.Fatalf("apply: %v %+v %+v", err, pr, c)
		}
		if _, _, err := s.ApplyPendingRevocation(ctx, due[0].ID, "scheduler", t0.AddDate(0, 0, 31)); !errors.Is(err, ErrState) {
			t.Fatalf("apply twice: %v", err)
		}
		// death revokes the signature certificate now
		out, err = s.ApplyResidentChange(ctx, ResidentChange{PersonHash: p, Event: "death", OccurredAt: t0, ReceivedAt: t0.Add(time.Hour), Terminal: "t1", Operator: "op1"},
			ChangePlan{Revoke: []PlannedRevocation{{CertSign, 5}, {CertAuth, 5}}})
		if err != nil || len(out.Revoked) != 1 || out.Revoked[0].Serial != sig.Serial {
			t.Fatalf("death: %v %+v", err, out)
		}
		changes, _ := s.ResidentChanges(ctx, p)
		if len(changes) != 2 {
			t.Fatalf("changes = %+v", changes)
		}
	})
}

func TestMoveInCancelsDeferral(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		p := sum("p1")
		delivered(t, s, "t1", p, CertAuth)
		if _, err := s.ApplyResidentChange(ctx, ResidentChange{PersonHash: p, Event: "move-out", OccurredAt: t0, ReceivedAt: t0, Terminal: "t1", Operator: "op1"},
			ChangePlan{Defer: []PlannedDeferral{{CertType: CertAuth, Reason: 5, Due: t0.AddDate(0, 0, 30), Unless: "move-in"}}}); err != nil {
			t.Fatal(err)
		}
		out, err := s.ApplyResidentChange(ctx, ResidentChange{PersonHash: p, Event: "move-in", OccurredAt: t0.AddDate(0, 0, 10), ReceivedAt: t0.AddDate(0, 0, 10), Terminal: "t1", Operator: "op1"},
			ChangePlan{Cancel: []PlannedCancel{{CertType: CertAuth, Event: "move-out"}}})
		if err != nil || out.Cancelled != 1 {
			t.Fatalf("move-in: %v %+v", err, out)
		}
		if due, _ := s.DuePendingRevocations(ctx, t0.AddDate(0, 0, 40), 10); len(due) != 0 {
			t.Fatalf("still due: %+v", due)
		}
	})
}

func TestCompromiseCAAndCRLNumbers(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		a := delivered(t, s, "t1", sum("p1"), CertSign)
		b := delivered(t, s, "t1", sum("p2"), CertSign)
		other := delivered(t, s, "t1", sum("p1"), CertAuth)
		if _, err := s.RevokeCertificate(ctx, counterReq(a.Serial, "r1", 1, t0)); err != nil {
			t.Fatal(err)
		}
		n, err := s.CompromiseCA(ctx, CertSign, "signature-arl", "4abc", "drill-op", "drill", t0.Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("compromise: %v %d", err, n)
		}
		ca, _ := s.CertificateBySerial(ctx, a.Serial)
		cb, _ := s.CertificateBySerial(ctx, b.Serial)
		co, _ := s.CertificateBySerial(ctx, other.Serial)
		if ca.RevocationReason != 1 || cb.RevocationReason != 2 || co.State != StateDelivered {
			t.Fatalf("after compromise: %+v %+v %+v", ca.State, cb, co.State)
		}
		arl, _ := s.AuthorityRevocations(ctx, "signature-arl")
		if len(arl) != 1 || arl[0].Serial != "4abc" || arl[0].Reason != 2 {
			t.Fatalf("arl = %+v", arl)
		}
		for want := int64(1); want <= 3; want++ {
			if got, err := s.NextCRLNumber(ctx, "signature"); err != nil || got != want {
				t.Fatalf("number = %d, %v", got, err)
			}
		}
		if got, _ := s.NextCRLNumber(ctx, "auth"); got != 1 {
			t.Fatalf("other series = %d", got)
		}
	})
}

func TestVerifierRegistry(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		v := Verifier{ID: "v1", Name: "bank", CertSHA256: sum("c1"), CertSerial: "1f", NotAfter: t0.AddDate(1, 0, 0), RegisteredAt: t0}
		if err := s.AddVerifier(ctx, v); err != nil {
			t.Fatal(err)
		}
		if err := s.AddVerifier(ctx, Verifier{ID: "v2", Name: "bank", CertSHA256: sum("c2"), CertSerial: "2f", NotAfter: t0, RegisteredAt: t0}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate name: %v", err)
		}
		got, err := s.VerifierByFingerprint(ctx, sum("c1"))
		if err != nil || got.Name != "bank" || got.Revoked() {
			t.Fatalf("lookup: %v %+v", err, got)
		}
		if _, err := s.RevokeVerifier(ctx, "bank", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeVerifier(ctx, "bank", t0.Add(2*time.Hour)); !errors.Is(err, ErrVerifierRevoked) {
			t.Fatalf("second revoke: %v", err)
		}
		if _, err := s.RevokeVerifier(ctx, "nobody", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		got, _ = s.VerifierByFingerprint(ctx, sum("c1"))
		if !got.RevokedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("revoked at %v", got.RevokedAt)
		}
	})
}

func TestNormalizeSerial(t *testing.T) {
	for in, want := range map[string]string{"00AbC": "abc", "1": "1"} {
		if got, ok := NormalizeSerial(in); !ok || got != want {
			t.Errorf("%q -> %q %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "0", "-1", "xyz", "0x12", "1234567890123456789012345678901234567890ab"} {
		if _, ok := NormalizeSerial(in); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

// TestRevokedSnapshotSerialRange: SerialFrom/SerialBelow keep exactly the
// serials of one CRL shard (numeric order, bounds of other lengths too), on
// both backends. Before them a shard's publication read every revoked row
// of the CA up to its range (status.Publish).
func TestRevokedSnapshotSerialRange(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		var serials []*big.Int
		for i := range 6 {
			is := delivered(t, s, "t1", sum(fmt.Sprintf("p%d", i)), CertAuth)
			if _, err := s.RevokeCertificate(ctx, counterReq(is.Serial, fmt.Sprintf("r%d", i), 5, t0.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			n, _ := new(big.Int).SetString(is.Serial, 16)
			serials = append(serials, n)
		}
		slices.SortFunc(serials, func(a, b *big.Int) int { return a.Cmp(b) })
		one, huge := big.NewInt(1), new(big.Int).Lsh(big.NewInt(1), 200)
		for _, r := range [][2]*big.Int{{nil, nil}, {serials[2], nil}, {nil, serials[2]}, {serials[1], serials[4]}, {one, huge}, {huge, nil}, {nil, one},
			{new(big.Int).Add(serials[0], one), serials[5]}} {
			snap, err := s.RevokedSnapshotFor(ctx, SnapshotQuery{Type: CertAuth, SerialFrom: r[0], SerialBelow: r[1]})
			if err != nil {
				t.Fatal(err)
			}
			var got, want []string
			snap.Each(ctx, func(serial string, _ time.Time, _ int) bool { got = append(got, serial); return true })
			snap.Close()
			for _, n := range serials {
				if (r[0] == nil || n.Cmp(r[0]) >= 0) && (r[1] == nil || n.Cmp(r[1]) < 0) {
					want = append(want, n.Text(16))
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("range [%v, %v): %v, want %v", r[0], r[1], got, want)
			}
		}
	})
}
