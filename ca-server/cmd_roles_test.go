package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"madoguchi/ca-server/ceremony"
	"madoguchi/internal/testenv"
)

// TestStaffRolesAndTwoPersonDuties: CPS §5.2.1.1 on a real (SoftHSM) CA:
// the staff register names CA manager, senior operators, operators and the
// internal auditor (custodians come from the key ceremony); changes need
// the CA manager and the internal auditor, never for themselves; the
// auditor holds no other role; terminal enrolment needs two different
// senior operators, both named in the audit record; audit review needs the
// internal auditor; a removed register is noticed.
func TestStaffRolesAndTwoPersonDuties(t *testing.T) {
	testenv.SoftHSM(t)
	data := t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	// no register yet: not enforced (data dirs from before keep working)
	runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016", "--operator", "anyone")

	if _, err := runCeremonyCmd(t, "staff", "init", "--data-dir", data, "--ca-manager", "mgr", "--internal-auditor", "mgr"); !errors.Is(err, ceremony.ErrBadInput) {
		t.Fatalf("one person as manager and auditor: %v", err)
	}
	runCmd(t, "staff", "init", "--data-dir", data, "--ca-manager", "mgr", "--internal-auditor", "aud")
	assign := func(person, role string) error {
		_, err := runCeremonyCmd(t, "staff", "assign", "--data-dir", data, "--person", person, "--role", role, "--ca-manager", "mgr", "--internal-auditor", "aud")
		return err
	}
	for _, p := range [][2]string{{"s1", "senior-operator"}, {"s2", "senior-operator"}, {"op1", "operator"}} {
		if err := assign(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := assign("aud", "senior-operator"); !errors.Is(err, ceremony.ErrRoleRequired) {
		t.Errorf("auditor approving their own role: %v", err)
	}
	if err := assign("s1", "internal-auditor"); !errors.Is(err, ceremony.ErrRoleRequired) {
		t.Errorf("a senior operator made internal auditor: %v", err)
	}
	if _, err := runCeremonyCmd(t, "staff", "assign", "--data-dir", data, "--person", "x", "--role", "operator", "--ca-manager", "s1", "--internal-auditor", "aud"); !errors.Is(err, ceremony.ErrRoleRequired) {
		t.Errorf("change approved by a non-manager: %v", err)
	}
	if _, err := runCeremonyCmd(t, "staff", "withdraw", "--data-dir", data, "--person", "aud", "--role", "internal-auditor", "--ca-manager", "mgr", "--internal-auditor", "aud"); !errors.Is(err, ceremony.ErrRoleRequired) {
		t.Errorf("withdrawing oneself: %v", err)
	}
	list := runCmd(t, "staff", "list", "--data-dir", data)
	for _, want := range []string{"key-custodian\t", "ca-manager\tmgr", "internal-auditor\taud", "senior-operator\ts1", "senior-operator\ts2", "operator\top1"} {
		if !strings.Contains(list, want) {
			t.Errorf("staff list lacks %q:\n%s", want, list)
		}
	}

	tok := func(op, second string) error {
		_, err := runCeremonyCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016", "--operator", op, "--second-operator", second)
		return err
	}
	for _, c := range [][2]string{{"s1", ""}, {"s1", "s1"}, {"s1", "op1"}, {"mgr", "s2"}} {
		if err := tok(c[0], c[1]); !errors.Is(err, ceremony.ErrRoleRequired) {
			t.Errorf("terminal-token by %v: %v", c, err)
		}
	}
	if err := tok("s1", "s2"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCeremonyCmd(t, "verifier-revoke", "--data-dir", data, "--name", "nobody", "--operator", "op1"); !errors.Is(err, ceremony.ErrRoleRequired) {
		t.Errorf("verifier-revoke by one operator: %v", err)
	}
	if _, err := runCeremonyCmd(t, "hold", "--data-dir", data, "--serial", "01", "--note", "phone", "--operator", "aud"); !errors.Is(err, ceremony.ErrRoleRequired) {
		t.Errorf("hold by the auditor: %v", err)
	}
	if _, err := runCeremonyCmd(t, "audit", "verify", "--data-dir", data, "--auditor", "s1"); !errors.Is(err, ceremony.ErrRoleRequired) {
		t.Errorf("audit verify by a senior operator: %v", err)
	}
	if _, err := runCeremonyCmd(t, "audit", "backup", "--data-dir", data, "--to", t.TempDir(), "--operator", "mgr"); !errors.Is(err, ceremony.ErrRoleRequired) {
		t.Errorf("audit backup by the CA manager: %v", err)
	}
	runCmd(t, "audit", "backup", "--data-dir", data, "--to", t.TempDir(), "--operator", "aud")
	shown := runCmd(t, "audit", "show", "--data-dir", data, "--operator", "s1", "--auditor", "aud")
	if !strings.Contains(shown, "terminal.token\t131016\tok\tsecond operator s2") {
		t.Errorf("two-person enrolment not recorded with both names:\n%s", shown)
	}
	if err := ceremony.VerifyRecord(ceremony.RecordPath(data)); err != nil {
		t.Fatal(err)
	}
	rec, _ := os.ReadFile(ceremony.RecordPath(data))
	if strings.Count(string(rec), `"command":"staff"`) != 4 {
		t.Errorf("ceremony record holds %d staff changes, want 4", strings.Count(string(rec), `"command":"staff"`))
	}

	if err := os.Remove(filepath.Join(ceremony.CeremonyDir(data), "staff.json")); err != nil {
		t.Fatal(err)
	}
	if err := tok("s1", "s2"); !errors.Is(err, ceremony.ErrStaffRegisterMissing) {
		t.Errorf("removed register: %v", err)
	}
}
