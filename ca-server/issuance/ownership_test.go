package issuance_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/issuance/issuancetest"
	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// cardReq opens a channel and answers it like the genuine card with serial card.
func (r *rig) cardReq(t *testing.T, reqID, code, card string, typ store.CertType, contents *wire.CardContents) wire.PrepareRequest {
	t.Helper()
	ch, err := r.svc.OpenChannel(context.Background(), r.caller)
	if err != nil {
		t.Fatal(err)
	}
	return wire.PrepareRequest{RequestID: reqID, ChannelID: ch.ChannelID, CardSerial: card, CardContents: contents,
		InitUpdateResponse: issuancetest.CardCryptogram(card, ch.HostChallenge), CertType: string(typ), Applicant: applicant(code)}
}

// deliver prepares and confirms one certificate and returns its serial.
func (r *rig) deliver(t *testing.T, req wire.PrepareRequest, wantOwner string) string {
	t.Helper()
	ctx := context.Background()
	resp, err := r.svc.Prepare(ctx, r.caller, req)
	if err != nil {
		t.Fatalf("prepare %s: %v", req.RequestID, err)
	}
	if resp.CardOwner != wantOwner {
		t.Fatalf("prepare %s: card owner %q, want %q", req.RequestID, resp.CardOwner, wantOwner)
	}
	if _, err := r.svc.Confirm(ctx, r.caller, resp.IssuanceID, confirmReq(r, t, resp.IssuanceID, "c-"+req.RequestID)); err != nil {
		t.Fatal(err)
	}
	return resp.Serial
}

// TestPrepareRefusesAnotherPersonsCard is issue 17 defect 1 at the CA: resident A's
// certificates were delivered to a card and A's signature certificate is on hold; a prepare
// for resident B on the same card is refused with card_other_person before any key is
// generated, whether the terminal reports what it read on the card or not, and A's
// certificates stay as they were. Seen failing on the old code: B's prepare was answered with
// a script for the card.
func TestPrepareRefusesAnotherPersonsCard(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const a, b, card = "12345678901", "98765432109", "CARD00A1"
	authA := r.deliver(t, r.cardReq(t, "a-auth", a, card, store.CertAuth, nil), wire.CardOwnerBlank)
	signA := r.deliver(t, r.cardReq(t, "a-sign", a, card, store.CertSign, &wire.CardContents{Certificates: []string{authA}, PINsSet: []string{"auth"}}), wire.CardOwnerApplicant)
	if _, err := r.st.HoldCertificate(ctx, store.StatusRequest{Serial: signA, Kind: "lost", Channel: "phone", Terminal: "local", Operator: "cc-1", Evidence: "phone report", At: r.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	generated := r.keys.Generated
	read := &wire.CardContents{Certificates: []string{authA}, PINsSet: []string{"auth", "sign"}}
	for i, tc := range []struct {
		name     string
		typ      store.CertType
		contents *wire.CardContents
	}{
		{"terminal read A's certificate", store.CertSign, read},
		{"terminal read nothing (older terminal)", store.CertSign, nil},
		{"terminal reports the card blank", store.CertAuth, &wire.CardContents{}},
		{"renewal flag does not help", store.CertAuth, read},
	} {
		req := r.cardReq(t, fmt.Sprintf("b-%d", i), b, card, tc.typ, tc.contents)
		req.Supersedes = tc.name == "renewal flag does not help"
		if _, err := r.svc.Prepare(ctx, r.caller, req); code(err) != wire.CodeCardOtherPerson {
			t.Fatalf("%s: prepare for B on A's card: %v, want %s", tc.name, err, wire.CodeCardOtherPerson)
		}
	}
	if r.keys.Generated != generated {
		t.Errorf("%d keys generated for refused prepares", r.keys.Generated-generated)
	}
	recs, err := r.st.CardIssuances(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]store.State{}
	for _, c := range recs {
		states[c.Serial] = c.State
	}
	if len(recs) != 2 || states[signA] != store.StateHeld || states[authA] != store.StateDelivered {
		t.Fatalf("card records after the refusals: %+v", recs)
	}

	// The applicant's own card: renewal with A's certificates read on it is allowed.
	renew := r.cardReq(t, "a-renew", a, card, store.CertAuth, read)
	renew.Supersedes = true
	resp, err := r.svc.Prepare(ctx, r.caller, renew)
	if err != nil || resp.CardOwner != wire.CardOwnerApplicant {
		t.Fatalf("renewal on A's own card: %+v %v", resp.CardOwner, err)
	}
	again, err := r.svc.Prepare(ctx, r.caller, renew)
	if err != nil || again.CardOwner != wire.CardOwnerApplicant || again.IssuanceID != resp.IssuanceID {
		t.Fatalf("replayed renewal: %+v %v", again.CardOwner, err)
	}
}

// TestPrepareRefusesCardOfUnknownState: a card whose content the CA cannot explain is not
// written: certificates it did not deliver to this card, or PINs set on a card it has no
// record of. Blank stock is written and answered "blank".
func TestPrepareRefusesCardOfUnknownState(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const a, b = "12345678901", "98765432109"
	authA := r.deliver(t, r.cardReq(t, "a-auth", a, "CARD00A1", store.CertAuth, nil), wire.CardOwnerBlank)
	for i, tc := range []struct {
		name     string
		code     string
		card     string
		contents *wire.CardContents
		want     wire.Code
	}{
		{"A's certificate read on another card", a, "CARD00B2", &wire.CardContents{Certificates: []string{authA}}, wire.CodeCardStateUnknown},
		{"A's certificate read on another card, for B", b, "CARD00B2", &wire.CardContents{Certificates: []string{authA}}, wire.CodeCardStateUnknown},
		{"a certificate the CA never issued", b, "CARD00B3", &wire.CardContents{Certificates: []string{"7fff0001"}}, wire.CodeCardStateUnknown},
		{"PINs set on a card without record", b, "CARD00B4", &wire.CardContents{PINsSet: []string{"sign"}}, wire.CodeCardStateUnknown},
		{"unknown certificate on A's own card", a, "CARD00A1", &wire.CardContents{Certificates: []string{authA, "7fff0002"}}, wire.CodeCardStateUnknown},
	} {
		req := r.cardReq(t, fmt.Sprintf("r-%d", i), tc.code, tc.card, store.CertSign, tc.contents)
		if _, err := r.svc.Prepare(ctx, r.caller, req); code(err) != tc.want {
			t.Fatalf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	for i, bad := range []*wire.CardContents{
		{Certificates: []string{"1", "2", "3"}}, {Certificates: []string{""}}, {Certificates: []string{"xyz"}},
		{Certificates: []string{strings.Repeat("a", 41)}}, {PINsSet: []string{"admin"}}, {PINsSet: []string{"sign", "auth", "sign"}},
	} {
		if _, err := r.svc.Prepare(ctx, r.caller, r.cardReq(t, fmt.Sprintf("bad-%d", i), b, "CARD00B5", store.CertSign, bad)); code(err) != wire.CodeInvalidRequest {
			t.Errorf("card contents %+v: %v, want %s", bad, err, wire.CodeInvalidRequest)
		}
	}
	r.deliver(t, r.cardReq(t, "b-blank", b, "CARD00B5", store.CertSign, &wire.CardContents{}), wire.CardOwnerBlank)
}

var _ issuance.CardRecords = (*store.SQLite)(nil)

// TestAbortedRenewalOnWrittenCardRevokesReplacedKey: issue 17, "a failed write never leaves a
// valid or held certificate without its key". A renewal on the holder's own card whose script
// reached FINALIZE (card_written) and was then aborted may have replaced the old key: the old
// certificate on that card is revoked as superseded (reason 4). Without card_written, or for
// a renewal onto another card, the old certificate stays as it was. Seen failing on the old
// code (the old certificate stayed delivered).
func TestAbortedRenewalOnWrittenCardRevokesReplacedKey(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const a, card = "12345678901", "CARD00A1"
	old := r.deliver(t, r.cardReq(t, "a-sign", a, card, store.CertSign, nil), wire.CardOwnerBlank)
	state := func(serial string) (store.State, int) {
		t.Helper()
		recs, err := r.st.CardIssuances(ctx, card)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range recs {
			if c.Serial == serial {
				is, err := r.st.Issuance(ctx, c.IssuanceID)
				if err != nil {
					t.Fatal(err)
				}
				return is.State, is.RevocationReason
			}
		}
		t.Fatalf("no record of %s on the card", serial)
		return "", 0
	}
	renew := func(reqID, onCard string) wire.PrepareResponse {
		t.Helper()
		req := r.cardReq(t, reqID, a, onCard, store.CertSign, &wire.CardContents{PINsSet: []string{"sign"}})
		if onCard != card {
			req.CardContents = &wire.CardContents{}
		}
		req.Supersedes = true
		resp, err := r.svc.Prepare(ctx, r.caller, req)
		if err != nil {
			t.Fatalf("renewal %s: %v", reqID, err)
		}
		return resp
	}
	// aborted before the card was written: the old certificate stays valid
	p1 := renew("renew-1", card)
	if _, err := r.svc.Abort(ctx, r.caller, p1.IssuanceID, wire.AbortRequest{RequestID: "ab-1"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := state(old); st != store.StateDelivered {
		t.Fatalf("old certificate after an abort before writing: %s", st)
	}
	// a renewal onto a new card, written and aborted: the old card keeps its key
	p2 := renew("renew-2", "CARD00A2")
	if _, err := r.svc.Abort(ctx, r.caller, p2.IssuanceID, wire.AbortRequest{RequestID: "ab-2", CardWritten: true}); err != nil {
		t.Fatal(err)
	}
	if st, _ := state(old); st != store.StateDelivered {
		t.Fatalf("old certificate after an aborted renewal onto another card: %s", st)
	}
	// written on the same card and aborted: the replaced key's certificate is revoked
	if _, err := r.st.HoldCertificate(ctx, store.StatusRequest{Serial: old, Kind: "lost", Channel: "phone", Terminal: "local", Operator: "cc-1", Evidence: "phone report", At: r.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	p3 := renew("renew-3", card)
	for range 2 { // a retried abort changes nothing more
		st, err := r.svc.Abort(ctx, r.caller, p3.IssuanceID, wire.AbortRequest{RequestID: "ab-3", CardWritten: true})
		if err != nil || st.State != "revoked" || *st.RevocationReason != store.ReasonDestroyedBeforeDelivery {
			t.Fatalf("abort of the written renewal: %+v %v", st, err)
		}
	}
	if st, reason := state(old); st != store.StateRevoked || reason != store.ReasonSuperseded {
		t.Fatalf("held certificate whose key the aborted renewal replaced: %s reason %d, want revoked reason 4", st, reason)
	}
}
