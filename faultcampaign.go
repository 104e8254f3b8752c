//go:build faultcampaign

// This file is the fault campaign's way into the terminal (issue 15), and is never in a
// production build: it is compiled only with `go build -tags faultcampaign .`, and a default
// build holds none of its environment variable names (see internal/faults/buildcheck).
// internal/faults/campaignenv reads them: the wall clock's skew file (behind app/clock.System,
// app.Config.Clock's default, for the GUI and `madoguchi cli` alike) and the fsync fault.

package main

import "madoguchi/internal/faults/campaignenv"

func init() { campaignenv.Arm("madoguchi") }
