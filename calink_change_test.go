package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/operator"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
	"madoguchi/ca-server/issuance/issuancetest"
	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// deliverSign has another terminal of the same municipality issue a signature certificate for
// resident code at the test CA (issuancetest's card cryptograms stand in for the card), and
// returns its serial: the certificates the counter then revokes, releases and changes.
func (c *testCA) deliverSign(t *testing.T, other *raclient.Client, reqID, code string) string {
	t.Helper()
	ctx := context.Background()
	ch, err := other.OpenChannel(ctx, "op-1")
	if err != nil {
		t.Fatal(err)
	}
	card := "CARD-" + code
	prep, err := other.Prepare(ctx, "op-1", wire.PrepareRequest{RequestID: reqID, ChannelID: ch.ChannelID, CardSerial: card,
		InitUpdateResponse: issuancetest.CardCryptogram(card, ch.HostChallenge), CertType: "sign",
		Applicant: wire.Applicant{ResidentCode: code, Name: "髙橋 一郎", BirthDate: "1985-03-15", Sex: "1", Address: "東京都千代田区千代田1-1", CardExpiry: "2031-02-28"}})
	if err != nil {
		t.Fatal(err)
	}
	is, err := c.st.Issuance(ctx, prep.IssuanceID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Confirm(ctx, "op-1", prep.IssuanceID, wire.ConfirmRequest{RequestID: "c-" + reqID,
		CardResponses: [][]byte{issuancetest.CardResponse(is.ChannelState, []byte("DONE"))}}); err != nil {
		t.Fatal(err)
	}
	return prep.Serial
}

// otherTerminal enrols a second terminal of municipality 131016 at the test CA.
func (c *testCA) otherTerminal(t *testing.T) *raclient.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	resp, err := raclient.Enroll(context.Background(), raclient.EnrollConfig{BaseURL: c.url, RootCAs: c.ca.Pool(), Token: c.token(t), Key: key, Operator: "installer"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := raclient.TLSCertificate(resp, key)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := raclient.New(raclient.Config{BaseURL: c.url, Certificate: pair, RootCAs: c.ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
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
	ca := startTestCA(t)
	other := ca.otherTerminal(t)
	held := ca.deliverSign(t, other, "seed-1", "90000000011")
	named := ca.deliverSign(t, other, "seed-2", "90000000022")
	ctx := context.Background()
	if _, err := ca.status.Hold(ctx, "callcentre1", held, "本人から電話で紛失の届出"); err != nil {
		t.Fatal(err)
	}

	// Started with the CA's URL and TLS CA certificate but not enrolled: no CA client yet.
	term, link, _, caAtStart, err := openTerminal(ctx, options{dataDir: t.TempDir(), caURL: ca.url, caCert: ca.caPEM})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	if caAtStart {
		t.Fatal("a CA client before enrolment")
	}
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

	// The supervisor enrols the terminal at run time (the settings screen's Enrol).
	if _, err := link.Enrol(ctx, ca.token(t)); err != nil {
		t.Fatal(err)
	}

	approved := func(kind workflow.Kind, code string) int64 {
		t.Helper()
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
	st, err := rc.ReleaseHold(ctx, approved(workflow.HoldRelease, "90000000011"), app.CertRef{Type: workflow.SignatureCert, Serial: held})
	if err != nil || st.State != "delivered" {
		t.Errorf("hold release after enrolment at run time: %+v, %v", st, err)
	}
	res, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: approved(workflow.Revocation, "90000000011"),
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
	if c, err := ca.st.CertificateBySerial(ctx, named); err != nil || c.State != store.StateRevoked {
		t.Errorf("the name change did not revoke the signature certificate at the CA: %+v, %v", c, err)
	}
}
