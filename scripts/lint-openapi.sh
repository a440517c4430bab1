#!/usr/bin/env bash
# Lints docs/openapi.json with Redocly CLI, pinned in tools/openapi/package-lock.json, against
# tools/openapi/redocly.yaml. Fails on any error and on any warning. Installs Node and npm from
# Debian when they are missing (a fresh CI machine), and the CLI with npm ci when
# tools/openapi/node_modules does not match the lock file; after that it needs no network.
set -euo pipefail

cd "$(dirname "$0")/.."
tools=tools/openapi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "lint-openapi.sh: node and npm are missing and this system has no apt-get; install Node.js 18.17 or later yourself" >&2
		exit 1
	fi
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "lint-openapi.sh: installing Node.js needs root, and sudo is not installed" >&2
			exit 1
		fi
		sudo=sudo
	fi
	echo "lint-openapi.sh: installing Debian's nodejs and npm (apt-get)"
	$sudo apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

# npm ci starts from scratch each time: skip it while node_modules holds what this lock file
# installed (a copy of the lock file is left there as the record).
if ! cmp -s "$tools/package-lock.json" "$tools/node_modules/.installed-lock.json" ||
	[ ! -x "$tools/node_modules/.bin/redocly" ]; then
	echo "lint-openapi.sh: npm ci in $tools"
	(cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
	cp "$tools/package-lock.json" "$tools/node_modules/.installed-lock.json"
fi

report=$(mktemp)
trap 'rm -f "$report"' EXIT
# The stylish report is for people; the JSON one is read for the counts, since Redocly itself
# exits 0 on warnings.
"$tools/node_modules/.bin/redocly" lint --config "$tools/redocly.yaml" --format=stylish docs/openapi.json || true
"$tools/node_modules/.bin/redocly" lint --config "$tools/redocly.yaml" --format=json docs/openapi.json >"$report" 2>/dev/null || true
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const { errors, warnings } = r.totals;
if (errors + warnings > 0) {
	console.error(`lint-openapi.sh: docs/openapi.json has ${errors} error(s) and ${warnings} warning(s)`);
	process.exit(1);
}
console.log(`lint-openapi.sh: docs/openapi.json is lint clean (Redocly ${r.version}, ${r.totals.ignored} listed exceptions)`);
' "$report"
