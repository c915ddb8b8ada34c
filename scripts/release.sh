#!/usr/bin/env bash
# Freezes the version in Cargo.toml as a release (docs/upgrading.md, "Releasing"):
#
#   scripts/release.sh
#
# Run it on a clean work tree whose HEAD is the release's source, with `make test`
# green. It writes sql/releases/pg_tenancy--V.sql (the install script cargo-pgrx
# generates from HEAD), appends V and HEAD's commit to sql/releases/RELEASES, and
# pins the new install script and the upgrade script into V in SHA256SUMS. Commit
# the result; from then on those files never change and the next SQL change needs
# a new version (scripts/check-releases.sh, the upgrade suite).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
cd "$here"
major=$(config postgres default)

version=$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)
newest=$(awk '!/^#/ && NF { v = $1 } END { print v }' sql/releases/RELEASES)
[ "$version" != "$newest" ] || { echo "release: $version is already released" >&2; exit 1; }
[ -z "$(git status --porcelain)" ] || { echo "release: the work tree has uncommitted changes" >&2; exit 1; }
[ -f "sql/pg_tenancy--$newest--$version.sql" ] || { echo "release: no sql/pg_tenancy--$newest--$version.sql" >&2; exit 1; }
scripts/check-releases.sh >/dev/null

commit=$(git rev-parse HEAD)
cargo pgrx schema "$major" -o "sql/releases/pg_tenancy--$version.sql" >&2
printf '%-6s %s  %s\n' "$version" "$commit" "$(date -u +%F)" >>sql/releases/RELEASES
(cd sql && sha256sum "releases/pg_tenancy--$version.sql" "pg_tenancy--$newest--$version.sql" >>releases/SHA256SUMS)
scripts/check-releases.sh
echo "release: $version frozen from $commit; commit sql/releases and sql/pg_tenancy--$newest--$version.sql"
