package ceremony

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStaffRegisterRules: CPS §5.2.1.1: the internal auditor is independent (no custodian, no
// other role), nobody changes their own roles, the last CA manager and internal auditor stay,
// duties need enough distinct role holders, and every change is in the ceremony record.
func TestStaffRegisterRules(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	if err := os.MkdirAll(CeremonyDir(data), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := saveState(data, &State{Version: StateVersion, Custodians: []string{"c1", "c2", "c3"}, Threshold: 2}); err != nil {
		t.Fatal(err)
	}
	if err := CheckDuty(data, "terminal.token", "anyone"); err != nil {
		t.Fatalf("no register: %v", err)
	}
	if err := CheckDuty(data, "no.such.duty", "x", "y"); !errors.Is(err, ErrBadInput) {
		t.Errorf("unknown duty: %v", err)
	}
	if err := InitStaff(ctx, data, "mgr", "c1", now); !errors.Is(err, ErrRoleRequired) {
		t.Errorf("a custodian as internal auditor: %v", err)
	}
	if err := InitStaff(ctx, data, "mgr", "aud", now); err != nil {
		t.Fatal(err)
	}
	if err := InitStaff(ctx, data, "mgr", "aud", now); !errors.Is(err, ErrBadInput) {
		t.Errorf("second init: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "c2", StaffInternalAuditor, "mgr", "aud", now); !errors.Is(err, ErrRoleRequired) {
		t.Errorf("custodian made auditor: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "s1", StaffSeniorOperator, "mgr", "aud", now); err != nil {
		t.Fatal(err)
	}
	if err := ChangeStaff(ctx, data, true, "s1", StaffSeniorOperator, "mgr", "aud", now); !errors.Is(err, ErrBadInput) {
		t.Errorf("same role twice: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "s1", StaffRole("root"), "mgr", "aud", now); !errors.Is(err, ErrBadInput) {
		t.Errorf("unknown role: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "mgr2", StaffCAManager, "mgr", "aud", now); err != nil {
		t.Fatal(err)
	}
	if err := ChangeStaff(ctx, data, false, "aud", StaffInternalAuditor, "mgr", "aud", now); !errors.Is(err, ErrRoleRequired) {
		t.Errorf("auditor withdrawing themselves: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "aud2", StaffInternalAuditor, "mgr", "aud", now); err != nil {
		t.Fatal(err)
	}
	if err := ChangeStaff(ctx, data, false, "aud", StaffInternalAuditor, "mgr", "aud2", now); err != nil {
		t.Fatal(err)
	}
	if err := ChangeStaff(ctx, data, false, "aud2", StaffInternalAuditor, "mgr", "aud", now); !errors.Is(err, ErrRoleRequired) {
		t.Errorf("a withdrawn auditor approving: %v", err)
	}
	if err := ChangeStaff(ctx, data, false, "mgr", StaffCAManager, "mgr2", "aud2", now); err != nil {
		t.Fatal(err)
	}
	if err := ChangeStaff(ctx, data, true, "s2", StaffSeniorOperator, "mgr2", "aud2", now); err != nil {
		t.Fatal(err)
	}
	if err := CheckDuty(data, "verifier.add", "s1", "s2"); err != nil {
		t.Error(err)
	}
	if err := CheckDuty(data, "verifier.add", "s1", "s1"); !errors.Is(err, ErrRoleRequired) {
		t.Errorf("one person twice: %v", err)
	}
	if err := CheckDuty(data, "audit.show", "aud2"); err != nil {
		t.Error(err)
	}
	if fi, err := os.Stat(filepath.Join(CeremonyDir(data), "staff.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("staff.json: %v %v", fi, err)
	}
	events, err := NewFileRecord(RecordPath(data)).Events()
	if err != nil || len(events) != 7 {
		t.Fatalf("ceremony record: %d events, %v", len(events), err)
	}
	if e := events[len(events)-1]; e.Command != "staff" || e.Step != "assign" || e.Detail["person"] != "s2" || len(e.Who) != 2 {
		t.Errorf("last event %+v", e)
	}
}
