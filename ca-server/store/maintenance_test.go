package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCardMaintenanceRecords: the card's issuances are found by serial in any case with the
// issuing municipality; BeginMaintenance consumes the channel, refuses a reused request id or
// channel and, inside its transaction, a key destruction while a certificate for that key on
// the card is live (and accepts it once revoked or expired); FinishMaintenance is idempotent by
// confirmation id and erases the script.
func TestCardMaintenanceRecords(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		auth, err := begin(t, s, "t1", "r-auth", sum("person"), CertAuth, false, t0)
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, s, auth, t0)
		sign, err := begin(t, s, "t1", "r-sign", sum("person"), CertSign, false, t0)
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, s, sign, t0)

		got, err := s.CardIssuances(ctx, "CARD1")
		if err != nil || len(got) != 2 || got[0].Municipality != "131016" || !got[0].Delivered || !got[0].Live(t0) {
			t.Fatalf("card issuances: %+v %v", got, err)
		}
		if none, err := s.CardIssuances(ctx, "card2"); err != nil || len(none) != 0 {
			t.Fatalf("another card: %+v %v", none, err)
		}

		channel := func() string {
			ch := Channel{ID: "ch-" + randHex(t), TerminalID: "t1", HostChallenge: []byte("12345678"), CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
			if err := s.CreateChannel(ctx, ch); err != nil {
				t.Fatal(err)
			}
			return ch.ID
		}
		m := Maintenance{ID: "mt-1", TerminalID: "t1", RequestID: "m1", RequestSHA256: sum("m1"), OperatorID: "op1", ChannelID: channel(),
			CardSerial: "Card1", Operation: "key-destruction", Targets: []CertType{CertAuth}, Script: []byte(`["AA"]`), ChannelState: []byte("{}")}
		if err := s.BeginMaintenance(ctx, m, t0); !errors.Is(err, ErrCertificateLive) {
			t.Fatalf("destruction with a live certificate: %v", err)
		}
		if _, err := s.RevokeCertificate(ctx, StatusRequest{Serial: auth.Serial, Kind: "stop-using", Reason: 5, Channel: "counter", Terminal: "t1", Operator: "op1", At: t0}); err != nil {
			t.Fatal(err)
		}
		both := m
		both.ID, both.RequestID, both.Targets = "mt-0", "m0", []CertType{CertSign, CertAuth}
		if err := s.BeginMaintenance(ctx, both, t0); !errors.Is(err, ErrCertificateLive) {
			t.Fatalf("destruction of both keys with the signature certificate live: %v", err)
		}
		if err := s.BeginMaintenance(ctx, m, t0); err != nil {
			t.Fatalf("destruction after revocation: %v", err)
		}
		again := m
		again.ID = "mt-2"
		if err := s.BeginMaintenance(ctx, again, t0); !errors.Is(err, ErrDuplicateReq) {
			t.Fatalf("reused request id: %v", err)
		}
		again.RequestID = "m2"
		if err := s.BeginMaintenance(ctx, again, t0); !errors.Is(err, ErrChannelUsed) {
			t.Fatalf("reused channel: %v", err)
		}
		// An expired certificate does not hold its key back (facts filled: not_after known).
		if _, err := s.w.ExecContext(ctx, `UPDATE issuances SET not_after = ? WHERE id = ?`, t0.Add(-time.Hour).UnixNano(), sign.ID); err != nil {
			t.Fatal(err)
		}
		again.ChannelID, again.Targets = channel(), []CertType{CertSign}
		if err := s.BeginMaintenance(ctx, again, t0); err != nil {
			t.Fatalf("destruction of an expired certificate's key: %v", err)
		}

		done, err := s.FinishMaintenance(ctx, "mt-1", "m1.c", sum("responses"), t0.Add(time.Second))
		if err != nil || done.State != MaintenanceDone || done.Script != nil || done.DoneAt.IsZero() {
			t.Fatalf("finish: %+v %v", done, err)
		}
		if d2, err := s.FinishMaintenance(ctx, "mt-1", "m1.c", sum("other"), t0.Add(time.Minute)); err != nil || !d2.DoneAt.Equal(done.DoneAt) {
			t.Fatalf("repeated finish: %+v %v", d2, err)
		}
		if _, err := s.FinishMaintenance(ctx, "mt-1", "m1.x", sum("responses"), t0); !errors.Is(err, ErrState) {
			t.Fatalf("finish under another id: %v", err)
		}
		if got, err := s.MaintenanceByRequest(ctx, "t1", "m2"); err != nil || got.ID != "mt-2" || got.State != MaintenanceAuthorised || len(got.Targets) != 1 || got.Targets[0] != CertSign {
			t.Fatalf("by request: %+v %v", got, err)
		}
	})
}

// TestBeginIssuanceRefusesAnotherPersonsCard: issue 17, inside the store's transaction: a card
// with another person's certificate delivered, held or being issued is not begun for anyone
// else, while its own holder's renewal is; an issuance revoked before delivery does not make
// the card someone's. Seen failing on the old code (the second person's issuance was begun).
func TestBeginIssuanceRefusesAnotherPersonsCard(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		a, err := beginOn(t, s, "t1", "a-sign", sum("A"), CertSign, false, t0, "CARDX")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := beginOn(t, s, "t1", "b-auth", sum("B"), CertAuth, false, t0, "cardx"); !errors.Is(err, ErrCardOtherPerson) {
			t.Fatalf("B on A's card while A's is being issued: %v", err)
		}
		deliver(t, s, a, t0)
		if _, err := s.HoldCertificate(ctx, StatusRequest{Serial: a.Serial, Kind: "lost", Channel: "phone", Terminal: "local", Operator: "cc", Evidence: "call", At: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := beginOn(t, s, "t1", "b-sign", sum("B"), CertSign, true, t0, "CARDX"); !errors.Is(err, ErrCardOtherPerson) {
			t.Fatalf("B on A's card with A's certificate held: %v", err)
		}
		renew, err := beginOn(t, s, "t1", "a-renew", sum("A"), CertSign, true, t0, "CARDX")
		if err != nil {
			t.Fatalf("A's renewal on A's own card: %v", err)
		}
		// The renewal is aborted after its script was written: the held certificate of the
		// replaced key is revoked as superseded, once.
		if _, err := s.RevokeReplacedOnCard(ctx, renew.ID, t0); !errors.Is(err, ErrState) {
			t.Fatalf("revoke replaced before the renewal was aborted: %v", err)
		}
		if _, err := s.AbortIssuance(ctx, renew.ID, "abort-renew", t0); err != nil {
			t.Fatal(err)
		}
		for want := 1; want >= 0; want-- {
			if n, err := s.RevokeReplacedOnCard(ctx, renew.ID, t0); err != nil || n != want {
				t.Fatalf("revoke replaced: %d %v, want %d", n, err, want)
			}
		}
		if old, err := s.Issuance(ctx, a.ID); err != nil || old.State != StateRevoked || old.RevocationReason != ReasonSuperseded {
			t.Fatalf("A's held certificate after the aborted renewal: %s %d %v", old.State, old.RevocationReason, err)
		}
		// A failed issuance (revoked before delivery) on a blank card leaves it nobody's.
		c, err := beginOn(t, s, "t1", "c-sign", sum("C"), CertSign, false, t0, "CARDY")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AbortIssuance(ctx, c.ID, "abort-c", t0); err != nil {
			t.Fatal(err)
		}
		if _, err := beginOn(t, s, "t1", "d-sign", sum("D"), CertSign, false, t0, "CARDY"); err != nil {
			t.Fatalf("blank card after an aborted issuance: %v", err)
		}
	})
}
