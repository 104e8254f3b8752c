package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/workflow"
)

// TestHolderRecordsAtCounter: R02 II-8: the holder sees the revocations and hold releases made
// at this terminal for them, after the identity check on their own case; never another
// person's; only with the reception permission; the production is audited.
func TestHolderRecordsAtCounter(t *testing.T) {
	var ca *fakeCA
	f, cs, rc := counterWith(t, func(c *app.Config) { ca = newFakeCA(time.Now); c.CA = ca })
	ctx := context.Background()
	ca.state["C0FFEE"] = "held"
	rel := counterCase(t, rc, workflow.HoldRelease, "90000000011", licence)
	if _, err := rc.ReleaseHold(ctx, rel, app.CertRef{Type: workflow.SignatureCert, Serial: "C0FFEE"}); err != nil {
		t.Fatal(err)
	}
	rev := counterCase(t, rc, workflow.Revocation, "90000000011", licence)
	if _, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: rev, WrittenRequest: "失効申請書 No.3",
		Certificates: []app.CertRef{{Type: workflow.UserAuthCert, Serial: "1A2C"}}}); err != nil {
		t.Fatal(err)
	}
	other := counterCase(t, rc, workflow.LossReport, "90000000044", licence)
	if _, err := rc.Revoke(ctx, app.RevokeRequest{CaseID: other, WrittenRequest: "届出書 No.9",
		Certificates: []app.CertRef{{Type: workflow.SignatureCert, Serial: "BEEF"}}}); err != nil {
		t.Fatal(err)
	}

	// The request: a new case of the holder; refused until the identity check and approval.
	req, err := rc.OpenCase(ctx, app.CaseRequest{Kind: workflow.CertificateCopy, RecordCode: "90000000011"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.HolderRecords(ctx, req.ID); !errors.Is(err, apperr.InvalidTransition) {
		t.Fatalf("before the identity check: %v", err)
	}
	if _, err := rc.RecordIdentity(ctx, req.ID, workflow.Evidence{Document: workflow.MyNumberCard}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Approve(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.HolderRecords(ctx, req.ID); !errors.Is(err, apperr.PermissionDenied) {
		t.Fatalf("CS operator: %v", err)
	}
	rec, err := rc.HolderRecords(ctx, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Events) != 2 {
		t.Fatalf("events %+v", rec.Events)
	}
	if e := rec.Events[0]; e.Event != app.HolderReleased || e.Serial != "C0FFEE" || e.CertType != workflow.SignatureCert || e.CaseID != rel || e.CaseKind != workflow.HoldRelease {
		t.Errorf("hold release event %+v", e)
	}
	if e := rec.Events[1]; e.Event != app.HolderRevoked || e.Serial != "1A2C" || e.Reason != "5" || e.CaseID != rev || e.At.IsZero() {
		t.Errorf("revocation event %+v", e)
	}
	for _, e := range rec.Events {
		if e.Serial == "BEEF" {
			t.Error("another person's revocation shown")
		}
	}
	if last := f.lastAudit(t); last.Action != "holder.records" || last.Operator != "rc1" || last.Result != audit.ResultOK || last.Detail["events"] != "2" {
		t.Errorf("production not audited: %+v", last)
	}
}
