//go:build faultcampaign

// Package campaignenv arms the fault campaign's process-wide faults from the environment, for
// the binaries built with the faultcampaign tag (issue 15): the terminal, its CLI-only build and
// ca-server each call Arm from their faultcampaign.go, so the three read the same variables the
// same way. The package exists only in that build (its constraint), and
// internal/faults/buildcheck keeps every untagged file from importing it.
//
//   - MADOGUCHI_CLOCK_SKEW_FILE names a file holding a Go duration added to the process's wall
//     clock (internal/wallclock), re-read at most every 100 ms (internal/faults/clockskew).
//     libfaketime cannot do this: Go reads the time through the vDSO, not libc.
//   - MADOGUCHI_FSYNC_FAULT_FILE names a file whose appearance (checked at start and every
//     100 ms) makes every fsync of the process fail with EIO until it ends
//     (internal/faults/fsyncfail, a seccomp filter).
package campaignenv

import (
	"fmt"
	"os"

	"madoguchi/internal/faults/clockskew"
	"madoguchi/internal/faults/fsyncfail"
	"madoguchi/internal/wallclock"
)

// Arm arms the faults the environment names; prog prefixes what it says on standard error. A
// fault that cannot be armed stops the process (exit 2) before it does anything.
func Arm(prog string) {
	if path := os.Getenv("MADOGUCHI_CLOCK_SKEW_FILE"); path != "" {
		wallclock.SetOffset(clockskew.File(path))
	}
	if path := os.Getenv("MADOGUCHI_FSYNC_FAULT_FILE"); path != "" {
		fsyncfail.ArmWhenPresent(path, func(err error) {
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: fault campaign build: cannot fail fsync: %v\n", prog, err)
				os.Exit(2)
			}
			fmt.Fprintf(os.Stderr, "%s: fault campaign build: every fsync fails with EIO from now on\n", prog)
		})
	}
}
