#!/usr/bin/env bash
# Installs mailpit, the SMTP server the mail tests run against, into $(go env GOBIN) or
# $(go env GOPATH)/bin. Does nothing, quietly, when that version is already there. The version
# is read from the binary's Go build information: `mailpit version` would call GitHub.
set -euo pipefail

export GOTOOLCHAIN=go1.27.3
export PATH="/usr/local/go/bin:$PATH"

version=v1.33.1
module=github.com/axllent/mailpit

bindir="$(go env GOBIN)"
if [ -z "$bindir" ]; then
	bindir="$(go env GOPATH | cut -d: -f1)/bin"
fi
bin="$bindir/mailpit"

if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|$)"; then
	exit 0
fi

echo "mailpit.sh: installing $module@$version into $bindir (about 90 s)"
# Outside the repository, so that its go.mod plays no part.
(cd "${TMPDIR:-/tmp}" && go install "$module@$version")
echo "mailpit.sh: installed $bin"
