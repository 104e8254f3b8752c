#!/usr/bin/env bash
# bench.sh — run every Go benchmark of Madoguchi and keep the raw output under var/bench/.
# Results with their same-run baselines are summarised by hand in docs/BENCHMARKS.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
"$here/scripts/setup.sh"
export PATH="/usr/local/go/bin:$PATH"
mkdir -p var/bench
out="var/bench/$(date -u +%Y%m%dT%H%M%SZ).txt"
go test -run '^$' -bench "${1:-.}" -benchmem -count="${BENCH_COUNT:-1}" ./... | tee "$out"
echo "bench: raw output in $out"
