package main

import (
	"bytes"
	"errors"
	"io/fs"
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
	ceremony.UseTestCosts(t)
	data := t.TempDir()
	sec := func(people ...string) []string { return staffSecrets(t, people...) }
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	// no register yet: not enforced (data dirs from before keep working)
	runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016", "--operator", "anyone")

	if _, err := runCeremonyCmd(t, "staff", "init", "--data-dir", data, "--ca-manager", "mgr", "--internal-auditor", "mgr"); !errors.Is(err, ceremony.ErrBadInput) {
		t.Fatalf("one person as manager and auditor: %v", err)
	}
	runCmd(t, append([]string{"staff", "init", "--data-dir", data, "--ca-manager", "mgr", "--internal-auditor", "aud"}, sec("mgr", "aud")...)...)
	assign := func(person, role string) error {
		_, err := runCeremonyCmd(t, append([]string{"staff", "assign", "--data-dir", data, "--person", person, "--role", role, "--ca-manager", "mgr", "--internal-auditor", "aud"}, sec("mgr", "aud", person)...)...)
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
		_, err := runCeremonyCmd(t, append([]string{"terminal-token", "--data-dir", data, "--municipality", "131016", "--operator", op, "--second-operator", second}, sec(op, second)...)...)
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
	runCmd(t, append([]string{"audit", "backup", "--data-dir", data, "--to", t.TempDir(), "--operator", "aud"}, sec("aud")...)...)
	shown := runCmd(t, append([]string{"audit", "show", "--data-dir", data, "--operator", "s1", "--auditor", "aud"}, sec("aud")...)...)
	if !strings.Contains(shown, "terminal.token\t131016\tok\tsecond operator s2; confirmed by own secret: s1, s2") {
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

// staffPass is each test person's own passphrase.
func staffPass(person string) string { return person + "'s own passphrase 42" }

// staffSecrets gives each person's own passphrase on a descriptor
// (--secret NAME=fd:N); an empty name is skipped.
func staffSecrets(t *testing.T, people ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range people {
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, "--secret", p+"="+secretFD(t, staffPass(p)))
		}
	}
	return out
}

// Attack: one senior operator does a two-person duty alone, typing a
// colleague's name as --second-operator (or their own twice, or a wrong
// secret for the colleague). On the code before this change the attack
// succeeded: `terminal-token --operator s1 --second-operator s2` issued an
// enrolment token with s2 nowhere near, and the audit record named s2 as
// the second operator. Now each named person confirms with their own
// passphrase; every refusal is audited (names, never secrets) and nothing
// is done.
func TestTwoPersonDutyConfirmedByOnePerson(t *testing.T) {
	testenv.SoftHSM(t)
	ceremony.UseTestCosts(t)
	data := t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	runCmd(t, append([]string{"staff", "init", "--data-dir", data, "--ca-manager", "mgr", "--internal-auditor", "aud"}, staffSecrets(t, "mgr", "aud")...)...)
	for _, p := range []string{"s1", "s2"} {
		runCmd(t, append([]string{"staff", "assign", "--data-dir", data, "--person", p, "--role", "senior-operator", "--ca-manager", "mgr", "--internal-auditor", "aud"}, staffSecrets(t, "mgr", "aud", p)...)...)
	}
	guess := "s2 is probably this one"
	for name, c := range map[string]struct {
		args []string
		want error
	}{
		"second absent (no secret)":  {[]string{"--operator", "s1", "--second-operator", "s2", "--secret", "s1=" + secretFD(t, staffPass("s1"))}, errUsage},
		"second with a wrong secret": {[]string{"--operator", "s1", "--second-operator", "s2", "--secret", "s1=" + secretFD(t, staffPass("s1")), "--secret", "s2=" + secretFD(t, guess)}, ceremony.ErrNotConfirmed},
		"second with the first's":    {[]string{"--operator", "s1", "--second-operator", "s2", "--secret", "s1=" + secretFD(t, staffPass("s1")), "--secret", "s2=" + secretFD(t, staffPass("s1"))}, ceremony.ErrNotConfirmed},
		"same person twice":          {[]string{"--operator", "s1", "--second-operator", "s1", "--secret", "s1=" + secretFD(t, staffPass("s1"))}, ceremony.ErrRoleRequired},
		"second not in the register": {[]string{"--operator", "s1", "--second-operator", "mallory", "--secret", "s1=" + secretFD(t, staffPass("s1")), "--secret", "mallory=" + secretFD(t, staffPass("mallory"))}, ceremony.ErrRoleRequired},
	} {
		out, err := runCeremonyCmd(t, append([]string{"terminal-token", "--data-dir", data, "--municipality", "131016"}, c.args...)...)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if strings.Contains(out, "token for municipality") {
			t.Errorf("%s: a token was issued:\n%s", name, out)
		}
	}
	if _, err := runCeremonyCmd(t, "verifier-revoke", "--data-dir", data, "--name", "rp", "--operator", "s1", "--second-operator", "s2",
		"--secret", "s1="+secretFD(t, staffPass("s1")), "--secret", "s2="+secretFD(t, guess)); !errors.Is(err, ceremony.ErrNotConfirmed) {
		t.Errorf("verifier-revoke with a wrong second secret: %v", err)
	}

	show := func(op string) string {
		return runCmd(t, append([]string{"audit", "show", "--data-dir", data, "--operator", op, "--auditor", "aud"}, staffSecrets(t, "aud")...)...)
	}
	refused := show("unconfirmed")
	if n := strings.Count(refused, "\trefused\t"); n != 6 {
		t.Errorf("%d refusals audited, want 6:\n%s", n, refused)
	}
	for _, want := range []string{"terminal.token", "verifier.revoke", "named s1, s2", "named s1, mallory", "is wrong"} {
		if !strings.Contains(refused, want) {
			t.Errorf("refusals lack %q:\n%s", want, refused)
		}
	}
	if s1 := show("s1"); strings.Contains(s1, "terminal.token") {
		t.Errorf("a refused duty was done:\n%s", s1)
	}
	// no secret in any file of the data dir (audit log, register, record)
	filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, s := range []string{staffPass("s1"), staffPass("s2"), guess} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret", p)
			}
		}
		return nil
	})

	out, err := runCeremonyCmd(t, append([]string{"terminal-token", "--data-dir", data, "--municipality", "131016", "--operator", "s1", "--second-operator", "s2"}, staffSecrets(t, "s1", "s2")...)...)
	if err != nil || !strings.Contains(show("s1"), "terminal.token\t131016\tok\tsecond operator s2; confirmed by own secret: s1, s2") {
		t.Fatalf("both confirmed: %v\n%s", err, out)
	}
}
