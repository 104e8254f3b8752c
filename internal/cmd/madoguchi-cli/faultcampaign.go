//go:build faultcampaign

// The fault campaign's clock for this CLI-only terminal binary, as the root package's
// faultcampaign.go does for `madoguchi cli` (issue 15); never in a production build.
// MADOGUCHI_CLOCK_SKEW_FILE names a file holding a Go duration added to the terminal's wall
// clock (internal/wallclock), re-read at most every 100 ms (internal/faults/clockskew).

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
