#!/usr/bin/env bash
# Builds the shared library of a released version from the commit RELEASES names
# for it, so the upgrade test can install each release with its own library:
#
#   scripts/build-release.sh VERSION      prints the directory holding
#                                         pg_tenancy.so and pg_tenancy.control
#
# The source comes from git (git archive), so this needs the repository's history,
# as any clone of main has. Builds are cached in target/releases/VERSION and share
# one target directory, so a later release only recompiles the extension itself.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
[ $# -eq 1 ] || { echo "usage: $0 VERSION" >&2; exit 2; }
version=$1
major=${PG:-$(config postgres default)}
pg_config=$(config pg_config "$major")

commit=$(awk -v v="$version" '!/^#/ && $1 == v { print $2 }' "$here/sql/releases/RELEASES")
[ -n "$commit" ] || { echo "build-release: $version is not in sql/releases/RELEASES" >&2; exit 1; }
out="$here/target/releases/$version-$major"
if [ -f "$out/pg_tenancy.so" ] && [ "$(cat "$out/commit" 2>/dev/null)" = "$commit" ]; then
    echo "$out"
    exit 0
fi
git -C "$here" cat-file -e "$commit^{commit}" 2>/dev/null \
    || { echo "build-release: commit $commit of release $version is not in this clone (a shallow clone?)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/src"
git -C "$here" archive "$commit" | tar -x -C "$out/src"
echo "build-release: building $version ($commit) for $major" >&2
(
    cd "$out/src"
    PGRX_PG_CONFIG_PATH="$pg_config" CARGO_TARGET_DIR="$here/target/releases/target" \
        cargo build --lib --locked --no-default-features --features "$major" --message-format=short >&2
)
cp "$here/target/releases/target/debug/libpg_tenancy.so" "$out/pg_tenancy.so"
# The control file as cargo-pgrx installs it.
sed "s/@CARGO_VERSION@/$version/" "$out/src/pg_tenancy.control" >"$out/pg_tenancy.control"
rm -rf "$out/src"
echo "$commit" >"$out/commit"
echo "$out"
