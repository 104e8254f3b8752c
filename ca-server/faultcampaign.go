//go:build faultcampaign

// This file is the fault campaign's way into ca-server (issue 15), and is never in a production
// build: it is compiled only with `go build -tags faultcampaign ./ca-server`, and
// internal/faults/buildcheck checks that a default build holds none of its
// environment variable names.
//
//   - MADOGUCHI_HSM_FAULT (serve only): an HSM fault at the PKCS#11 call boundary, in the syntax
//     of ca-server/internal/hsmfault/hsmspec (error@N[=CKR_NAME][:op=OPNAME],
//     stall@N=DURATION[:op=OPNAME]), counted from process start.
//   - MADOGUCHI_CLOCK_SKEW_FILE and MADOGUCHI_FSYNC_FAULT_FILE (every command): the CA's wall
//     clock skewed, every fsync failing once a file exists, as in the terminal
//     (internal/faults/campaignenv).
//
// A malformed value stops the process before it does anything (exit 2).

package main

import (
	"fmt"
	"os"

	"madoguchi/ca-server/internal/hsmfault"
	"madoguchi/ca-server/internal/hsmfault/hsmspec"
	"madoguchi/internal/faults/campaignenv"
)

func init() {
	campaignenv.Arm("ca-server")
	spec := os.Getenv("MADOGUCHI_HSM_FAULT")
	if spec == "" || len(os.Args) < 2 || os.Args[1] != "serve" {
		return
	}
	f, err := hsmspec.Parse(spec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ca-server: MADOGUCHI_HSM_FAULT: %v\n", err)
		os.Exit(2)
	}
	hsmfault.Set(f)
	fmt.Fprintf(os.Stderr, "ca-server: fault campaign build: HSM fault %q armed\n", spec)
}
