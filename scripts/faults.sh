#!/usr/bin/env bash
# faults.sh — the fault campaign (issue 15, docs/RELIABILITY.md): builds and runs
# internal/cmd/faults, which sets up SoftHSM, the CA, pcscd+vpcd and an enrolled terminal, then
# runs the cases. Needs what scripts/setup.sh installs; run as root for the disk-full kind.
#
#   scripts/faults.sh -n 1000 -seed 20261207                   # SQLite
#   scripts/faults.sh -n 300 -seed 20261207 -db postgres        # PostgreSQL
#   scripts/faults.sh -seed S -from K -n 1                      # replay case K
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bin="$(mktemp -d)/faults"
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./internal/cmd/faults
"$bin" "$@"
