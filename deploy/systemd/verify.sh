#!/bin/sh
# Checks the unit with systemd-analyze verify against a freshly built
# ca-server (the unit names /usr/local/bin/ca-server, which a build machine
# does not have). Starts nothing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$here/../.." && go build -o "$tmp/ca-server" ./ca-server)
sed "s|/usr/local/bin/ca-server|$tmp/ca-server|" "$here/ca-server.service" >"$tmp/ca-server.service"
systemd-analyze verify "$tmp/ca-server.service"
echo "ca-server.service: ok"
