// Package buildcheck holds no code: its test builds the terminal and ca-server with and without
// the faultcampaign tag and checks that only the tagged builds carry the fault campaign's hooks
// (issue 15): a default binary holds none of the environment variable names
// (MADOGUCHI_HSM_FAULT, MADOGUCHI_CLOCK_SKEW_FILE), since `go version -m` lists tags but cannot
// show what a binary reads; and the tagged terminal's clock follows the skew file.
package buildcheck
