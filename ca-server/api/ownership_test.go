package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"madoguchi/ca-server/issuance/issuancetest"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// TestPrepareOnAnotherPersonsCardIs409Audited: issue 17 over the real mTLS listener. Resident
// A's certificate was delivered to a card; a prepare for resident B on that card is refused
// with 409 card_other_person (raclient.ErrCardOtherPerson), audited as one record of the
// terminal with that result and without any resident code, and changes nothing; a card the
// CA cannot account for is 409 card_state_unknown. Seen failing on the old code (B's prepare
// was answered with a script).
func TestPrepareOnAnotherPersonsCardIs409Audited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cert, enr := e.enrol(e.ca)
	c := e.client(cert)
	const a, b = "12345678901", "98765432109"
	onCard := func(reqID, code, card string, contents *wire.CardContents) wire.PrepareRequest {
		req := prepareReq(t, c, reqID, code)
		ch, err := c.OpenChannel(ctx, "op-1")
		if err != nil {
			t.Fatal(err)
		}
		req.ChannelID, req.CardSerial, req.CardContents = ch.ChannelID, card, contents
		req.InitUpdateResponse = issuancetest.CardCryptogram(card, ch.HostChallenge)
		return req
	}
	prep, err := c.Prepare(ctx, "op-1", onCard("a-1", a, "CARDA", nil))
	if err != nil {
		t.Fatal(err)
	}
	if prep.CardOwner != wire.CardOwnerBlank {
		t.Errorf("first prepare on blank stock: card owner %q", prep.CardOwner)
	}
	if _, err := c.Confirm(ctx, "op-1", prep.IssuanceID, e.confirmReq(prep.IssuanceID, "ca-1")); err != nil {
		t.Fatal(err)
	}
	reqB := onCard("b-1", b, "CARDA", &wire.CardContents{Certificates: []string{prep.Serial}, PINsSet: []string{"sign"}})
	before := e.snapshot()
	last := e.lastAudit()
	_, err = c.Prepare(ctx, "op-9", reqB)
	wantCode(t, "B on A's card", err, wire.CodeCardOtherPerson, http.StatusConflict)
	if !errors.Is(err, raclient.ErrCardOtherPerson) {
		t.Errorf("not raclient.ErrCardOtherPerson: %v", err)
	}
	rec := e.lastAudit()
	if rec.Seq != last.Seq+1 || rec.Action != "issuance.prepare" || rec.Result != string(wire.CodeCardOtherPerson) ||
		rec.Terminal != enr.TerminalID || rec.Operator != "op-9" {
		t.Fatalf("audit of the refusal: %+v", rec)
	}
	if strings.Contains(rec.Target+rec.Detail, a) || strings.Contains(rec.Target+rec.Detail, b) {
		t.Errorf("resident code in the audit record: %+v", rec)
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("the refused prepare changed the store:\n%s\n%s", before, after)
	}
	_, err = c.Prepare(ctx, "op-9", onCard("b-2", b, "CARD-NEW", &wire.CardContents{Certificates: []string{prep.Serial}}))
	wantCode(t, "A's certificate on another card", err, wire.CodeCardStateUnknown, http.StatusConflict)
	if !errors.Is(err, raclient.ErrCardStateUnknown) {
		t.Errorf("not raclient.ErrCardStateUnknown: %v", err)
	}
	if r := e.lastAudit(); r.Result != string(wire.CodeCardStateUnknown) {
		t.Errorf("audit of the unknown card: %+v", r)
	}
}
