#!/usr/bin/env bash
# services-clean.sh — stop services that internal/testenv started for test processes that are
# gone, and remove their temporary directories. Run it before a test run (safe while other
# tests run: it leaves alone everything a live test process owns).
#
# How it recognises harness services: every child testenv starts carries
#   MADOGUCHI_TESTENV_OWNER=<pid>:<start time>
# in its environment (the test process's pid and its start time in clock ticks since boot,
# /proc/<pid>/stat field 22, so a reused pid does not count as alive). A process whose owner is
# no longer that process is a leftover: SIGTERM, then SIGKILL after a grace period. Temporary
# directories /tmp/madoguchi-testenv-* hold an "owner" file with the same value.
#
# pcscd is the exception: only one can run per machine, and the harness owns it. If nobody holds
# the harness lock /run/lock/madoguchi-pcscd.lock, any pcscd still running is in the way of the
# next test and is stopped, whoever started it (say so with --keep-foreign-pcscd to keep a
# pcscd the harness did not start).
#
# Options: --dry-run (only print), --keep-foreign-pcscd. Needs root to see other users' services
# (postgres runs as the postgres user).
set -euo pipefail

dry_run=0
keep_foreign_pcscd=0
for arg in "$@"; do
	case $arg in
	--dry-run) dry_run=1 ;;
	--keep-foreign-pcscd) keep_foreign_pcscd=1 ;;
	-h | --help)
		sed -n '2,20p' "$0"
		exit 0
		;;
	*)
		echo "services-clean: unknown option $arg" >&2
		exit 2
		;;
	esac
done

marker=MADOGUCHI_TESTENV_OWNER
lock=/run/lock/madoguchi-pcscd.lock

# start_time PID: field 22 of /proc/PID/stat (the command name may contain spaces and parens).
start_time() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# Fields after "comm) " start at field 3.
	awk '{print $20}' <<<"$stat"
}

# proc_state PID: the state letter (R, S, Z, ...); fails if PID is gone.
proc_state() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	echo "${stat%% *}"
}

# owner_alive "PID:START": is that process still the one that started the service?
owner_alive() {
	local pid=${1%%:*} start=${1#*:} now
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	now=$(start_time "$pid") || return 1
	[[ $now == "$start" ]]
}

# owner_of PID: the marker value in PID's environment, empty if none.
owner_of() {
	{ tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | sed -n "s/^$marker=//p" | head -n1
}

# stop_pids PID...: SIGTERM, wait up to 10 s, SIGKILL the rest.
stop_pids() {
	(($#)) || return 0
	if ((dry_run)); then
		for p in "$@"; do echo "services-clean: would stop $p: $({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null)"; done
		return 0
	fi
	for p in "$@"; do
		echo "services-clean: stopping $p: $({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null)"
		kill -TERM "$p" 2>/dev/null || true
	done
	local p alive state
	for _ in $(seq 100); do
		alive=()
		for p in "$@"; do
			# gone, or a zombie waiting for its new parent: done
			state=$(proc_state "$p") || continue
			if [[ $state != Z ]]; then
				alive+=("$p")
			fi
		done
		((${#alive[@]})) || return 0
		sleep 0.1
	done
	for p in "${alive[@]}"; do
		echo "services-clean: $p ignored SIGTERM, sending SIGKILL"
		kill -KILL "$p" 2>/dev/null || true
	done
}

# 1. Harness children whose owner is gone.
leftovers=()
for d in /proc/[0-9]*; do
	pid=${d#/proc/}
	[[ $pid == "$$" ]] && continue
	owner=$(owner_of "$pid") || continue
	[[ -n $owner ]] || continue
	owner_alive "$owner" && continue
	leftovers+=("$pid")
done
stop_pids "${leftovers[@]}"

# 2. pcscd: machine-wide. Only when no test holds the harness lock.
mkdir -p "$(dirname "$lock")"
exec 9>>"$lock"
if flock -n 9; then
	pcscds=()
	for pid in $(pgrep -x pcscd || true); do
		if ((keep_foreign_pcscd)) && [[ -z $(owner_of "$pid") ]]; then
			echo "services-clean: keeping pcscd $pid (not started by testenv)"
			continue
		fi
		pcscds+=("$pid")
	done
	stop_pids "${pcscds[@]}"
	if ((!dry_run)) && ! pgrep -x pcscd >/dev/null; then
		rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
	fi
	flock -u 9
else
	echo "services-clean: a test holds $lock; leaving pcscd alone"
fi
exec 9>&-

# 3. Temporary directories of dead owners.
for dir in /tmp/madoguchi-testenv-*; do
	[[ -d $dir ]] || continue
	owner=$(cat "$dir/owner" 2>/dev/null || true)
	if [[ -n $owner ]] && owner_alive "$owner"; then
		continue
	fi
	# A directory created a moment ago may not have its owner file yet.
	if [[ -z $owner ]] && [[ -n $(find "$dir" -maxdepth 0 -mmin -1) ]]; then
		continue
	fi
	if ((dry_run)); then
		echo "services-clean: would remove $dir"
	else
		rm -rf "$dir"
	fi
done
