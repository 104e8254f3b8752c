//go:build faultcampaign

// This file is the fault campaign's way into the terminal (issue 15), and is never in a
// production build: it is compiled only with `go build -tags faultcampaign .`, and a default
// build holds none of its environment variable names (see internal/faults/buildcheck).
//
// MADOGUCHI_CLOCK_SKEW_FILE names a file holding a Go duration added to the terminal's wall
// clock (internal/wallclock, behind app/clock.System, app.Config.Clock's default), for the GUI
// and `madoguchi cli` alike, re-read at most every 100 ms (internal/faults/clockskew).
// libfaketime cannot do this: Go reads the time through the vDSO, not libc.
//
// MADOGUCHI_FSYNC_FAULT_FILE names a file whose appearance makes every fsync of the process fail
// with EIO from then on (internal/faults/fsyncfail: a seccomp filter; the file is checked at
// start and every 100 ms).

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
