package campaign

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"madoguchi/internal/testenv"
)

// privateMountsEnv marks the test binary re-run in its own mount namespace.
const privateMountsEnv = "MADOGUCHI_CAMPAIGN_TEST_PRIVATE_MOUNTS"

// TestShortCampaign is the CI campaign (issue 15): 30 cases with seed 15, every fault kind in
// turn (RoundRobin), on PostgreSQL so the database kinds are in it too, with the revocation
// and PIN-reset shares of the long runs, against the real
// chain — SoftHSM-backed serve, pcscd+vpcd, the terminal CLI as child processes. Every
// invariant must hold after every case and at the end. It keeps the machinery itself tested;
// the long runs are `go run ./internal/cmd/faults` (docs/RELIABILITY.md).
//
// As root it re-runs itself under `unshare --mount --propagation private` so the disk-full
// fault's tmpfs mounts stay private to it.
func TestShortCampaign(t *testing.T) {
	if os.Geteuid() == 0 && os.Getenv(privateMountsEnv) == "" {
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Fatalf("unshare (util-linux) is needed for the disk-full fault's private tmpfs: %v", err)
		}
		timeout := 15 * time.Minute // the child's own limit: what is left of this test's
		if d, ok := t.Deadline(); ok {
			timeout = time.Until(d) - 10*time.Second
		}
		cmd := exec.Command(unshare, "--mount", "--propagation", "private", "--", os.Args[0], "-test.run=^TestShortCampaign$", "-test.v", "-test.timeout="+timeout.String())
		cmd.Env = append(os.Environ(), privateMountsEnv+"=1")
		out, err := cmd.CombinedOutput()
		t.Logf("campaign in a private mount namespace:\n%s", out)
		if err != nil {
			t.Fatalf("the campaign failed: %v", err)
		}
		return
	}
	pc := testenv.PCSCD(t)
	s := NewStack(t, pc, Config{Dir: t.TempDir(), DB: "postgres", Cards: 90, Residents: 50, Tmpfs: os.Getenv(privateMountsEnv) != ""})
	r, err := NewRunner(s, Options{Seed: 15, N: 30, RoundRobin: true, RevokeShare: 0.1, PINResetShare: 0.1, AuditEvery: 10, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err = r.Run(context.Background())
	r.Report.Elapsed = time.Since(began)
	t.Log(r.Report.Summary())
	r.Report.Table(testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if lost, dup, v := r.Report.Totals(); lost != 0 || dup != 0 || v != 0 {
		t.Fatalf("lost %d, duplicated %d, violations %d", lost, dup, v)
	}
	if r.Report.Cases() != 30 {
		t.Fatalf("%d cases ran, want 30", r.Report.Cases())
	}
	// The cases of the long runs that found a defect, replayed (same seed, case, kinds and
	// draw, so the same fault) on the same stack, each with its own card slot.
	r.slot.eject()
	for _, c := range regressions {
		rr, err := NewRunner(s, Options{Seed: c.seed, From: c.k, N: 1, Draw: c.draw, Kinds: c.kinds, Log: testWriter{t}})
		if err != nil {
			t.Fatal(err)
		}
		if err := rr.Run(context.Background()); err != nil {
			t.Errorf("regression case %d of seed %d (%s): %v", c.k, c.seed, c.what, err)
		}
		rr.slot.eject()
	}
}

// regressions are campaign cases that found a defect; each is also a unit test where the
// defect is.
var regressions = []struct {
	seed  uint64
	draw  DrawVersion // the draw the run used: v1 for the runs of 2026-12-07
	kinds []Kind      // the run's -kinds; nil for all of the draw's
	k     int
	what  string
}{
	// A garbled answer to a FINALIZE the card committed was taken for a refusal: the card
	// kept a revoked-before-delivery certificate with no re-personalisation mark
	// (app/issue TestGarbledFinalizeAnswerMeansCardMayHoldKey).
	{20261207, DrawV1, nil, 45, "card-garbage @APDU 19, PostgreSQL"},
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
