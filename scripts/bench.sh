#!/usr/bin/env bash
# bench.sh — run every Go benchmark of Madoguchi and keep the raw output under var/bench/.
# Results with their same-run baselines are summarised by hand in docs/BENCHMARKS.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
"$here/scripts/setup.sh"
export PATH="/usr/local/go/bin:$PATH"

# wrk (HTTP load tool) for the OCSP load test; installed only if missing.
if ! command -v wrk >/dev/null 2>&1; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "bench: wrk is missing and installing it needs root: apt-get install -y wrk" >&2
		exit 1
	fi
	echo "bench: installing wrk"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

mkdir -p var/bench
out="var/bench/$(date -u +%Y%m%dT%H%M%SZ).txt"
# BenchmarkCounterIssuance (app/issue) runs on its own below, with a fixed number of issuances.
skip=()
[[ -z ${1:-} ]] && skip=(-skip 'BenchmarkCounterIssuance$')
go test -run '^$' -bench "${1:-.}" "${skip[@]}" -benchmem -count="${BENCH_COUNT:-1}" ./... | tee "$out"
# The counter's issuance of both certificates through pcscd + vpcd and a real serve over mTLS
# with a warm key pool, with its same-run baselines (p50/p95 and per-phase medians in the
# log); at least 30 issuances (BENCH_ISSUANCES). Only in a full run.
if [[ -z ${1:-} ]]; then
	go test -run '^$' -bench 'BenchmarkCounterIssuance$' -benchtime "${BENCH_ISSUANCES:-30}x" -v ./app/issue | tee -a "$out"
fi
# OCSP responder under load (50 clients, wrk on loopback) next to a static server, about 30 s;
# only in a full run (no benchmark pattern given). It exits non-zero when a target is missed:
# keep the numbers and go on.
if [[ -z ${1:-} ]]; then
	go run ./ca-server/ocsp/cmd/ocspbench | tee -a "$out" ||
		echo "bench: ocspbench reported a missed target or failed (see above)" | tee -a "$out"
fi
echo "bench: raw output in $out"
