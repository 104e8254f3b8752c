package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/pinrule"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
)

func caseState(t *testing.T, f *fixture, id int64) (string, int) {
	t.Helper()
	var state string
	var events int
	if err := f.t.DB().QueryRow(`SELECT state, (SELECT count(*) FROM case_events WHERE case_id = cases.id) FROM cases WHERE id = ?`, id).Scan(&state, &events); err != nil {
		t.Fatal(err)
	}
	return state, events
}

func TestNewIssuanceCase(t *testing.T) {
	f, cs, rc := counter(t)
	ctx := context.Background()
	file, err := cs.ExportResidentFile(ctx, "90000000066") // 斉藤 閏, born 29 Feb, 髙 in the address
	if err != nil {
		t.Fatal(err)
	}
	// The file is required for issuance.
	if _, err := rc.OpenCase(ctx, app.CaseRequest{Kind: workflow.NewIssuance, RecordCode: "90000000066", CertTypes: []workflow.CertType{workflow.SignatureCert}}); !errors.Is(err, apperr.InvalidInput) {
		t.Fatalf("open without file = %v", err)
	}
	c, err := rc.OpenCase(ctx, app.CaseRequest{Kind: workflow.NewIssuance, ResidentFile: file, NewCard: true,
		CertTypes: []workflow.CertType{workflow.SignatureCert, workflow.UserAuthCert}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Applicant.Name != "斉藤 閏" || c.ResidentFile == "" {
		t.Fatalf("case = %+v", c)
	}
	// The file was consumed by opening the case.
	if _, err := rc.ImportResidentFile(ctx, file); !errors.Is(err, apperr.FileUsed) {
		t.Fatalf("file reuse = %v", err)
	}
	// Refused transition: audited, no change.
	if _, err := rc.Approve(ctx, c.ID); !errors.Is(err, apperr.InvalidTransition) {
		t.Fatalf("approve too early = %v", err)
	}
	if st, n := caseState(t, f, c.ID); st != "opened" || n != 1 {
		t.Fatalf("after refused approve: %s, %d events", st, n)
	}
	if r := f.lastAudit(t); r.Action != "case.approve" || r.Result != audit.ResultRefused || r.Detail["error_kind"] != "invalid transition" {
		t.Fatalf("audit = %+v", r)
	}
	// PIN check: birthday 0229 refused, audited without the PIN.
	err = rc.CheckApplicantPIN(ctx, c.ID, pinrule.UserAuth, pinrule.New("0229"), pinrule.New("0229"))
	var pe *pinrule.Error
	if !errors.As(err, &pe) || pe.Reason != pinrule.ReasonBirthday {
		t.Fatalf("birthday PIN = %v", err)
	}
	if m := translations.ErrorText("ja", err); !strings.Contains(m, "生年月日") {
		t.Fatalf("message = %q", m)
	}
	r := f.lastAudit(t)
	if r.Action != "case.pin_check" || r.Result != audit.ResultRefused || strings.Contains(r.Detail["error"], "0229") {
		t.Fatalf("pin audit = %+v", r)
	}
	if err := rc.CheckApplicantPIN(ctx, c.ID, pinrule.UserAuth, pinrule.New("4829"), pinrule.New("4829")); err != nil {
		t.Fatal(err)
	}
	// Identity, explanations, 外字, approval, completion.
	if _, err := rc.RecordIdentity(ctx, c.ID, workflow.Evidence{Document: workflow.MyNumberCard}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.RecordExplanation(ctx, c.ID, workflow.RequiredItems(c.CertTypes)); err != nil {
		t.Fatal(err)
	}
	outside := resident.FindOutside(c.Applicant.Address)
	if len(outside) != 1 || outside[0].Char != '髙' {
		t.Fatalf("outside = %+v", outside)
	}
	fixed, _ := resident.FixedSubstitute(outside[0].Char)
	if _, err := rc.SetSubstitutions(ctx, c.ID, []resident.Substitution{{Field: "address", Pos: outside[0].Pos, Original: "髙", Substitute: fixed}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Approve(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	done, err := rc.Complete(ctx, c.ID)
	if err != nil || done.State != workflow.Completed || done.DecidedBy != "rc1" {
		t.Fatalf("complete = %+v, %v", done, err)
	}
	if st, n := caseState(t, f, c.ID); st != "completed" || n != 6 {
		t.Fatalf("stored: %s, %d events", st, n)
	}
	// CS may not run reception cases.
	if _, err := cs.Case(ctx, c.ID); !errors.Is(err, apperr.PermissionDenied) {
		t.Fatalf("cs case view = %v", err)
	}
}

func TestIdentityDoubtStopsCase(t *testing.T) {
	f, _, rc := counter(t)
	ctx := context.Background()
	c, err := rc.OpenCase(ctx, app.CaseRequest{Kind: workflow.LossReport, RecordCode: "90000000044"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rc.RecordIdentity(ctx, c.ID, workflow.Evidence{Document: workflow.ResidenceCard, Doubt: "在留カードの写真と容貌が一致しない"})
	if !errors.Is(err, apperr.IdentityDoubt) {
		t.Fatalf("doubt = %v", err)
	}
	if st, _ := caseState(t, f, c.ID); st != "stopped" {
		t.Fatalf("stored state = %s", st)
	}
	if _, err := rc.Approve(ctx, c.ID); !errors.Is(err, apperr.InvalidTransition) {
		t.Fatalf("approve stopped case = %v", err)
	}
	stored, _ := rc.Case(ctx, c.ID)
	if !strings.Contains(stored.StopReason, "identity doubt") {
		t.Fatalf("stop reason = %q", stored.StopReason)
	}
}
