#!/usr/bin/env bash
# The checks CI runs besides the test suite: go.mod is tidy, docs/openapi.json lints clean under
# Redocly, staticcheck is clean, govulncheck finds no called vulnerability (against an offline
# database built from the golang.org/x/vulndb module, since the online one is out of reach), and
# the packages with concurrency pass under the race detector. Each step prints its name and how
# long it took.
set -euo pipefail

cd "$(dirname "$0")/.."

export GOTOOLCHAIN=go1.27.3
export PATH="/usr/local/go/bin:$PATH"
PATH="$(go env GOPATH)/bin:$PATH"
export PATH

# Tool versions, pinned; bump them here.
STATICCHECK_VERSION=v0.8.2
GOVULNCHECK_VERSION=v1.10.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

tools="$(go env GOPATH)/latchkey-tools"
mkdir -p "$tools/bin"

step() {
	local name=$1
	shift
	echo "checks.sh: $name"
	local start=$SECONDS
	"$@"
	echo "checks.sh: $name took $((SECONDS - start)) s"
}

# tool installs a pinned Go tool once into $tools/bin (a version-named copy, so a bump
# rebuilds it).
tool() {
	local pkg=$1 version=$2 name
	name=$(basename "$pkg")
	if [ ! -x "$tools/bin/$name-$version" ]; then
		GOBIN="$tools/bin" go install "$pkg@$version"
		mv "$tools/bin/$name" "$tools/bin/$name-$version"
	fi
	echo "$tools/bin/$name-$version"
}

tidy() {
	if ! go mod tidy -diff; then
		echo "go.mod or go.sum is not tidy: run go mod tidy"
		return 1
	fi
}

run_staticcheck() {
	"$(tool honnef.co/go/tools/cmd/staticcheck "$STATICCHECK_VERSION")" ./...
}

run_govulncheck() {
	local bin db src
	bin=$(tool golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK_VERSION")
	db="$tools/vulndb-$VULNDB_VERSION"
	if [ ! -f "$db/index/db.json" ]; then
		src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
		rm -rf "$db.tmp"
		(cd "$src" && GOFLAGS=-mod=mod go run ./cmd/indexdb -vulns "$src/data/osv" -out "$db.tmp")
		mv "$db.tmp" "$db"
	fi
	# govulncheck type-checks the standard library of the toolchain it finds in GOROOT: point it
	# at the pinned one, not the machine's older Go.
	local goroot
	goroot=$(go env GOROOT)
	PATH="$goroot/bin:$PATH" GOROOT="$goroot" "$bin" -db "file://$db" ./...
}

# appRaceTests are the internal/app tests that run goroutines against one another: concurrent
# logins, redemptions and resends, logins cut short, the server's start and stop, the sweeper,
# the outbox worker and webhook deliveries, the lock-outs, the OIDC code and refresh races. The whole package under -race takes
# about 8 minutes on two loaded cores, over CI's budget; the other packages run whole.
appRaceTests='Concurrent|Race|Raced|AllOrNothing|ClientGone|Serve|Wiring|Sweep|Webhook|DeviceToken|Strangers|Resend|Refresh|ExchangedOnce|TwoTabs'

race() {
	go test -race -count=1 -timeout 15m \
		./internal/store/... ./internal/protect/... ./internal/token/... ./internal/outbox/... ./internal/oidcprovider/...
	go test -race -count=1 -timeout 15m -run "$appRaceTests" ./internal/app/
}

step "go mod tidy" tidy
step "OpenAPI lint (Redocly)" bash scripts/lint-openapi.sh
step "staticcheck" run_staticcheck
step "govulncheck (offline database $VULNDB_VERSION)" run_govulncheck
step "go test -race (store, protect, token, outbox, oidcprovider; app: the concurrent tests)" race
