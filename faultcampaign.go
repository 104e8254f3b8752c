//go:build faultcampaign

// This file is the fault campaign's way into the terminal (issue 15), and is never in a
// production build: it is compiled only with `go build -tags faultcampaign .`, and a default
// build holds none of its environment variable names (see internal/faults/buildcheck).
//
// MADOGUCHI_CLOCK_SKEW_FILE names a file holding a Go duration added to the terminal's wall
// clock (internal/wallclock, behind app/clock.System, app.Config.Clock's default), for the GUI
// and `madoguchi cli` alike, re-read at most every 100 ms (internal/faults/clockskew).
// libfaketime cannot do this: Go reads the time through the vDSO, not libc.

package main

import (
	"os"

	"madoguchi/internal/faults/clockskew"
	"madoguchi/internal/wallclock"
)

func init() {
	if path := os.Getenv("MADOGUCHI_CLOCK_SKEW_FILE"); path != "" {
		wallclock.SetOffset(clockskew.File(path))
	}
}
