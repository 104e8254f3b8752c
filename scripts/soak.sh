#!/usr/bin/env bash
# soak.sh [DURATION] [sqlite|postgres] — the CA under mixed load (issue 15): `ca-server serve`
# (a child process: SoftHSM; SQLite, or PostgreSQL) serving two enrolled terminals' issuances
# (a share revoked at the counter, a share never confirmed), a registered verifier's OCSP
# (good, revoked, never-delivered and unknown serials) and CRL fetches, and publishing a CRL
# every minute, for DURATION (default 10m). Every 10 s it samples serve's resident memory,
# Go heap, goroutines and open files; at the end it prints the figures, the answers by kind
# and status, the issuance p50/p95 and the verdict (ca-server/soak_test.go: soakFlat), and
# fails on any error answer, a figure not flat, or goroutines/files not back after the load.
# The report is also written to var/soak/. CI runs the 20 s smoke version of the same test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export PATH="/usr/local/go/bin:$PATH"

duration="${1:-10m}"
db="${2:-sqlite}"
case $db in
sqlite) export MADOGUCHI_SOAK_DB= ;;
postgres) export MADOGUCHI_SOAK_DB=postgres ;;
*) echo "usage: soak.sh [DURATION] [sqlite|postgres]" >&2; exit 2 ;;
esac
mkdir -p var/soak
export MADOGUCHI_SOAK_DURATION="$duration"
export MADOGUCHI_SOAK_REPORT="$here/var/soak/$(date -u +%Y%m%dT%H%M%SZ)-$db-$duration.md"
go test -count=1 -timeout 2h -run '^TestSoakMixedLoad$' -v ./ca-server
echo "soak: report in $MADOGUCHI_SOAK_REPORT"
