#!/usr/bin/env bash
# Installs what the ALTCHA widget test (internal/app/altcha_browser_test.go) needs: Node.js and
# npm from Debian (apt-get) when npm is missing, then the widget pinned in
# internal/app/testdata/altcha with `npm ci` (the committed package-lock.json, nothing else).
# Run it before the tests in CI: outside CI the test skips itself without npm; under CI=true it
# fails. Running it again is quick: npm ci reinstalls from npm's cache.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fixture="$root/internal/app/testdata/altcha"

if ! command -v npm >/dev/null 2>&1; then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "node-deps.sh: npm is missing and this system has no apt-get; install Node.js and npm yourself" >&2
		exit 1
	fi
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "node-deps.sh: installing Node.js needs root, and sudo is not installed" >&2
			exit 1
		fi
		sudo=sudo
	fi
	echo "node-deps.sh: installing Debian's nodejs and npm (apt-get)"
	$sudo apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

echo "node-deps.sh: node $(node --version), npm $(npm --version); npm ci in ${fixture#"$root"/}"
# --ignore-scripts: no package gets to run code at install time.
(cd "$fixture" && npm ci --no-audit --no-fund --ignore-scripts)
