package status

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/revocation"
	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

var counter = Caller{TerminalID: "term-1", Municipality: "131016", OperatorID: "op1"}

// revokeReq is a counter revocation of a certificate of residentA.
func revokeReq(id, typ, kind string) wire.RevokeRequest {
	return revokeReqFor(residentA, id, typ, kind)
}

func revokeReqFor(code, id, typ, kind string) wire.RevokeRequest {
	return wire.RevokeRequest{RequestID: id, CertType: typ, Kind: kind, WrittenRequest: "form 2026-0042", IdentityDocument: "my number card", ResidentCode: code}
}

// TestRevokeAtCounterWithAcknowledgement: CPS §4.9.3.1, §4.9.9.
func TestRevokeAtCounterWithAcknowledgement(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, is := e.issue(t, residentA, store.CertSign, true)
	e.clk.Add(time.Hour)
	ack, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, strings.ToUpper(is.Serial), revokeReq("r1", "sign", "key-compromise"))
	if err != nil {
		t.Fatal(err)
	}
	want := wire.RevocationAck{Serial: is.Serial, CertType: "sign", Reason: 1, ReasonName: "keyCompromise", ReasonJa: "利用者の秘密鍵が危殆化した",
		ReasonEn: "holder key leaked, lost or damaged", Kind: "key-compromise", RevokedAt: t0.Add(time.Hour), WrittenAcknowledgement: true}
	if !reflect.DeepEqual(ack, want) {
		t.Fatalf("ack = %+v\nwant  %+v", ack, want)
	}
	// retry with the same request id: the same acknowledgement
	if again, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, is.Serial, revokeReq("r1", "sign", "key-compromise")); err != nil || !reflect.DeepEqual(again, ack) {
		t.Fatalf("replay: %v %+v", err, again)
	}
	if len(e.changes) == 0 || e.changes[0] != is.Serial {
		t.Fatalf("OnChange calls = %v", e.changes)
	}
}

// TestBadRequestsChangeNothing: each refusal is specific and leaves the
// store as it was (CPS §4.9: never undone; §4.9.3.1: counter only).
func TestBadRequestsChangeNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, good := e.issue(t, residentA, store.CertSign, true)
	_, revoked := e.issue(t, residentB, store.CertSign, true)
	_, pending := e.issue(t, residentB, store.CertAuth, false)
	if _, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, revoked.Serial, revokeReqFor(residentB, "r0", "sign", "stop-using")); err != nil {
		t.Fatal(err)
	}
	before := map[string]store.Certificate{}
	for _, s := range []string{good.Serial, revoked.Serial, pending.Serial} {
		before[s] = e.cert(t, s)
	}
	cases := []struct {
		name string
		do   func() error
		code wire.Code
	}{
		{"unknown serial", func() error {
			_, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, "7fffffff", revokeReq("a1", "sign", "stop-using"))
			return err
		}, wire.CodeNotFound},
		{"malformed serial", func() error {
			_, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, "zz", revokeReq("a2", "sign", "stop-using"))
			return err
		}, wire.CodeInvalidRequest},
		{"another CA", func() error {
			_, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, good.Serial, revokeReq("a3", "auth", "stop-using"))
			return err
		}, wire.CodeWrongCA},
		{"already revoked", func() error {
			_, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, revoked.Serial, revokeReqFor(residentB, "a4", "sign", "key-compromise"))
			return err
		}, wire.CodeAlreadyRevoked},
		{"key compromise online", func() error {
			_, err := e.svc.Revoke(ctx, counter, revocation.ChannelOnlineSigned, good.Serial, revokeReq("a5", "sign", "key-compromise"))
			return err
		}, wire.CodeChannelNotAllowed},
		{"card unusable online", func() error {
			_, err := e.svc.Revoke(ctx, counter, revocation.ChannelOnlineSigned, good.Serial, revokeReq("a6", "sign", "card-unusable"))
			return err
		}, wire.CodeChannelNotAllowed},
		{"CA compromise from a terminal", func() error {
			_, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, good.Serial, revokeReq("a7", "sign", "ca-compromise"))
			return err
		}, wire.CodeChannelNotAllowed},
		{"unknown kind", func() error {
			_, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, good.Serial, revokeReq("a8", "sign", "because"))
			return err
		}, wire.CodeInvalidRequest},
		{"no written request", func() error {
			r := revokeReq("a9", "sign", "stop-using")
			r.WrittenRequest = ""
			_, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, good.Serial, r)
			return err
		}, wire.CodeInvalidRequest},
		{"not delivered", func() error {
			_, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, pending.Serial, revokeReqFor(residentB, "a10", "auth", "stop-using"))
			return err
		}, wire.CodeInvalidState},
		{"release not held", func() error {
			_, err := e.svc.ReleaseHold(ctx, counter, good.Serial, wire.ReleaseHoldRequest{RequestID: "a11", CertType: "sign", IdentityDocument: "passport", ResidentCode: residentA})
			return err
		}, wire.CodeNotOnHold},
		{"release revoked", func() error {
			_, err := e.svc.ReleaseHold(ctx, counter, revoked.Serial, wire.ReleaseHoldRequest{RequestID: "a12", CertType: "sign", IdentityDocument: "passport", ResidentCode: residentB})
			return err
		}, wire.CodeAlreadyRevoked},
		{"hold revoked", func() error {
			_, err := e.svc.Hold(ctx, "callcentre1", revoked.Serial, "phone report")
			return err
		}, wire.CodeAlreadyRevoked},
		{"hold unknown", func() error {
			_, err := e.svc.Hold(ctx, "callcentre1", "abcdef", "phone report")
			return err
		}, wire.CodeNotFound},
		{"unknown event", func() error {
			_, err := e.svc.ResidentChange(ctx, counter, wire.ResidentChangeRequest{RequestID: "a13", ResidentCode: residentA, Event: "haircut", OccurredAt: t0})
			return err
		}, wire.CodeUnknownEvent},
		{"future change", func() error {
			_, err := e.svc.ResidentChange(ctx, counter, wire.ResidentChangeRequest{RequestID: "a14", ResidentCode: residentA, Event: "death", OccurredAt: t0.Add(time.Hour)})
			return err
		}, wire.CodeInvalidRequest},
		{"bad resident code", func() error {
			_, err := e.svc.ResidentChange(ctx, counter, wire.ResidentChangeRequest{RequestID: "a15", ResidentCode: "123", Event: "death", OccurredAt: t0})
			return err
		}, wire.CodeInvalidRequest},
	}
	for _, c := range cases {
		err := c.do()
		if wire.CodeOf(err) != c.code {
			t.Errorf("%s: err = %v, want code %s", c.name, err, c.code)
		}
	}
	for s, b := range before {
		if got := e.cert(t, s); !reflect.DeepEqual(got, b) {
			t.Errorf("%s changed:\n%+v\n%+v", s, got, b)
		}
	}
	// the local hold refusals were audited here (API requests are audited by ca-server/api)
	if r := e.lastAudit(t); r.Action != "certificate.hold" || r.Result != string(wire.CodeNotFound) {
		t.Fatalf("last audit = %+v", r)
	}
}

// TestHoldByPhoneReleaseAtCounter: CPS §4.9.13–16.
func TestHoldByPhoneReleaseAtCounter(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, is := e.issue(t, residentA, store.CertAuth, true)
	c, err := e.svc.Hold(ctx, "callcentre1", is.Serial, "holder reported card lost by phone")
	if err != nil || c.State != store.StateHeld {
		t.Fatalf("hold: %v %+v", err, c)
	}
	if r := e.lastAudit(t); r.Action != "certificate.hold" || r.Result != "ok" || r.Terminal != "local" || r.Operator != "callcentre1" {
		t.Fatalf("audit = %+v", r)
	}
	if _, err := e.svc.Hold(ctx, "callcentre1", is.Serial, "again"); wire.CodeOf(err) != wire.CodeAlreadyHeld {
		t.Fatalf("second hold: %v", err)
	}
	if _, err := e.svc.ReleaseHold(ctx, counter, is.Serial, wire.ReleaseHoldRequest{RequestID: "rel1", CertType: "auth", ResidentCode: residentA}); wire.CodeOf(err) != wire.CodeInvalidRequest {
		t.Fatalf("release without identity check: %v", err)
	}
	st, err := e.svc.ReleaseHold(ctx, counter, is.Serial, wire.ReleaseHoldRequest{RequestID: "rel1", CertType: "auth", IdentityDocument: "passport TK1234567", ResidentCode: residentA})
	if err != nil || st.State != "delivered" || st.HeldAt != nil {
		t.Fatalf("release: %v %+v", err, st)
	}
	// a hold lasts at most until the certificate expires
	_, is2 := e.issue(t, residentB, store.CertAuth, true)
	if _, err := e.svc.Hold(ctx, "callcentre1", is2.Serial, "lost"); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(5*365*24*time.Hour + 48*time.Hour)
	if _, err := e.svc.ReleaseHold(ctx, counter, is2.Serial, wire.ReleaseHoldRequest{RequestID: "rel2", CertType: "auth", IdentityDocument: "passport", ResidentCode: residentB}); wire.CodeOf(err) != wire.CodeCertificateExpired {
		t.Fatalf("release after expiry: %v", err)
	}
	if e.cert(t, is2.Serial).State != store.StateHeld {
		t.Fatal("state changed")
	}
}

// TestChangeDrivenRevocation: R02 II-3-1(2); CPS §4.9.1.1(2).
func TestChangeDrivenRevocation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, sigA := e.issue(t, residentA, store.CertSign, true)
	_, authA := e.issue(t, residentA, store.CertAuth, true)
	_, sigB := e.issue(t, residentB, store.CertSign, true)
	_, authB := e.issue(t, residentB, store.CertAuth, true)

	// A changes name: signature certificate revoked (reason 3), user-auth kept
	resp, err := e.svc.ResidentChange(ctx, counter, wire.ResidentChangeRequest{RequestID: "c1", ResidentCode: residentA, Event: "name-changed", OccurredAt: t0})
	if err != nil || !reflect.DeepEqual(resp.Revoked, []string{"sign"}) {
		t.Fatalf("name change: %v %+v", err, resp)
	}
	if c := e.cert(t, sigA.Serial); c.State != store.StateRevoked || c.RevocationReason != 3 {
		t.Fatalf("sign A = %+v", c)
	}
	if e.cert(t, authA.Serial).State != store.StateDelivered {
		t.Fatal("auth A revoked by a name change")
	}
	// A moves out; a move-in 10 days later keeps the user-auth certificate
	if resp, err = e.svc.ResidentChange(ctx, counter, wire.ResidentChangeRequest{RequestID: "c2", ResidentCode: residentA, Event: "move-out", OccurredAt: t0}); err != nil || len(resp.Deferred) != 1 {
		t.Fatalf("move-out: %v %+v", err, resp)
	}
	e.clk.Add(10 * 24 * time.Hour)
	if resp, err = e.svc.ResidentChange(ctx, counter, wire.ResidentChangeRequest{RequestID: "c3", ResidentCode: residentA, Event: "move-in", OccurredAt: e.clk.Now()}); err != nil || resp.Cancelled != 1 {
		t.Fatalf("move-in: %v %+v", err, resp)
	}
	// B moves out and does not move in within 30 days
	if _, err := e.svc.ResidentChange(ctx, counter, wire.ResidentChangeRequest{RequestID: "c4", ResidentCode: residentB, Event: "move-out", OccurredAt: e.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(30 * 24 * time.Hour)
	if n, err := e.svc.ApplyDue(ctx); err != nil || n != 0 {
		t.Fatalf("day 30: %d %v", n, err)
	}
	e.clk.Add(2 * 24 * time.Hour)
	if n, err := e.svc.ApplyDue(ctx); err != nil || n != 1 {
		t.Fatalf("day 32: %d %v", n, err)
	}
	if c := e.cert(t, authB.Serial); c.State != store.StateRevoked || c.RevocationReason != 5 {
		t.Fatalf("auth B = %+v", c)
	}
	if e.cert(t, authA.Serial).State != store.StateDelivered || e.cert(t, sigB.Serial).State != store.StateDelivered {
		t.Fatal("wrong certificates revoked")
	}
	if r := e.lastAudit(t); r.Action != "certificate.revoke.change-driven" || r.Target != authB.Serial {
		t.Fatalf("audit = %+v", r)
	}
	// emigration: both continue on the 戸籍の附票 path (current TS)
	if resp, err = e.svc.ResidentChange(ctx, counter, wire.ResidentChangeRequest{RequestID: "c5", ResidentCode: residentB, Event: "emigration", OccurredAt: e.clk.Now()}); err != nil || len(resp.Revoked) != 0 {
		t.Fatalf("emigration: %v %+v", err, resp)
	}
	// death revokes what is left (reason 5); the CA kept only hash, kind and time
	if resp, err = e.svc.ResidentChange(ctx, counter, wire.ResidentChangeRequest{RequestID: "c6", ResidentCode: residentB, Event: "death", OccurredAt: e.clk.Now()}); err != nil || !reflect.DeepEqual(resp.Revoked, []string{"sign"}) {
		t.Fatalf("death: %v %+v", err, resp)
	}
	person, _ := HMACPersons{Key: personKey}.PersonHash(ctx, residentB)
	chs, _ := e.st.ResidentChanges(ctx, person)
	if len(chs) != 3 {
		t.Fatalf("changes = %+v", chs)
	}
	// a replayed report changes nothing
	if resp, err = e.svc.ResidentChange(ctx, counter, wire.ResidentChangeRequest{RequestID: "c6", ResidentCode: residentB, Event: "death", OccurredAt: e.clk.Now()}); err != nil || !resp.Replayed {
		t.Fatalf("replay: %v %+v", err, resp)
	}
}

// TestScheduleAndArchive: CPS §4.9.7 (every 24 h, valid 72 h), RFC 5280
// §5.2.3 (numbers increase), TS Art. 17 (every CRL kept, found by date).
func TestScheduleAndArchive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tick := make(chan time.Time)
	done := make(chan error)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go e.svc.RunSchedule(sctx, tick, func(err error) { done <- err })
	step := func() {
		tick <- e.clk.Now()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	step() // first run publishes at once
	step() // nothing due
	e.clk.Add(23 * time.Hour)
	step()
	e.clk.Add(time.Hour)
	step() // 24 h: second CRL
	for _, series := range []string{"signature", "user-auth", "signature-arl", "user-auth-arl"} {
		ms, err := e.archive.List(series)
		if err != nil || len(ms) != 2 {
			t.Fatalf("%s: %v %d CRLs", series, err, len(ms))
		}
		if ms[0].Number.Int64() != 1 || ms[1].Number.Int64() != 2 {
			t.Fatalf("%s numbers %v %v", series, ms[0].Number, ms[1].Number)
		}
		if ms[1].NextUpdate.Sub(ms[1].ThisUpdate) != 72*time.Hour || !ms[1].ThisUpdate.Equal(t0.Add(24*time.Hour)) {
			t.Fatalf("%s times %v %v", series, ms[1].ThisUpdate, ms[1].NextUpdate)
		}
	}
	// on demand: at once, next number
	if ps, err := e.svc.Publish(ctx, "signature", TriggerOnDemand); err != nil || len(ps) != 2 || ps[0].Meta.Number.Int64() != 3 {
		t.Fatalf("on demand: %v %+v", err, ps)
	}
	// the archive answers by date: at t0+1h the first CRL was in force
	rc, m, err := e.svc.ArchivedCRL("signature", t0.Add(time.Hour))
	if err != nil || m.Number.Int64() != 1 {
		t.Fatalf("archive at: %v %+v", err, m)
	}
	rc.Close()
	if _, _, err := e.svc.ArchivedCRL("signature", t0.Add(-time.Hour)); err == nil {
		t.Fatal("CRL found before the first was issued")
	}
	if _, err := e.svc.Publish(ctx, "nosuch", TriggerOnDemand); !errors.Is(err, ErrUnknownCA) {
		t.Fatalf("unknown CA: %v", err)
	}
	rc, _, err = e.svc.CurrentCRL("signature")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if len(b) == 0 {
		t.Fatal("empty CRL")
	}
	_ = filepath.Join
}
