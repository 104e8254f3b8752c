package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"madoguchi/ca-server/status"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
	"time"
)

// authorityState is every row a revocation, release or resident change could touch.
func (e *env) authorityState() string {
	e.t.Helper()
	var s string
	if err := e.raw.QueryRow(`SELECT coalesce((SELECT group_concat(serial || ':' || state || ':' || coalesce(held_at, '') || ':' || coalesce(revoked_at, ''), ',') FROM issuances), '')
		|| '|' || (SELECT count(*) FROM status_requests) || '|' || (SELECT count(*) FROM resident_changes) || '|' || (SELECT count(*) FROM pending_revocations)`).Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	return e.snapshot() + "|" + s
}

// TestAuthorityPerMunicipalityOverMutualTLS drives the terminal revocation endpoints through
// the real handler and real terminal certificates: a holder issued through municipality
// 011002's terminal, an attacker holding a copied terminal key of municipality 131016.
//
// Attack: the 131016 terminal revokes the 011002 resident's certificate, releases its hold
// and reports the resident's death; the 011002 terminal revokes with a resident-record code
// that is not the holder's. On the code before this change the attack succeeded: the three
// requests of 131016 answered 200 and revoked the certificate (the revoke and the death
// report each alone revoked it nationwide), and no resident-record code was asked for.
// Now each is refused with 403 and its own code, audited with that result (no code in the
// record), and the store is unchanged. Last, a move (move-out by 011002, then move-in by
// 131016) hands the authority over to the new municipality.
func TestAuthorityPerMunicipalityOverMutualTLS(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// the person key of the API's issuance service (BasicApplicantChecker: HMAC under 32 zero bytes)
	svc, err := status.New(status.Config{Store: e.st, Audit: e.alog, Persons: status.HMACPersons{Key: make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.MountRevocation(svc)

	const holder, other = "12345678901", "10987654321"
	sapporoCert, _ := e.enrolIn("011002")
	tokyoCert, _ := e.enrolIn("131016")
	sapporo, tokyo := e.client(sapporoCert), e.client(tokyoCert)
	prep, err := sapporo.Prepare(ctx, "op-1", prepareReq(t, sapporo, "req-1", holder))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sapporo.Confirm(ctx, "op-1", prep.IssuanceID, e.confirmReq(prep.IssuanceID, "conf-1")); err != nil {
		t.Fatal(err)
	}
	serial := prep.Serial
	revoke := func(reqID, code string) wire.RevokeRequest {
		return wire.RevokeRequest{RequestID: reqID, CertType: "sign", Kind: "stop-using", WrittenRequest: "form 2026-0042",
			IdentityDocument: "my number card", ResidentCode: code}
	}
	refused := func(what string, err error, code wire.Code, action, target string) {
		t.Helper()
		wantCode(t, what, err, code, http.StatusForbidden)
		r := e.lastAudit()
		if r.Action != action || r.Result != string(code) || r.Target != target || r.Operator != "op-9" {
			t.Fatalf("%s: audit record %+v", what, r)
		}
		if strings.Contains(r.Target+r.Detail, holder) || strings.Contains(r.Target+r.Detail, other) {
			t.Fatalf("%s: the audit record names a resident-record code: %+v", what, r)
		}
	}

	before := e.authorityState()
	_, err = tokyo.Revoke(ctx, "op-9", serial, revoke("attack-1", holder))
	refused("revoke from 131016", err, wire.CodeOtherMunicipality, "certificate.revoke", serial)
	_, err = tokyo.ReportResidentChange(ctx, "op-9", wire.ResidentChangeRequest{RequestID: "attack-2", ResidentCode: holder, Event: "death", OccurredAt: time.Now()})
	refused("death reported by 131016", err, wire.CodeOtherMunicipality, "resident.change", "request:attack-2")
	_, err = tokyo.ReportResidentChange(ctx, "op-9", wire.ResidentChangeRequest{RequestID: "attack-3", ResidentCode: holder, Event: "move-in", OccurredAt: time.Now()})
	refused("move-in by 131016 without a move-out", err, wire.CodeOtherMunicipality, "resident.change", "request:attack-3")
	// the refusal comes before anything else about the certificate is revealed (not wrong_ca)
	wrongType := revoke("attack-1b", holder)
	wrongType.CertType = "auth"
	_, err = tokyo.Revoke(ctx, "op-9", serial, wrongType)
	refused("revoke from 131016 naming the other CA", err, wire.CodeOtherMunicipality, "certificate.revoke", serial)
	_, err = sapporo.Revoke(ctx, "op-9", serial, revoke("attack-4", other))
	refused("revoke with another person's code", err, wire.CodePersonMismatch, "certificate.revoke", serial)
	if after := e.authorityState(); after != before {
		t.Fatalf("refused requests changed the store:\nbefore %s\nafter  %s", before, after)
	}

	if _, err := svc.Hold(ctx, "callcentre1", serial, "holder reported the card lost by phone"); err != nil {
		t.Fatal(err)
	}
	before = e.authorityState()
	_, err = tokyo.ReleaseHold(ctx, "op-9", serial, wire.ReleaseHoldRequest{RequestID: "attack-5", CertType: "sign", IdentityDocument: "passport", ResidentCode: holder})
	refused("release from 131016", err, wire.CodeOtherMunicipality, "certificate.release-hold", serial)
	_, err = sapporo.ReleaseHold(ctx, "op-9", serial, wire.ReleaseHoldRequest{RequestID: "attack-6", CertType: "sign", IdentityDocument: "passport", ResidentCode: other})
	refused("release with another person's code", err, wire.CodePersonMismatch, "certificate.release-hold", serial)
	_, err = sapporo.ReleaseHold(ctx, "op-9", serial, wire.ReleaseHoldRequest{RequestID: "attack-7", CertType: "sign", IdentityDocument: "passport"})
	wantCode(t, "release without a code", err, wire.CodeInvalidRequest, http.StatusBadRequest)
	if after := e.authorityState(); after != before {
		t.Fatalf("refused requests changed the store:\nbefore %s\nafter  %s", before, after)
	}

	// the holder's own municipality, with the holder's code
	if st, err := sapporo.ReleaseHold(ctx, "op-1", serial, wire.ReleaseHoldRequest{RequestID: "rel-1", CertType: "sign", IdentityDocument: "passport", ResidentCode: holder}); err != nil || st.State != "delivered" {
		t.Fatalf("release by 011002: %v %+v", err, st)
	}
	if ack, err := sapporo.Revoke(ctx, "op-1", serial, revoke("rv-1", holder)); err != nil || ack.Reason != 5 {
		t.Fatalf("revoke by 011002: %v %+v", err, ack)
	}
	if r := e.lastAudit(); r.Action != "certificate.revoke" || r.Result != "ok" || strings.Contains(r.Target+r.Detail, holder) {
		t.Fatalf("audit of the revocation: %+v", r)
	}

	// A move: the old municipality reports the move-out (転出届), the new one the move-in
	// (転入届), which the CA accepts only after the move-out; the authority moves with the
	// person (R02 II-3-1(2); DOMAIN §5).
	const mover = "22222222222"
	prep2, err := sapporo.Prepare(ctx, "op-1", prepareReq(t, sapporo, "req-2", mover))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sapporo.Confirm(ctx, "op-1", prep2.IssuanceID, e.confirmReq(prep2.IssuanceID, "conf-2")); err != nil {
		t.Fatal(err)
	}
	if _, err := sapporo.ReportResidentChange(ctx, "op-1", wire.ResidentChangeRequest{RequestID: "out-1", ResidentCode: mover, Event: "move-out", OccurredAt: time.Now()}); err != nil {
		t.Fatalf("move-out reported by 011002: %v", err)
	}
	in, err := tokyo.ReportResidentChange(ctx, "op-2", wire.ResidentChangeRequest{RequestID: "in-1", ResidentCode: mover, Event: "move-in", OccurredAt: time.Now()})
	if err != nil || len(in.Revoked) != 1 || in.Revoked[0] != "sign" {
		t.Fatalf("move-in reported by 131016 after the move-out: %v %+v", err, in)
	}
	_, err = sapporo.Revoke(ctx, "op-9", prep2.Serial, revoke("late-1", mover))
	refused("revoke by the old municipality after the move", err, wire.CodeOtherMunicipality, "certificate.revoke", prep2.Serial)
	if _, err := tokyo.Revoke(ctx, "op-2", prep2.Serial, revoke("now-1", mover)); !errors.Is(err, raclient.ErrAlreadyRevoked) {
		t.Fatalf("revoke by the new municipality: %v, want already_revoked (the move-in revoked the signature certificate)", err)
	}
}
