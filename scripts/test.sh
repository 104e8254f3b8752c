#!/usr/bin/env bash
# test.sh — run every test of Madoguchi: formatting, vet, and go test with -race for every
# package that does not link Fyne's cgo GL driver (the race detector and GL's C build do not
# mix well, and GL costs minutes), plain go test for the rest.
#
# Services (pcscd + vpcd, SoftHSM, Xvfb, fprintd, PostgreSQL) are started by the tests
# themselves through internal/testenv, and a service that cannot start fails its test.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

"$here/scripts/setup.sh"
export PATH="/usr/local/go/bin:$PATH"

# Leftovers of an interrupted earlier run (pcscd is machine-wide).
if [[ -x "$here/scripts/services-clean.sh" ]]; then
	"$here/scripts/services-clean.sh"
fi

echo "== gofmt"
unformatted="$(gofmt -l $(git ls-files -co --exclude-standard '*.go'))"
if [[ -n $unformatted ]]; then
	echo "gofmt: these files are not formatted:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...
# The fault campaign's files (issue 15) are only compiled with their tag.
go vet -tags faultcampaign . ./ca-server ./internal/cmd/madoguchi-cli
# The demo build's files (demofinger.go) too.
go vet -tags demo .

# The binaries' boundaries (issue 16): the terminal links nothing of ca-server nor the demo's
# services; ca-server links nothing of the terminal (internal/depcheck/rules.txt).
echo "== deps-check"
"$here/scripts/deps-check.sh"

# Packages whose test binary links github.com/go-gl/gl (directly or through Fyne's driver).
mapfile -t all < <(go list ./...)
mapfile -t gl < <(go list -test -f '{{.ImportPath}} {{join .Deps " "}}' ./... |
	awk '/ github.com\/go-gl\/gl/ {sub(/\.test$/, "", $1); print $1}' | sort -u)
race=()
for p in "${all[@]}"; do
	skip=
	for g in "${gl[@]}"; do [[ $p == "$g" ]] && skip=1; done
	[[ -z $skip ]] && race+=("$p")
done

timeout="${MADOGUCHI_TEST_TIMEOUT:-25m}"
status=0
if ((${#gl[@]})); then
	echo "== go test (links Fyne GL, no -race): ${gl[*]}"
	go test -count=1 -timeout "$timeout" "${gl[@]}" || status=$?
fi
echo "== go test -race"
go test -race -count=1 -timeout "$timeout" "${race[@]}" || status=$?
exit $status
