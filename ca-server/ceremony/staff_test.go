package ceremony

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStaffRegisterRules: CPS §5.2.1.1: the internal auditor is independent (no custodian, no
// other role), nobody changes their own roles, the last CA manager and internal auditor stay,
// duties need enough distinct role holders, and every change is in the ceremony record.
func TestStaffRegisterRules(t *testing.T) {
	UseTestCosts(t)
	ctx := context.Background()
	data := t.TempDir()
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	sec := secrets(nil)
	if err := os.MkdirAll(CeremonyDir(data), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := saveState(data, &State{Version: StateVersion, Custodians: []string{"c1", "c2", "c3"}, Threshold: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckDuty(data, "terminal.token", []string{"anyone"}, nil); !errors.Is(err, ErrStaffRegisterRequired) {
		t.Fatalf("no register on a non-dev CA: %v", err)
	}
	if _, err := CheckDuty(data, "no.such.duty", []string{"x", "y"}, nil); !errors.Is(err, ErrBadInput) {
		t.Errorf("unknown duty: %v", err)
	}
	if err := InitStaff(ctx, data, "mgr", "c1", sec, now); !errors.Is(err, ErrRoleRequired) {
		t.Errorf("a custodian as internal auditor: %v", err)
	}
	if err := InitStaff(ctx, data, "mgr", "aud", sec, now); err != nil {
		t.Fatal(err)
	}
	if err := InitStaff(ctx, data, "mgr", "aud", sec, now); !errors.Is(err, ErrBadInput) {
		t.Errorf("second init: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "c2", StaffInternalAuditor, "mgr", "aud", sec, now); !errors.Is(err, ErrRoleRequired) {
		t.Errorf("custodian made auditor: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "s1", StaffSeniorOperator, "mgr", "aud", sec, now); err != nil {
		t.Fatal(err)
	}
	if err := ChangeStaff(ctx, data, true, "s1", StaffSeniorOperator, "mgr", "aud", sec, now); !errors.Is(err, ErrBadInput) {
		t.Errorf("same role twice: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "s1", StaffRole("root"), "mgr", "aud", sec, now); !errors.Is(err, ErrBadInput) {
		t.Errorf("unknown role: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "mgr2", StaffCAManager, "mgr", "aud", sec, now); err != nil {
		t.Fatal(err)
	}
	if err := ChangeStaff(ctx, data, false, "aud", StaffInternalAuditor, "mgr", "aud", sec, now); !errors.Is(err, ErrRoleRequired) {
		t.Errorf("auditor withdrawing themselves: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "aud2", StaffInternalAuditor, "mgr", "aud", sec, now); err != nil {
		t.Fatal(err)
	}
	if err := ChangeStaff(ctx, data, false, "aud", StaffInternalAuditor, "mgr", "aud2", sec, now); err != nil {
		t.Fatal(err)
	}
	if err := ChangeStaff(ctx, data, false, "aud2", StaffInternalAuditor, "mgr", "aud", sec, now); !errors.Is(err, ErrRoleRequired) {
		t.Errorf("a withdrawn auditor approving: %v", err)
	}
	if err := ChangeStaff(ctx, data, false, "mgr", StaffCAManager, "mgr2", "aud2", sec, now); err != nil {
		t.Fatal(err)
	}
	if err := ChangeStaff(ctx, data, true, "s2", StaffSeniorOperator, "mgr2", "aud2", sec, now); err != nil {
		t.Fatal(err)
	}
	if who, err := CheckDuty(data, "verifier.add", []string{"s1", "s2"}, sec); err != nil || len(who) != 2 {
		t.Error(who, err)
	}
	if _, err := CheckDuty(data, "verifier.add", []string{"s1", "s1"}, sec); !errors.Is(err, ErrRoleRequired) {
		t.Errorf("one person twice: %v", err)
	}
	if _, err := CheckDuty(data, "audit.show", []string{"aud2"}, sec); err != nil {
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

// secrets answers each person with their own passphrase ("<person>'s own
// passphrase 42"), or with the one in override.
func secrets(override map[string]string) SecretFunc {
	return func(person string, _ SecretPurpose) (string, error) {
		if p, ok := override[person]; ok {
			return p, nil
		}
		return person + "'s own passphrase 42", nil
	}
}

// TestDutyConfirmedBySecrets: a duty is confirmed by each person's own
// secret, not by the names typed: one person named twice, a wrong secret,
// a name not in the register, a person without a credential are refused;
// a register made before credentials migrates at its first change;
// a crafted credential with a huge argon2 cost is refused before hashing.
//
// Attack: a senior operator names a colleague as --second-operator
// without them. On the code before this change CheckDuty took any two
// names holding the role and the duty went ahead.
func TestDutyConfirmedBySecrets(t *testing.T) {
	UseTestCosts(t)
	ctx := context.Background()
	data := t.TempDir()
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	sec := secrets(nil)
	if err := InitStaff(ctx, data, "mgr", "aud", secrets(map[string]string{"mgr": "short"}), now); !errors.Is(err, ErrWeakPassphrase) {
		t.Fatalf("weak credential: %v", err)
	}
	if err := InitStaff(ctx, data, "mgr", "aud", sec, now); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"s1", "s2"} {
		if err := ChangeStaff(ctx, data, true, p, StaffSeniorOperator, "mgr", "aud", sec, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := ChangeStaff(ctx, data, true, "s3", StaffSeniorOperator, "mgr", "aud", secrets(map[string]string{"s3": "s1's own passphrase 42"}), now); !errors.Is(err, ErrWeakPassphrase) {
		t.Errorf("a new credential equal to another person's: %v", err)
	}
	if err := ChangeStaff(ctx, data, true, "s3", StaffSeniorOperator, "mgr", "aud", secrets(map[string]string{"aud": "guessed passphrase 1"}), now); !errors.Is(err, ErrNotConfirmed) {
		t.Errorf("assignment with the auditor's secret guessed: %v", err)
	}
	for name, c := range map[string]struct {
		people []string
		sec    SecretFunc
		want   error
	}{
		"same name twice":     {[]string{"s1", "s1"}, sec, ErrRoleRequired},
		"wrong second secret": {[]string{"s1", "s2"}, secrets(map[string]string{"s2": "s1's own passphrase 42"}), ErrNotConfirmed},
		"not in the register": {[]string{"s1", "mallory"}, sec, ErrRoleRequired},
		"one person":          {[]string{"s1"}, sec, ErrRoleRequired},
		"no way to ask":       {[]string{"s1", "s2"}, nil, ErrNotConfirmed},
	} {
		if _, err := CheckDuty(data, "terminal.token", c.people, c.sec); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if who, err := CheckDuty(data, "terminal.token", []string{"s1", "s2"}, sec); err != nil || len(who) != 2 {
		t.Fatalf("both confirmed: %v %v", who, err)
	}
	b, _ := os.ReadFile(staffPath(data))
	if strings.Contains(string(b), "own passphrase") {
		t.Fatal("a passphrase is in the register")
	}
	rec, _ := os.ReadFile(RecordPath(data))
	if strings.Contains(string(rec), "own passphrase") || !strings.Contains(string(rec), "refused") {
		t.Fatalf("ceremony record: refusal missing or secret present:\n%s", rec)
	}

	// A crafted credential naming 64 GiB is refused before argon2 runs.
	reg, _ := LoadStaff(data)
	reg.Credentials["s2"].MemKiB = 64 << 20
	raw, _ := json.Marshal(reg)
	os.WriteFile(staffPath(data), raw, 0o600)
	if _, err := CheckDuty(data, "terminal.token", []string{"s1", "s2"}, sec); err == nil || !strings.Contains(err.Error(), "argon2 memory") {
		t.Fatalf("crafted credential cost: %v", err)
	}

	// A register from before credentials: duties refused until the people
	// set theirs; the first change migrates the approvers.
	legacy := t.TempDir()
	os.MkdirAll(CeremonyDir(legacy), 0o700)
	old := StaffRegister{Version: 1, Holders: []StaffHolder{{Person: "mgr", Role: StaffCAManager}, {Person: "aud", Role: StaffInternalAuditor}, {Person: "s1", Role: StaffSeniorOperator}, {Person: "s2", Role: StaffSeniorOperator}}}
	raw, _ = json.Marshal(old)
	os.WriteFile(staffPath(legacy), raw, 0o600)
	if _, err := CheckDuty(legacy, "terminal.token", []string{"s1", "s2"}, sec); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("legacy register duty: %v", err)
	}
	for _, p := range []string{"s1", "s2"} {
		if err := SetCredential(ctx, legacy, p, "mgr", "aud", sec, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := CheckDuty(legacy, "terminal.token", []string{"s1", "s2"}, sec); err != nil {
		t.Fatal(err)
	}
	if err := SetCredential(ctx, legacy, "s1", "mgr", "aud", secrets(map[string]string{"mgr": "not mgr's passphrase"}), now); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("credential reset with a wrong approver secret: %v", err)
	}
}
