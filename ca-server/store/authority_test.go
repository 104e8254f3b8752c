package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// enrolIn creates a terminal of municipality muni through a token.
func enrolIn(t testing.TB, s Writer, id, muni string) {
	t.Helper()
	ctx := context.Background()
	tok := sum("token-" + id)
	if err := s.CreateEnrolmentToken(ctx, EnrolmentToken{TokenSHA256: tok, Municipality: muni, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnrolTerminal(ctx, tok, Terminal{ID: id, CertSerial: "serial-" + id}, t0); err != nil {
		t.Fatal(err)
	}
}

// storeState is what a refused request must leave alone.
type storeState struct {
	certs    map[string]Certificate
	requests map[string][]StatusRequest
	changes  map[string][]ResidentChange
	pending  map[string][]PendingRevocation
}

func snapshot(t *testing.T, s *sqlStore, serials []string, persons ...[]byte) storeState {
	t.Helper()
	ctx := context.Background()
	st := storeState{map[string]Certificate{}, map[string][]StatusRequest{}, map[string][]ResidentChange{}, map[string][]PendingRevocation{}}
	for _, serial := range serials {
		c, err := s.CertificateBySerial(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		st.certs[serial] = c
		st.requests[serial], _ = s.StatusRequests(ctx, serial)
	}
	for _, p := range persons {
		st.changes[string(p)], _ = s.ResidentChanges(ctx, p)
		st.pending[string(p)], _ = s.PendingRevocationsOf(ctx, p)
	}
	return st
}

// TestAuthorityPerMunicipality: a terminal acts only for residents of its
// municipality (issue 13, threat 3; R02 II-3-1(2); DOMAIN §5).
//
// Attack: a terminal enrolled for 131016 (a copied terminal key) revokes,
// releases the hold of, and reports the death of a resident of 011002. On
// the code before this change the attack succeeded: the store took every
// request whatever the terminal's municipality (the requests carried none,
// so this test does not compile there; the same attack through the HTTP
// handler, ca-server/api TestAuthorityPerMunicipalityOverMutualTLS, was run
// on the old code and answered 200 to each request).
func TestAuthorityPerMunicipality(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrolIn(t, s, "t-tokyo", "131016")
		enrolIn(t, s, "t-sapporo", "011002")
		alice := sum("resident of 011002")
		sig := delivered(t, s, "t-sapporo", alice, CertSign)
		auth := delivered(t, s, "t-sapporo", alice, CertAuth)
		if _, err := s.HoldCertificate(ctx, StatusRequest{Serial: auth.Serial, Kind: "lost-card", Channel: "phone", Terminal: "local",
			Operator: "callcentre1", Evidence: "call", At: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Residence(ctx, alice); err != nil || r.Municipality != "011002" || r.Basis != "issued" || r.MovedOut {
			t.Fatalf("residence = %+v, %v", r, err)
		}
		before := snapshot(t, s, []string{sig.Serial, auth.Serial}, alice)

		tokyo := func(serial, reqID string) StatusRequest {
			r := counterReq(serial, reqID, 5, t0.Add(time.Hour))
			r.Terminal, r.Municipality, r.PersonHash = "t-tokyo", "131016", alice
			return r
		}
		if _, err := s.RevokeCertificate(ctx, tokyo(sig.Serial, "a1")); !errors.Is(err, ErrOtherMunicipality) {
			t.Fatalf("revoke from 131016: %v, want ErrOtherMunicipality", err)
		}
		if _, err := s.ReleaseHold(ctx, tokyo(auth.Serial, "a2")); !errors.Is(err, ErrOtherMunicipality) {
			t.Fatalf("release from 131016: %v, want ErrOtherMunicipality", err)
		}
		death := ResidentChange{PersonHash: alice, Event: "death", OccurredAt: t0, ReceivedAt: t0.Add(time.Hour), Terminal: "t-tokyo",
			Operator: "op9", RequestID: "a3", Municipality: "131016"}
		plan := ChangePlan{Revoke: []PlannedRevocation{{CertSign, 5}, {CertAuth, 5}}}
		if _, err := s.ApplyResidentChange(ctx, death, plan); !errors.Is(err, ErrOtherMunicipality) {
			t.Fatalf("death reported by 131016: %v, want ErrOtherMunicipality", err)
		}
		// a move-in by 131016 while alice has not moved out of 011002
		movein := ResidentChange{PersonHash: alice, Event: EventMoveIn, OccurredAt: t0, ReceivedAt: t0.Add(time.Hour), Terminal: "t-tokyo",
			Operator: "op9", RequestID: "a4", Municipality: "131016"}
		if _, err := s.ApplyResidentChange(ctx, movein, ChangePlan{Revoke: []PlannedRevocation{{CertSign, 3}}}); !errors.Is(err, ErrOtherMunicipality) {
			t.Fatalf("move-in without move-out: %v, want ErrOtherMunicipality", err)
		}
		// 011002 itself, with another person's hash
		wrong := counterReq(sig.Serial, "a5", 5, t0.Add(time.Hour))
		wrong.Terminal, wrong.Municipality, wrong.PersonHash = "t-sapporo", "011002", sum("someone else")
		if _, err := s.RevokeCertificate(ctx, wrong); !errors.Is(err, ErrPersonMismatch) {
			t.Fatalf("wrong person: %v, want ErrPersonMismatch", err)
		}
		if after := snapshot(t, s, []string{sig.Serial, auth.Serial}, alice); !reflect.DeepEqual(after, before) {
			t.Fatalf("a refused request changed the store:\nbefore %+v\nafter  %+v", before, after)
		}

		// the holder's own municipality, with the holder's hash: done
		own := counterReq(auth.Serial, "ok1", 0, t0.Add(time.Hour))
		own.Terminal, own.Municipality, own.PersonHash = "t-sapporo", "011002", alice
		if c, err := s.ReleaseHold(ctx, own); err != nil || c.State != StateDelivered {
			t.Fatalf("release by 011002: %v %+v", err, c)
		}
	})
}

// TestMoveInEstablishesResidence: the new municipality's move-in report
// (転入届) is accepted after the old one's move-out (転出届) and moves the
// authority with the person; reports for persons the CA does not know are
// accepted from any municipality (nothing of theirs to protect).
func TestMoveInEstablishesResidence(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrolIn(t, s, "t-tokyo", "131016")
		enrolIn(t, s, "t-sapporo", "011002")
		bob := sum("moves from 011002 to 131016")
		auth := delivered(t, s, "t-sapporo", bob, CertAuth)
		change := func(term, muni, event, req string, at time.Time) error {
			_, err := s.ApplyResidentChange(ctx, ResidentChange{PersonHash: bob, Event: event, OccurredAt: at, ReceivedAt: at, Terminal: term,
				Operator: "op1", RequestID: req, Municipality: muni}, ChangePlan{})
			return err
		}
		if err := change("t-sapporo", "011002", EventMoveOut, "m1", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if r, _ := s.Residence(ctx, bob); r.Municipality != "011002" || !r.MovedOut {
			t.Fatalf("after move-out: %+v", r)
		}
		if err := change("t-tokyo", "131016", EventMoveIn, "m2", t0.Add(2*time.Hour)); err != nil {
			t.Fatalf("move-in after move-out: %v", err)
		}
		if r, _ := s.Residence(ctx, bob); r.Municipality != "131016" || r.Basis != "moved-in" || r.MovedOut {
			t.Fatalf("after move-in: %+v", r)
		}
		// the old municipality no longer acts for bob ...
		if err := change("t-sapporo", "011002", "death", "m3", t0.Add(3*time.Hour)); !errors.Is(err, ErrOtherMunicipality) {
			t.Fatalf("death reported by the old municipality: %v", err)
		}
		old := counterReq(auth.Serial, "r1", 5, t0.Add(3*time.Hour))
		old.Terminal, old.Municipality, old.PersonHash = "t-sapporo", "011002", bob
		if _, err := s.RevokeCertificate(ctx, old); !errors.Is(err, ErrOtherMunicipality) {
			t.Fatalf("revoke by the old municipality: %v", err)
		}
		// ... the new one does, for the certificate the old one issued
		now := old
		now.Terminal, now.Municipality, now.RequestID = "t-tokyo", "131016", "r2"
		if c, err := s.RevokeCertificate(ctx, now); err != nil || c.State != StateRevoked {
			t.Fatalf("revoke by the new municipality: %v %+v", err, c)
		}
		// a person the CA does not know
		if _, err := s.ApplyResidentChange(ctx, ResidentChange{PersonHash: sum("unknown"), Event: "death", OccurredAt: t0, ReceivedAt: t0,
			Terminal: "t-tokyo", Operator: "op1", RequestID: "u1", Municipality: "131016"}, ChangePlan{}); err != nil {
			t.Fatalf("change for an unknown person: %v", err)
		}
	})
}
