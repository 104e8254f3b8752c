package app_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/resident"
	"madoguchi/assets/translations"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// TestResidentChangesDeliveredToCA records move-out, move-in, death and a planned name change
// and delivers the outbox to the CA (R02 II-3-1(2)): at least once with the outbox row's
// request id (a lost answer is resent with the same id and answered as a replay), in order per
// person (the move-in waits behind the failed move-out), not before the effective date, retried
// with backoff, marked sent, audited, and the CA is told the CS operator who recorded each.
func TestResidentChangesDeliveredToCA(t *testing.T) {
	var ca *fakeCA
	f, cs, rc := counterWith(t, func(c *app.Config) {
		ca = newFakeCA(time.Now)
		c.CA = ca
		c.ChangeRetry, c.ChangeRetryMax = time.Minute, 4*time.Minute
	})
	ctx := context.Background()
	for _, c := range []resident.Change{
		{RecordCode: "90000000011", Kind: resident.MoveOut, Effective: "2026-03-30"},
		{RecordCode: "90000000011", Kind: resident.MoveIn, Effective: "2026-03-31", NewAddress: "東京都架空区新町1-1"},
		{RecordCode: "90000000022", Kind: resident.Death, Effective: "2026-03-31"},
		{RecordCode: "90000000033", Kind: resident.NameChange, Effective: "2026-04-10", NewName: "𠮷野 次男", NewKana: "ヨシノ ツグオ"},
	} {
		if err := cs.RecordResidentChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	// Only CS operators send (TS Art. 3(4)); the refusal is audited and nothing reaches the CA.
	if _, err := rc.SendResidentChanges(ctx); !errors.Is(err, apperr.PermissionDenied) || len(ca.sentEvents()) != 0 {
		t.Fatalf("reception operator sending changes: %v, CA got %v", err, ca.sentEvents())
	}

	// First send: the CA cannot be reached for the move-out; the death's answer is lost.
	ca.failChange = []error{errUnreachable}
	ca.loseChangeAnswer = false
	out, err := cs.SendResidentChanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := func(ds []app.ChangeDelivery) []app.ChangeOutcome {
		var o []app.ChangeOutcome
		for _, d := range ds {
			o = append(o, d.Outcome)
		}
		return o
	}
	want := []app.ChangeOutcome{app.ChangeFailed, app.ChangeWaiting, app.ChangeDelivered, app.ChangeWaiting}
	if got := outcomes(out); !reflect.DeepEqual(got, want) {
		t.Fatalf("first send: %v, want %v (%+v)", got, want, out)
	}
	if !errors.Is(out[0].Err, apperr.CAUnavailable) || !errors.Is(out[0].Err, raclient.ErrUnavailable) || translations.ErrorText("ja", out[0].Err) == "" {
		t.Errorf("failure: %v", out[0].Err)
	}
	if !strings.Contains(out[1].Why, "earlier change") || !strings.Contains(out[3].Why, "not yet") {
		t.Errorf("waiting reasons: %q, %q", out[1].Why, out[3].Why)
	}
	if out[2].Event != "death" || !reflect.DeepEqual(out[2].Response.Revoked, []string{"sign", "auth"}) {
		t.Errorf("death: %+v", out[2])
	}
	pend, err := cs.PendingChanges(ctx)
	if err != nil || len(pend) != 3 || pend[0].Attempts != 1 || pend[0].LastError == "" || !pend[0].NextAttemptAt.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("pending after the first send: %+v %v", pend, err)
	}

	// Inside the backoff nothing is sent.
	before := len(ca.sentEvents())
	if out, err = cs.SendResidentChanges(ctx); err != nil || len(ca.sentEvents()) != before || !strings.Contains(out[0].Why, "retry after") {
		t.Fatalf("send inside the backoff: %+v %v (CA got %d more)", out, err, len(ca.sentEvents())-before)
	}

	// After the backoff, the move-out goes, but its answer is lost: at least once means the
	// next send repeats the same request id and the CA answers it as a replay.
	f.clock.Advance(time.Minute)
	ca.loseChangeAnswer = true
	if out, err = cs.SendResidentChanges(ctx); err != nil || out[0].Outcome != app.ChangeFailed {
		t.Fatalf("lost answer: %+v %v", out, err)
	}
	f.clock.Advance(2 * time.Minute) // backoff doubled after the second failure
	// The name change becomes due on its effective day (JST).
	f.clock.Set(time.Date(2026, 4, 9, 15, 0, 0, 0, time.UTC)) // 2026-04-10 00:00 JST
	cs = f.loginFinger(t, "cs1", "f-cs")                      // a new day, a new log-in
	out, err = cs.SendResidentChanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(out); !reflect.DeepEqual(got, []app.ChangeOutcome{app.ChangeDelivered, app.ChangeDelivered, app.ChangeDelivered}) {
		t.Fatalf("final send: %v (%+v)", got, out)
	}
	if !out[0].Response.Replayed {
		t.Error("the resent move-out was not answered as a replay of the same request id")
	}
	if pend, _ := cs.PendingChanges(ctx); len(pend) != 0 {
		t.Errorf("outbox not empty: %+v", pend)
	}

	// What the CA saw: in order per person, the same request id on every resend, the CS
	// operator as requester, and only code, event and time (the wire type has nothing else).
	sent := ca.sentEvents()
	wantSent := []string{"90000000011:move-out", "90000000022:death", "90000000011:move-out", "90000000011:move-out", "90000000011:move-in", "90000000033:name-changed"}
	if !reflect.DeepEqual(sent, wantSent) {
		t.Errorf("CA received %v, want %v", sent, wantSent)
	}
	if ca.changes[0].RequestID != ca.changes[2].RequestID || ca.changes[2].RequestID != ca.changes[3].RequestID || ca.changes[0].RequestID == ca.changes[1].RequestID {
		t.Errorf("request ids: %q %q %q %q", ca.changes[0].RequestID, ca.changes[1].RequestID, ca.changes[2].RequestID, ca.changes[3].RequestID)
	}
	for i, op := range ca.changeOps {
		if op != "cs1" {
			t.Errorf("change %d sent as operator %q, want the recording CS operator", i, op)
		}
	}
	if got := ca.changes[5].OccurredAt; !got.Equal(time.Date(2026, 4, 10, 0, 0, 0, 0, time.FixedZone("JST", 9*3600))) {
		t.Errorf("occurred_at %v", got)
	}

	// Audited: each delivery and each failure.
	recs, err := audit.List(ctx, f.t.DB(), audit.Filter{Operator: "cs1"})
	if err != nil {
		t.Fatal(err)
	}
	ok, failed := 0, 0
	for _, r := range recs {
		if r.Action == "resident.change_send" {
			switch r.Result {
			case audit.ResultOK:
				ok++
				if r.Detail["ca_change_id"] == "" || r.Detail["event"] == "" {
					t.Errorf("delivery record %+v", r)
				}
			case audit.ResultError:
				failed++
			}
		}
	}
	if ok != 4 || failed != 2 {
		t.Errorf("audit: %d deliveries, %d failures; want 4 and 2", ok, failed)
	}
	if _, err := audit.Verify(ctx, f.t.DB()); err != nil {
		t.Error(err)
	}
}

// TestResidentChangesWithoutCA: a terminal without a CA refuses to send (kind CAUnavailable)
// and keeps the outbox; the unattended sender records as operator "-".
func TestResidentChangesWithoutCA(t *testing.T) {
	f, cs, _ := counter(t)
	ctx := context.Background()
	if err := cs.RecordResidentChange(ctx, resident.Change{RecordCode: "90000000011", Kind: resident.Death, Effective: "2026-03-31"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.SendResidentChanges(ctx); !errors.Is(err, apperr.CAUnavailable) {
		t.Fatalf("send without a CA: %v", err)
	}
	if _, err := f.t.SendResidentChanges(ctx); !errors.Is(err, apperr.CAUnavailable) {
		t.Fatalf("unattended send without a CA: %v", err)
	}
	if p, _ := cs.PendingChanges(ctx); len(p) != 1 {
		t.Fatalf("outbox: %+v", p)
	}
}

// TestUnattendedChangeSender delivers as operator "-" (a GUI timer) and a CA refusal of the
// event is recorded as refused, kept with its error and retried later.
func TestUnattendedChangeSender(t *testing.T) {
	var ca *fakeCA
	f, cs, _ := counterWith(t, func(c *app.Config) { ca = newFakeCA(time.Now); c.CA = ca })
	ctx := context.Background()
	if err := cs.RecordResidentChange(ctx, resident.Change{RecordCode: "90000000011", Kind: resident.Correction, Effective: "2026-03-31"}); err != nil {
		t.Fatal(err)
	}
	ca.failChange = []error{revProblem(raclient.ErrUnknownEvent, 400, wire.CodeUnknownEvent)}
	out, err := f.t.SendResidentChanges(ctx)
	if err != nil || len(out) != 1 || out[0].Outcome != app.ChangeFailed || out[0].Event != "record-error" || !errors.Is(out[0].Err, apperr.InvalidInput) {
		t.Fatalf("refused change: %+v %v", out, err)
	}
	last := f.lastAudit(t)
	if last.Operator != "-" || last.Action != "resident.change_send" || last.Result != audit.ResultRefused {
		t.Errorf("audit %+v", last)
	}
	f.clock.Advance(time.Minute)
	if out, err = f.t.SendResidentChanges(ctx); err != nil || out[0].Outcome != app.ChangeDelivered {
		t.Fatalf("retry: %+v %v", out, err)
	}
}
