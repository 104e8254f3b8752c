package app_test

import (
	"context"
	"errors"
	"testing"

	"madoguchi/app"
	"madoguchi/app/audit"
	"madoguchi/app/operator"
)

// TestRecordPrinted: a printed document is in the operator's history with its case, kind and
// job number; a failed print is recorded as an error with the reason, never the content.
func TestRecordPrinted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := f.login(t, "rc1", "f-rc", operator.Reception)
	if err := rc.RecordPrinted(ctx, 42, app.DocumentIssuanceNotice, 7, nil); err != nil {
		t.Fatal(err)
	}
	if err := rc.RecordPrinted(ctx, 43, app.DocumentRevocationNotice, 0, errors.New("spool: queue stopped")); err != nil {
		t.Fatal(err)
	}
	h, err := f.sup.History(ctx, "rc1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 {
		t.Fatalf("history = %+v, want log-in and two prints", h)
	}
	ok, failed := h[1], h[2]
	if ok.Action != "document.print" || ok.Target != "42" || ok.Result != audit.ResultOK ||
		ok.Detail["document"] != app.DocumentIssuanceNotice || ok.Detail["job"] != "7" {
		t.Errorf("printed: %+v", ok)
	}
	if failed.Action != "document.print" || failed.Target != "43" || failed.Result != audit.ResultError ||
		failed.Detail["document"] != app.DocumentRevocationNotice || failed.Detail["error"] != "spool: queue stopped" {
		t.Errorf("failed print: %+v", failed)
	}
}
