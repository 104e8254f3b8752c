#!/usr/bin/env bash
# demo.sh — run Madoguchi's demo on this machine: pcscd with the virtual readers, fprintd with
# the virtual fingerprint device, ca-server (SoftHSM token and SQLite store), a virtual My Number
# card in the first virtual reader, and the terminal window (under Xvfb when DISPLAY is unset,
# with var/demo/screenshot.png refreshed every few seconds).
#
# Run as root on Debian 12. It installs what is missing first (scripts/setup.sh, idempotent),
# builds the demo supervisor (internal/cmd/demo) into var/demo/bin and hands over to it; the
# supervisor builds ca-server, vcard and the terminal there too. Ctrl-C or SIGTERM stops
# everything cleanly; SIGUSR1 to the supervisor saves a screenshot now.
#
# Options are the supervisor's (see `scripts/demo.sh --help`), e.g.
#   scripts/demo.sh --data-dir /srv/madoguchi-demo --ca-listen 127.0.0.1:9443
# Data (CA keys, card, terminal database, logs) stays in var/demo/ between runs: remove it to
# start over.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

"$here/scripts/setup.sh"

if ! command -v go >/dev/null 2>&1; then
	export PATH="/usr/local/go/bin:$PATH"
fi

data_dir=var/demo
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	case ${args[i]} in
	--data-dir=* | -data-dir=*) data_dir=${args[i]#*=} ;;
	--data-dir | -data-dir) data_dir=${args[i + 1]:-$data_dir} ;;
	esac
done

mkdir -p "$data_dir/bin"
echo "demo.sh: building the demo supervisor (go build -o $data_dir/bin/demo ./internal/cmd/demo)"
go build -o "$data_dir/bin/demo" ./internal/cmd/demo
# exec: the supervisor itself receives Ctrl-C and SIGTERM and stops its children in order.
exec "$data_dir/bin/demo" --repo "$here" --data-dir "$data_dir" "$@"
