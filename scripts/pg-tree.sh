#!/usr/bin/env bash
# A private copy of the PostgreSQL installation that pgrx.toml names, without any
# pg_tenancy in it, for tests that must not touch (or see) the system's copy:
#
#   scripts/pg-tree.sh DIR      copies it into DIR and prints DIR's bindir
#
# PostgreSQL finds its lib and share directories relative to its own binaries, so
# the copy runs as it is; extensions installed into DIR are seen only by servers
# started from DIR's bindir. The upgrade test installs old releases there, the
# package test installs the .deb there (dpkg --root).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
pg_config=$(config pg_config "${PG:-$(config postgres default)}")

rm -rf "$dir"
# Every directory pg_config knows, at the same path under DIR.
for what in --bindir --pkglibdir --sharedir; do
    src=$("$pg_config" "$what" 2>/dev/null) || continue
    [ -d "$src" ] || continue
    mkdir -p "$dir$(dirname "$src")"
    [ -e "$dir$src" ] || cp -a "$src" "$dir$src"
done
rm -f "$dir$("$pg_config" --pkglibdir)"/pg_tenancy.so "$dir$("$pg_config" --sharedir)"/extension/pg_tenancy*
chmod -R a+rX "$dir"
bindir="$dir$("$pg_config" --bindir)"
# The copy must report its own place, or it is not a private tree.
[ "$("$bindir/pg_config" --sharedir)" = "$dir$("$pg_config" --sharedir)" ] \
    || { echo "pg-tree: PostgreSQL in $dir does not relocate" >&2; exit 1; }
echo "$bindir"
