package buildcheck

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var envNames = []string{"MADOGUCHI_HSM_FAULT", "MADOGUCHI_CLOCK_SKEW_FILE", "MADOGUCHI_FSYNC_FAULT_FILE"}

// build builds the package dir (relative to the module root) with tags ("" = none).
func build(t *testing.T, dir, tags string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(dir)+"-bin")
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, "./"+dir)...)
	cmd.Dir = filepath.Join("..", "..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v ./%s: %v\n%s", args, dir, err, b)
	}
	return out
}

func holds(t *testing.T, bin, s string) bool {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s))
}

// TestFaultHooksOnlyInFaultCampaignBuilds builds each binary twice. The default builds must not
// hold the names; the tagged ones must (which shows the grep would see them). The terminal's
// build links Fyne, so this test takes about a minute on a warm build cache.
func TestFaultHooksOnlyInFaultCampaignBuilds(t *testing.T) {
	for _, b := range []struct {
		dir  string
		want []string // names the tagged build reads
	}{
		{"ca-server", envNames},
		{".", envNames[1:]},                          // the terminal: no HSM
		{"internal/cmd/madoguchi-cli", envNames[1:]}, // the CLI-only terminal the campaign runs
	} {
		plain, tagged := build(t, b.dir, ""), build(t, b.dir, "faultcampaign")
		for _, name := range envNames {
			if holds(t, plain, name) {
				t.Errorf("default build of ./%s holds %s", b.dir, name)
			}
		}
		for _, name := range b.want {
			if !holds(t, tagged, name) {
				t.Errorf("faultcampaign build of ./%s does not hold %s", b.dir, name)
			}
		}
		switch b.dir {
		case ".":
			terminalClock(t, plain, tagged)
			terminalFsync(t, plain, tagged, "cli")
		case "internal/cmd/madoguchi-cli":
			// The campaign's fsync-error kind fails this binary's fsyncs, not madoguchi's.
			terminalFsync(t, plain, tagged)
		}
	}
}

// terminalClock: with MADOGUCHI_CLOCK_SKEW_FILE holding -72h, the tagged terminal (`madoguchi
// cli`) writes its audit record three days in the past (app.Config.Clock's default is
// app/clock.System, on internal/wallclock); the default build, with the same environment,
// writes the real time.
func terminalClock(t *testing.T, plain, tagged string) {
	t.Helper()
	skew := filepath.Join(t.TempDir(), "skew")
	if err := os.WriteFile(skew, []byte("-72h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bootstrapAt := func(bin string) time.Time {
		t.Helper()
		db := filepath.Join(t.TempDir(), "terminal.db")
		cli := func(stdin string, args ...string) string {
			t.Helper()
			out, errb, err := runCLI(bin, []string{"cli"}, db, "MADOGUCHI_CLOCK_SKEW_FILE="+skew, stdin, args...)
			if err != nil {
				t.Fatalf("madoguchi cli %v: %v\n%s", args, err, errb)
			}
			return out
		}
		cli("supervisor-pass-1\n", "bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "clock test")
		out := cli("supervisor-pass-1\n", "-user", "sup", "audit", "export", "-format", "jsonl")
		for _, line := range strings.Split(out, "\n") {
			var rec struct {
				At     time.Time `json:"at"`
				Action string    `json:"action"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Action == "operator.bootstrap" {
				return rec.At
			}
		}
		t.Fatalf("no operator.bootstrap record in:\n%s", out)
		return time.Time{}
	}
	before := time.Now()
	if at := bootstrapAt(plain); at.Before(before.Add(-time.Hour)) {
		t.Fatalf("default build wrote %v at about %v: it read the skew file", at, before)
	}
	at := bootstrapAt(tagged)
	// A day's margin: the point is the three days, not the seconds between runs.
	if d := time.Since(at); d < 48*time.Hour || d > 96*time.Hour {
		t.Fatalf("faultcampaign build with -72h wrote its audit record %v ago, want about 72h", d)
	}
}

// runCLI runs `bin sub... -db db args...` (sub: "cli" for madoguchi, none for madoguchi-cli)
// with one extra environment variable and stdin.
func runCLI(bin string, sub []string, db, env, stdin string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(bin, append(append(append([]string{}, sub...), "-db", db), args...)...)
	cmd.Env = append(os.Environ(), env)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// terminalFsync: with the file named by MADOGUCHI_FSYNC_FAULT_FILE present, the tagged
// terminal's fsyncs fail (internal/faults/fsyncfail) and `madoguchi cli bootstrap` cannot
// create its database; the default build, with the same environment, can. sub is the
// subcommand before the CLI's flags ("cli" for madoguchi).
func terminalFsync(t *testing.T, plain, tagged string, sub ...string) {
	t.Helper()
	trigger := filepath.Join(t.TempDir(), "fail-fsync")
	if err := os.WriteFile(trigger, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := "MADOGUCHI_FSYNC_FAULT_FILE=" + trigger
	args := []string{"bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "fsync test"}
	if _, errb, err := runCLI(plain, sub, filepath.Join(t.TempDir(), "terminal.db"), env, "supervisor-pass-1\n", args...); err != nil {
		t.Fatalf("default build: %v\n%s", err, errb)
	}
	_, errb, err := runCLI(tagged, sub, filepath.Join(t.TempDir(), "terminal.db"), env, "supervisor-pass-1\n", args...)
	if err == nil || !strings.Contains(errb, "fsync fails") {
		t.Fatalf("faultcampaign build with fsync failing: %v\n%s", err, errb)
	}
}
