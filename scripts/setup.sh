#!/usr/bin/env bash
# setup.sh — install everything Madoguchi needs on a Debian 12 machine, idempotently.
#
# Run as root. Quick when everything is already there: it asks dpkg which packages are
# missing and only then runs apt-get. Go modules are downloaded into the module cache.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages, grouped by why we need them (see ../shared/docs/PLATFORM.md).
packages=(
	# cgo toolchain and pkg-config for ebfe/scard
	build-essential pkg-config
	# PC/SC: the daemon, its headers, the vpcd virtual reader, OpenSC's jpki driver, tools
	pcscd libpcsclite-dev vsmartcard-vpcd opensc pcsc-tools
	# HSM: SoftHSM2 (PKCS#11 module /usr/lib/softhsm/libsofthsm2.so) and openssl for checks
	softhsm2 openssl
	# fingerprint login: fprintd with libfprint's virtual device, a private D-Bus
	fprintd libfprint-2-2 dbus
	# Fyne: GL and X11 headers; Xvfb for a virtual display; imagemagick for screenshots
	libgl1-mesa-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev
	xvfb xauth imagemagick x11-utils xdotool
	# PostgreSQL server binaries (initdb/postgres run from a temporary directory in tests)
	postgresql
	# PDF checks in tests (pdftotext, pdftoppm, pdffonts)
	poppler-utils
	# printing: cupsd for the private print servers of tests and the demo (internal/services
	# runs it in the foreground with its own ServerRoot: no system service is needed or used),
	# and lpadmin/cupsenable/cupsdisable/lp to administer them; the terminal itself speaks IPP
	cups-daemon cups-client
)

missing=()
for p in "${packages[@]}"; do
	[[ $p == \#* ]] && continue
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's pcscd package may start a system pcscd (socket activation under systemd). The
# tests and the demo run their own, and there can be only one per machine.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
	systemctl disable --now pcscd.socket pcscd.service >/dev/null 2>&1 || true
fi

# Go: /usr/local/go on this machine kind.
if ! command -v go >/dev/null 2>&1; then
	if [[ -x /usr/local/go/bin/go ]]; then
		export PATH="/usr/local/go/bin:$PATH"
	else
		echo "setup: Go is not installed (expected /usr/local/go)" >&2
		exit 1
	fi
fi

cd "$here"
go mod download
