//go:build faultcampaign

// The fault campaign's hooks for this CLI-only terminal binary, as the root package's
// faultcampaign.go arms them for `madoguchi cli` (issue 15); never in a production build. The
// campaign runs this binary, so its clock-jump and fsync-error kinds need them here
// (internal/faults/campaignenv).

package main

import "madoguchi/internal/faults/campaignenv"

func init() { campaignenv.Arm("madoguchi-cli") }
