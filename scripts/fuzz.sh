#!/usr/bin/env bash
# fuzz.sh — run Madoguchi's Go fuzz targets, each for a given time on one core, and print a
# table of execs, execs/s, new interesting inputs and crashes per target.
#
#   scripts/fuzz.sh [-t DURATION] [-j JOBS] [-m MINIMIZE] [TARGET...]
#
# DURATION is a Go duration (default 1m). JOBS is how many targets run at once (default 1;
# each target uses one core: -parallel=1). MINIMIZE bounds the minimisation of each new
# interesting input and crasher (-fuzzminimizetime; default 0: none). TARGET is a fuzz
# function name (FuzzX) or pkgdir:FuzzX; the default is every Fuzz function in the module.
#
# The seed corpus of every target already runs in `go test` (scripts/test.sh); this script
# is the long run. Go's default minimisation of 60 s made targets with kilobyte inputs
# (profiles, registers, key blobs) spend nearly all of a short run minimising: 23 execs in
# 15 s against 138,000 in 10 s without (FuzzParseProfile). A target that ends with only
# "context deadline exceeded" and no failing input is counted as complete: that is Go's
# fuzz coordinator reporting its own -fuzztime deadline (golang/go#75804, fixed in Go 1.27).
#
# The script changes no tracked file. Go keeps the inputs it finds interesting in its cache
# ($GOCACHE/fuzz); a crasher is written by go to <pkg>/testdata/fuzz/<Target>/, where it
# stays as the regression test of the fix. Raw logs go to $TMPDIR/madoguchi-fuzz.<date>/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export PATH="/usr/local/go/bin:$PATH"

dur=1m
jobs=1
minimize=0
while getopts "t:j:m:h" opt; do
	case $opt in
	t) dur=$OPTARG ;;
	j) jobs=$OPTARG ;;
	m) minimize=$OPTARG ;;
	*)
		sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))

# Every fuzz target of the module as "pkgdir:FuzzName", found in the _test.go files.
all=()
while IFS= read -r line; do
	file=${line%%:*}
	name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]+)\(.*/\1/' <<<"${line#*:}")
	all+=("$(dirname "$file"):$name")
done < <(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . | sed 's#^\./##' | sort)

targets=()
if [[ $# -eq 0 ]]; then
	targets=("${all[@]}")
else
	for want in "$@"; do
		found=0
		for t in "${all[@]}"; do
			if [[ $t == "$want" || ${t#*:} == "$want" ]]; then
				targets+=("$t")
				found=1
			fi
		done
		if [[ $found -eq 0 ]]; then
			echo "fuzz: no fuzz target $want" >&2
			exit 2
		fi
	done
fi

logs="${TMPDIR:-/tmp}/madoguchi-fuzz.$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$logs"
echo "fuzz: ${#targets[@]} targets, $dur each, $jobs at a time; logs in $logs" >&2

run_one() {
	local t=$1 dir=${1%%:*} name=${1#*:}
	local log="$logs/${dir//\//_}.$name.log"
	local start end rc=0
	start=$(date +%s)
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$dur" -fuzzminimizetime="$minimize" -parallel=1 "./$dir" >"$log" 2>&1 || rc=$?
	end=$(date +%s)
	echo "$rc $((end - start))" >"$log.rc"
}

running=0
for t in "${targets[@]}"; do
	run_one "$t" &
	running=$((running + 1))
	if [[ $running -ge $jobs ]]; then
		wait -n || true
		running=$((running - 1))
	fi
done
wait || true

# Table: the last "fuzz: elapsed: Ns, execs: N (R/sec), new interesting: N (total: N)" line of
# each log, and the crash (the "Failing input written to" line) when there is one.
fail=0
printf '%-58s %12s %9s %8s %s\n' TARGET EXECS EXECS/S NEW RESULT
for t in "${targets[@]}"; do
	dir=${t%%:*} name=${t#*:}
	log="$logs/${dir//\//_}.$name.log"
	read -r rc _ <"$log.rc"
	last=$(grep -E '^fuzz: elapsed:' "$log" | tail -n 1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	# elapsed is "45s", "5m0s" or "1h2m3s"
	secs=$(sed -nE 's/^fuzz: elapsed: (([0-9]+)h)?(([0-9]+)m)?([0-9]+)s.*/\2:\4:\5/p' <<<"$last" |
		awk -F: '{ print ($1 + 0) * 3600 + ($2 + 0) * 60 + $3 }')
	new=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	rate=-
	if [[ -n $execs && -n $secs && $secs -gt 0 ]]; then
		rate=$((execs / secs))
	fi
	result=ok
	if [[ $rc -ne 0 ]]; then
		crasher=$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "$log" | head -n 1)
		if [[ -n $crasher ]]; then
			fail=1
			result="CRASH $dir/$crasher"
		elif grep -qx $'\tcontext deadline exceeded\|    context deadline exceeded' "$log"; then
			# Go's fuzz coordinator can report the end of -fuzztime itself as a failure
			# (golang/go#75804, fixed in Go 1.27): no input failed, the run is complete.
			result="ok (go#75804)"
		else
			fail=1
			result="FAILED (see $log)"
		fi
	fi
	printf '%-58s %12s %9s %8s %s\n' "$dir:$name" "${execs:--}" "$rate" "${new:--}" "$result"
done
exit $fail
