#!/usr/bin/env bash
# Installs what the Node-based tests need: Node.js and npm from Debian (apt-get) when npm is
# missing, then, with `npm ci` (the committed package-lock.json, nothing else):
#   - internal/app/testdata/altcha: the ALTCHA widget (internal/app/altcha_browser_test.go);
#   - tools/oidc-rp: the stock OIDC relying parties openid-client and Auth.js
#     (cmd/latchkey/noderp_test.go) and oidc-client-ts for the SPA fixture
#     (internal/app/testdata/spa).
# Run it before the tests in CI: outside CI those tests skip themselves without npm or the
# installed packages; under CI=true they fail. Running it again is quick: npm ci reinstalls
# from npm's cache.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fixtures=("$root/internal/app/testdata/altcha" "$root/tools/oidc-rp")

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

node_major=$(node -p 'process.versions.node.split(".")[0]')
for fixture in "${fixtures[@]}"; do
	# openid-client v6, jose 6 and Auth.js need Node.js 20 or newer (global WebCrypto); Debian
	# bookworm's nodejs is 18: say so here (after the ALTCHA widget, which does not care)
	# rather than let the relying-party tests fail obscurely.
	if [ "$fixture" = "$root/tools/oidc-rp" ] && [ "$node_major" -lt 20 ]; then
		echo "node-deps.sh: node $(node --version) is too old for tools/oidc-rp, which needs Node.js 20 or newer" >&2
		exit 1
	fi
	echo "node-deps.sh: node $(node --version), npm $(npm --version); npm ci in ${fixture#"$root"/}"
	# --ignore-scripts: no package gets to run code at install time.
	(cd "$fixture" && npm ci --no-audit --no-fund --ignore-scripts)
done
