package app_test

import (
	"context"
	"testing"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/operator"
)

// TestRecordSettingChanged: a supervisor's change of the CA address or the printer is in the
// supervisor's history with the setting and its new value; a refused change is recorded as
// refused with the reason.
func TestRecordSettingChanged(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sv := f.login(t, "sv2", "f-sv2", operator.Supervisor)
	if err := sv.RecordSettingChanged(ctx, app.SettingCAURL, "https://ca.example.lg.jp:8443", nil); err != nil {
		t.Fatal(err)
	}
	bad := apperr.New(apperr.InvalidInput, "terminal: CUPS queue %q not found", "nowhere")
	if err := sv.RecordSettingChanged(ctx, app.SettingPrinter, "nowhere", bad); err != nil {
		t.Fatal(err)
	}
	h, err := f.sup.History(ctx, "sv2")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 {
		t.Fatalf("history = %+v, want log-in and two setting changes", h)
	}
	ok, refused := h[1], h[2]
	if ok.Action != "terminal.settings" || ok.Target != app.SettingCAURL || ok.Result != audit.ResultOK ||
		ok.Detail["value"] != "https://ca.example.lg.jp:8443" {
		t.Errorf("changed: %+v", ok)
	}
	if refused.Action != "terminal.settings" || refused.Target != app.SettingPrinter || refused.Result != audit.ResultRefused ||
		refused.Detail["value"] != "nowhere" || refused.Detail["error_kind"] != apperr.InvalidInput.String() {
		t.Errorf("refused change: %+v", refused)
	}
}
