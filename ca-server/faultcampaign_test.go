package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/internal/testenv"
)

// buildCA builds ca-server into a temporary directory, with the given build tags ("" = none).
func buildCA(t *testing.T, tags string) string {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out := filepath.Join(t.TempDir(), "ca-server")
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command(gobin, append(args, ".")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, b)
	}
	return out
}

// startServeBinary runs `bin serve` as a child process with the extra environment and waits
// until it listens (ok) or exits (not ok); the log (stderr) so far is returned either way.
func startServeBinary(t *testing.T, bin, data string, env ...string) (ok bool, log func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--data-dir", data, "--dev", "--listen", "127.0.0.1:0",
		"--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), env...)
	var mu sync.Mutex
	var stderr bytes.Buffer
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return stderr.Write(p) })
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	listening := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on ") {
				listening <- struct{}{}
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() { cancel(); <-exited })
	log = func() string { mu.Lock(); defer mu.Unlock(); return stderr.String() }
	select {
	case <-listening:
		return true, log
	case <-exited:
		return false, log
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve neither listened nor exited:\n%s", log())
	}
	return false, log
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestHSMFaultEnvOnlyInFaultCampaignBuild (issue 15): MADOGUCHI_HSM_FAULT reaches the HSM's
// PKCS#11 call boundary (internal/hsmfault) in a ca-server built with -tags faultcampaign, and
// nothing reads it in a default build. The fault fails the very first PKCS#11 operation of
// serve with CKR_GENERAL_ERROR (not a session fault, so hsm does not retry it): the tagged
// serve refuses to start, naming the code; the default serve, with the same environment,
// starts. Real serve processes on SoftHSM.
func TestHSMFaultEnvOnlyInFaultCampaignBuild(t *testing.T) {
	testenv.SoftHSM(t)
	plain, tagged := buildCA(t, ""), buildCA(t, "faultcampaign")
	data, _, _ := devCA(t, 1)
	fault := "MADOGUCHI_HSM_FAULT=error@1=CKR_GENERAL_ERROR"

	if ok, log := startServeBinary(t, plain, data, fault); !ok {
		t.Fatalf("default build: serve did not start with %s set:\n%s", fault, log())
	}
	ok, log := startServeBinary(t, tagged, data, fault)
	if ok || !strings.Contains(log(), "CKR_GENERAL_ERROR") {
		t.Fatalf("faultcampaign build: serve started=%v with the first HSM operation failing:\n%s", ok, log())
	}
	// A malformed spec stops the tagged build before it does anything.
	if ok, log := startServeBinary(t, tagged, data, "MADOGUCHI_HSM_FAULT=error@0"); ok || !strings.Contains(log(), "MADOGUCHI_HSM_FAULT") {
		t.Fatalf("malformed spec: started=%v\n%s", ok, log())
	}
	// With the fault on an operation serve does not start with, the tagged build serves.
	if ok, log := startServeBinary(t, tagged, data, "MADOGUCHI_HSM_FAULT=error@1:op=unwrap-secret"); !ok {
		t.Fatalf("faultcampaign build with a fault on unwrap secret only: serve did not start:\n%s", log())
	}
}

// TestClockSkewFileOnlyInFaultCampaignBuild (issue 15): MADOGUCHI_CLOCK_SKEW_FILE moves the
// CA's wall clock (internal/wallclock) in a ca-server built with -tags faultcampaign, and
// nothing reads it in a default build. The probe is `terminal-token`, which prints the token's
// expiry from the CA's clock: with the file holding -72h the tagged build prints an expiry
// three days earlier than the default build does; rewriting the file to 48h moves it forward.
func TestClockSkewFileOnlyInFaultCampaignBuild(t *testing.T) {
	testenv.SoftHSM(t)
	plain, tagged := buildCA(t, ""), buildCA(t, "faultcampaign")
	data, _, _ := devCA(t, 1)
	skewFile := filepath.Join(t.TempDir(), "skew")
	validUntil := func(bin string) time.Time {
		t.Helper()
		cmd := exec.Command(bin, "terminal-token", "--data-dir", data, "--municipality", "131016")
		cmd.Env = append(os.Environ(), "MADOGUCHI_CLOCK_SKEW_FILE="+skewFile)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s terminal-token: %v\n%s", bin, err, stderr.String())
		}
		_, rest, ok := strings.Cut(stderr.String(), "valid until ")
		at, err := time.Parse(time.RFC3339, strings.TrimSuffix(strings.Fields(rest + " ")[0], ";"))
		if !ok || err != nil {
			t.Fatalf("no expiry in %q: %v", stderr.String(), err)
		}
		return at
	}
	writeSkew := func(s string) {
		t.Helper()
		if err := os.WriteFile(skewFile, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeSkew("-72h")
	ref := validUntil(plain)
	if !ref.After(time.Now()) {
		t.Fatalf("default build: expiry %v not in the future", ref)
	}
	skewed := validUntil(tagged)
	// A day's margin on both sides: the point is the three days, not the seconds between runs.
	if d := ref.Sub(skewed); d < 48*time.Hour || d > 96*time.Hour {
		t.Fatalf("faultcampaign build with -72h: expiry %v, default build %v (%v apart, want about 72h)", skewed, ref, d)
	}
	writeSkew("48h")
	if d := validUntil(tagged).Sub(validUntil(plain)); d < 24*time.Hour || d > 72*time.Hour {
		t.Fatalf("faultcampaign build with 48h: %v ahead of the default build, want about 48h", d)
	}
}
