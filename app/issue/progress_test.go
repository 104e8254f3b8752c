package issue

import (
	"context"
	"slices"
	"testing"

	"madoguchi/app/pinrule"
	"madoguchi/app/workflow"
)

// TestProgressReportsEachStep checks the order in which Request.Progress names the steps of a
// two-certificate issuance, which the reception screen shows as named stages.
func TestProgressReportsEachStep(t *testing.T) {
	f := newFixture(t)
	type event struct {
		step Step
		typ  workflow.CertType
	}
	var got []event
	req := f.request()
	req.Progress = func(s Step, typ workflow.CertType) { got = append(got, event{s, typ}) }
	if _, err := f.o.Issue(context.Background(), req); err != nil {
		t.Fatalf("Issue: %v", err)
	}
	want := []event{
		{StepPrepare, workflow.UserAuthCert}, {StepScript, workflow.UserAuthCert},
		{StepPrepare, workflow.SignatureCert}, {StepScript, workflow.SignatureCert},
		{StepPIN, ""}, {StepVerify, ""}, {StepConfirm, ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("progress %v, want %v", got, want)
	}
}

// TestProgressStopsAtTheFailedStep: an applicant who gives up at the PIN screen ends the
// issuance there; no later step is reported.
func TestProgressStopsAtTheFailedStep(t *testing.T) {
	f := newFixture(t, workflow.UserAuthCert)
	var steps []Step
	req := f.request()
	req.PINs = func(ctx context.Context, r PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		return pinrule.PIN{}, pinrule.PIN{}, context.Canceled
	}
	req.Progress = func(s Step, _ workflow.CertType) { steps = append(steps, s) }
	if _, err := f.o.Issue(context.Background(), req); err == nil {
		t.Fatal("Issue succeeded without PINs")
	}
	if want := []Step{StepPrepare, StepScript, StepPIN}; !slices.Equal(steps, want) {
		t.Errorf("progress %v, want %v", steps, want)
	}
}
