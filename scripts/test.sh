#!/usr/bin/env bash
# Runs what CI runs: the gofmt check, go vet and the whole test suite, PostgreSQL tests included
# when PostgreSQL is reachable (under CI=true they are required and fail without it).
set -euo pipefail

cd "$(dirname "$0")/.."

export GOTOOLCHAIN=go1.27.3
export PATH="/usr/local/go/bin:$PATH"
PATH="$(go env GOPATH)/bin:$PATH"
export PATH

# mailpit, the real SMTP server the delivery tests talk to (built once from the module proxy).
scripts/mailpit.sh
# Chromium, the browser of the passkey browser test (installed with apt-get when missing).
scripts/chromium.sh
# Node.js, the ALTCHA widget the proof-of-work browser test loads and the Node relying parties of
# the OpenID Provider tests (npm ci from the lockfiles).
scripts/node-deps.sh

# Start the local PostgreSQL cluster if it is installed but not running (a machine where the
# service was stopped, or one that never started it).
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
	if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
		for version in $(ls /etc/postgresql); do
			echo "test.sh: starting PostgreSQL $version"
			pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
		done
		for _ in $(seq 1 30); do
			pg_isready -q -h 127.0.0.1 -p 5432 && break
			sleep 1
		done
	fi
fi
if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
	echo "test.sh: PostgreSQL is up; PostgreSQL tests will run"
else
	echo "test.sh: PostgreSQL is not reachable; PostgreSQL tests will be skipped (they fail under CI=true)"
fi

# step runs a command under a name and prints how long it took.
step() {
	local name=$1
	shift
	echo "test.sh: $name"
	local start=$SECONDS
	"$@"
	echo "test.sh: $name took $((SECONDS - start)) s"
}

echo "test.sh: gofmt"
unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
	echo "these files are not gofmt-formatted (run make fmt):"
	echo "$unformatted"
	exit 1
fi

step "go vet" go vet ./...
step "go vet (test-clock build)" go vet -tags latchkey_testclock ./cmd/latchkey

# The package tests first, then the end-to-end tests of the built binary on their own: those
# start several server processes each, and sharing the two cores with the heaviest package
# would only slow both.
packages=$(go list ./... | grep -v '/cmd/latchkey$')
step "go test (packages)" go test -count=1 -timeout 15m $packages
step "go test (end to end: cmd/latchkey)" go test -count=1 -timeout 15m ./cmd/latchkey
