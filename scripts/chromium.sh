#!/usr/bin/env bash
# Installs Debian's chromium, the browser of the passkey browser test
# (internal/app/passkey_browser_test.go), when /usr/bin/chromium is missing. Does nothing,
# quietly, when it is there. Outside CI the test skips itself without Chromium; under CI=true
# it fails, so CI must run this first (scripts/test.sh does).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "chromium.sh: /usr/bin/chromium is missing and this system has no apt-get; install Chromium yourself" >&2
	exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "chromium.sh: installing Chromium needs root, and sudo is not installed" >&2
		exit 1
	fi
	sudo=sudo
fi

echo "chromium.sh: installing Debian's chromium (apt-get)"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
echo "chromium.sh: installed $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
