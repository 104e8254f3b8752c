#!/usr/bin/env bash
# deps-check.sh — check the binaries' boundaries with `go list` (issue 16): the terminal binary
# links nothing under madoguchi/ca-server and not the demo's service supervisor; ca-server links
# nothing of the terminal; the demo build (-tags demo) does link the supervisor. The rules are
# data, in internal/depcheck/rules.txt, which internal/depcheck's Go test checks too, so
# `go test ./...` alone catches a broken boundary. Run by scripts/test.sh before the tests.
#
#   scripts/deps-check.sh                         enforce the rules marked on
#   MADOGUCHI_DEPS_PENDING=1 scripts/deps-check.sh  enforce the pending ones too
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export PATH="/usr/local/go/bin:$PATH"

rules="$here/internal/depcheck/rules.txt"
pending="${MADOGUCHI_DEPS_PENDING:-}"

# under PATH PKG: PKG is PATH or below it (madoguchi/app matches madoguchi/app/issue, not
# madoguchi/apple).
under() { [[ $2 == "$1" || $2 == "$1"/* ]]; }

failed=0
while read -r state name tags packages relation path; do
	[[ -z $state || $state == \#* ]] && continue
	enforce=1
	[[ $state == pending && -z $pending ]] && enforce=
	args=()
	[[ $tags != - ]] && args+=(-tags "$tags")
	IFS=, read -r -a pkgs <<<"$packages"
	# Every package of the build, with its direct imports: "pkg imp1 imp2 ...".
	case $relation in
	links | links-not) graph="$(go list -deps "${args[@]}" -f '{{.ImportPath}} {{join .Imports " "}}' "${pkgs[@]}")" ;;
	imports-not) graph="$(go list "${args[@]}" -f '{{.ImportPath}} {{join .Imports " "}}' "${pkgs[@]}")" ;;
	*)
		echo "deps-check: $name: unknown relation $relation" >&2
		exit 2
		;;
	esac
	found=()
	while read -r pkg imports; do
		if [[ $relation == imports-not ]]; then
			for imp in $imports; do under "$path" "$imp" && found+=("$pkg imports $imp"); done
		elif under "$path" "$pkg"; then
			# Who brings it in: the packages of the build that import it directly.
			by="$(awk -v p="$pkg" '{for (i = 2; i <= NF; i++) if ($i == p) print $1}' <<<"$graph" | paste -sd, -)"
			found+=("$pkg${by:+ (imported by $by)}")
		fi
	done <<<"$graph"
	ok=
	case $relation in
	links) ((${#found[@]})) && ok=1 ;;
	*) ((${#found[@]})) || ok=1 ;;
	esac
	if [[ -n $ok ]]; then
		echo "deps-check: ok   $name"
		continue
	fi
	if [[ -z $enforce ]]; then
		echo "deps-check: pending, not enforced: $name ($packages $relation $path):"
	else
		echo "deps-check: FAIL $name ($packages$([[ $tags != - ]] && echo " -tags $tags") $relation $path):"
		failed=$((failed + 1))
	fi
	if [[ $relation == links ]]; then
		echo "    no package $path in the build"
	fi
	for f in "${found[@]}"; do echo "    $f"; done
done <"$rules"
if ((failed)); then
	echo "deps-check: $failed rule(s) broken (rules: internal/depcheck/rules.txt)" >&2
	exit 1
fi
