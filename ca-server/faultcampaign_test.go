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
