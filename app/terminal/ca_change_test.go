package terminal

import (
	"context"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/operator"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
	"madoguchi/ca-server/store"
	"madoguchi/internal/testca"
)

// counterOperator sets up a fresh terminal: supervisor "sup" and operator "rc1" (reception
// and CS, password-exempt, logged in) with the fixture register imported.
func counterOperator(t *testing.T, term *app.Terminal) *app.Session {
	t.Helper()
	ctx := context.Background()
	const supPass, rcPass = "supervisor-pass-1", "reception-pass-1"
	if err := term.Bootstrap(ctx, app.BootstrapRequest{ID: "sup", Name: "管理 太郎", Password: supPass, ExemptReason: "指紋装置の設置前"}); err != nil {
		t.Fatal(err)
	}
	sup, err := term.LoginPassword(ctx, "sup", supPass)
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.CreateOperator(ctx, "rc1", "受付 花子"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []operator.Permission{operator.Reception, operator.CS} {
		if err := sup.Grant(ctx, "rc1", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := sup.GrantPasswordExemption(ctx, "rc1", "指紋の読み取りが困難", rcPass); err != nil {
		t.Fatal(err)
	}
	rc, err := term.LoginPassword(ctx, "rc1", rcPass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.ImportResidentFixtures(ctx); err != nil {
		t.Fatal(err)
	}

	return rc
}

// TestCAChangeReachesEveryProcedure (issue 16): a terminal started before it was enrolled
// (no CA client at start) is enrolled at run time, as a supervisor does on the settings
// screen; then a hold release, a counter revocation and a resident change must all reach
// the CA without a restart.
//
// On the code before this change it failed: issuance and card maintenance followed the CA
// link, but revocation, hold release and the outbox used app.Config.CA, fixed at start, and
// were refused with "no CA configured" until the terminal was restarted.
func TestCAChangeReachesEveryProcedure(t *testing.T) {
	ca := testca.Start(t)
	other := ca.OtherTerminal(t)
	held := ca.DeliverSign(t, other, "seed-1", "90000000011")
	named := ca.DeliverSign(t, other, "seed-2", "90000000022")
	ctx := context.Background()
	if _, err := ca.Status.Hold(ctx, "callcentre1", held, "本人から電話で紛失の届出"); err != nil {
		t.Fatal(err)
	}

	// Started with the CA's URL and TLS CA certificate but not enrolled: no CA client yet.
	tm, err := Open(ctx, Options{DataDir: t.TempDir(), CAURL: ca.URL, CACert: ca.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tm.Close() })
	term, link := tm.Domain, tm.Link
	if tm.CAAtStart {
		t.Fatal("a CA client before enrolment")
	}
	rc := counterOperator(t, term)

	// The supervisor enrols the terminal at run time (the settings screen's Enrol).
	if _, err := link.Enrol(ctx, ca.Token(t)); err != nil {
		t.Fatal(err)
	}

	st, err := rc.ReleaseHold(ctx, counterCaseE2E(t, rc, workflow.HoldRelease, "90000000011"), app.CertRef{Type: workflow.SignatureCert, Serial: held})
	if err != nil || st.State != "delivered" {
		t.Errorf("hold release after enrolment at run time: %+v, %v", st, err)
	}
	res, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: counterCaseE2E(t, rc, workflow.Revocation, "90000000011"),
		Certificates: []app.CertRef{{Type: workflow.SignatureCert, Serial: held}}, WrittenRequest: "失効申請書 No.1"})
	if err != nil || len(res.Acks) != 1 || res.Acks[0].Reason != 5 {
		t.Errorf("revocation after enrolment at run time: %+v, %v", res, err)
	}
	yesterday := time.Now().In(time.FixedZone("JST", 9*3600)).AddDate(0, 0, -1).Format("2006-01-02")
	if err := rc.RecordResidentChange(ctx, resident.Change{RecordCode: "90000000022", Kind: resident.NameChange, Effective: yesterday,
		NewName: "佐藤 花子", NewKana: "サトウ ハナコ"}); err != nil {
		t.Fatal(err)
	}
	ds, err := rc.SendResidentChanges(ctx)
	if err != nil || len(ds) != 1 || ds[0].Outcome != app.ChangeDelivered {
		t.Fatalf("resident change after enrolment at run time: %+v, %v", ds, err)
	}
	if c, err := ca.Store.CertificateBySerial(ctx, named); err != nil || c.State != store.StateRevoked {
		t.Errorf("the name change did not revoke the signature certificate at the CA: %+v, %v", c, err)
	}
}

// TestOutboxWaitsForTheCA (issue 16): the outbox loop of a terminal started without a CA
// runs (Run) and waits for one; a resident change recorded before enrolment reaches the CA
// once the supervisor enrols the terminal, without a restart and without a clerk's "send".
//
// On the code before this change the loop was started only when a CA client existed at
// start, so the change stayed in the outbox until a restart.
func TestOutboxWaitsForTheCA(t *testing.T) {
	ca := testca.Start(t)
	named := ca.DeliverSign(t, ca.OtherTerminal(t), "seed-1", "90000000022")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tm, err := Open(ctx, Options{DataDir: t.TempDir(), CAURL: ca.URL, CACert: ca.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tm.Close() })
	rc := counterOperator(t, tm.Domain)
	yesterday := time.Now().In(time.FixedZone("JST", 9*3600)).AddDate(0, 0, -1).Format("2006-01-02")
	if err := rc.RecordResidentChange(ctx, resident.Change{RecordCode: "90000000022", Kind: resident.NameChange, Effective: yesterday,
		NewName: "佐藤 花子", NewKana: "サトウ ハナコ"}); err != nil {
		t.Fatal(err)
	}
	tm.Run(ctx) // no CA yet: the outbox loop waits
	if _, err := tm.Link.Enrol(ctx, ca.Token(t)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) { // bounds a hang only (the loop ticks every minute)
		p, err := rc.PendingChanges(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox loop did not deliver after enrolment: %+v", p)
		}
	}
	if c, err := ca.Store.CertificateBySerial(ctx, named); err != nil || c.State != store.StateRevoked {
		t.Errorf("the name change did not revoke the signature certificate at the CA: %+v, %v", c, err)
	}
}

// TestCAURLChangeReachesEveryProcedure (issue 16): the CA moves to another address; the
// supervisor changes the CA URL on the settings screen while the terminal runs (the old
// address no longer answers); revocation and the outbox reach the CA at the new address
// without a restart.
//
// On the code before this change revocation and the outbox kept the client of the start, which
// still dialled the old address: both failed with kind CAUnavailable until a restart.
func TestCAURLChangeReachesEveryProcedure(t *testing.T) {
	ca := testca.Start(t)
	other := ca.OtherTerminal(t)
	revoked := ca.DeliverSign(t, other, "seed-1", "90000000011")
	named := ca.DeliverSign(t, other, "seed-2", "90000000022")
	ctx := context.Background()
	dir := t.TempDir()
	first, err := Open(ctx, Options{DataDir: dir, CAURL: ca.URL, CACert: ca.CAPEM, EnrolToken: ca.Token(t)})
	if err != nil || first.Report.EnrolFailed != nil || first.Report.SettingsFailed != nil {
		t.Fatalf("enrolment at first start: %v %v", err, first.Report)
	}
	first.Close()
	tm, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tm.Close() })
	if !tm.CAAtStart {
		t.Fatal("no CA client at start after enrolment")
	}
	rc := counterOperator(t, tm.Domain)

	moved := ca.Listen(t)
	ca.Srv.Close() // the old address no longer answers
	if err := tm.Link.SetCAURL(ctx, moved); err != nil {
		t.Fatal(err)
	}
	id := counterCaseE2E(t, rc, workflow.Revocation, "90000000011")
	res, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: id, Certificates: []app.CertRef{{Type: workflow.SignatureCert, Serial: revoked}},
		WrittenRequest: "失効申請書 No.2"})
	if err != nil || len(res.Acks) != 1 {
		t.Errorf("revocation after the CA URL changed: %+v, %v", res, err)
	}
	yesterday := time.Now().In(time.FixedZone("JST", 9*3600)).AddDate(0, 0, -1).Format("2006-01-02")
	if err := rc.RecordResidentChange(ctx, resident.Change{RecordCode: "90000000022", Kind: resident.Death, Effective: yesterday}); err != nil {
		t.Fatal(err)
	}
	ds, err := rc.SendResidentChanges(ctx)
	if err != nil || len(ds) != 1 || ds[0].Outcome != app.ChangeDelivered {
		t.Fatalf("resident change after the CA URL changed: %+v, %v", ds, err)
	}
	if c, err := ca.Store.CertificateBySerial(ctx, named); err != nil || c.State != store.StateRevoked {
		t.Errorf("the death did not revoke the certificate at the CA: %+v, %v", c, err)
	}
}

// counterCaseE2E opens an approved case of kind for record code, the identity checked.
func counterCaseE2E(t *testing.T, rc *app.Session, kind workflow.Kind, code string) int64 {
	t.Helper()
	ctx := context.Background()
	c, err := rc.OpenCase(ctx, app.CaseRequest{Kind: kind, RecordCode: code})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.RecordIdentity(ctx, c.ID, workflow.Evidence{Document: workflow.MyNumberCard}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Approve(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	return c.ID
}
