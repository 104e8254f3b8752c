//go:build faultcampaign

// The fault campaign's hooks for this CLI-only terminal binary, as the root package's
// faultcampaign.go does for `madoguchi cli` (issue 15); never in a production build.
//
//   - MADOGUCHI_CLOCK_SKEW_FILE names a file holding a Go duration added to the terminal's wall
//     clock (internal/wallclock), re-read at most every 100 ms (internal/faults/clockskew).
//   - MADOGUCHI_FSYNC_FAULT_FILE names a file whose appearance makes every fsync of the process
//     fail with EIO from then on (internal/faults/fsyncfail: a seccomp filter; the file is
//     checked at start and every 100 ms). The campaign runs this binary, not `madoguchi cli`,
//     so its fsync-error kind needs the hook here too.

package main

import (
	"log"
	"os"

	"madoguchi/internal/faults/clockskew"
	"madoguchi/internal/faults/fsyncfail"
	"madoguchi/internal/wallclock"
)

func init() {
	if path := os.Getenv("MADOGUCHI_CLOCK_SKEW_FILE"); path != "" {
		wallclock.SetOffset(clockskew.File(path))
	}
	if path := os.Getenv("MADOGUCHI_FSYNC_FAULT_FILE"); path != "" {
		fsyncfail.ArmWhenPresent(path, func(err error) {
			if err != nil {
				log.Fatalf("fault campaign build: cannot fail fsync: %v", err)
			}
			log.Printf("fault campaign build: every fsync fails with EIO from now on")
		})
	}
}
