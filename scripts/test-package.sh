#!/usr/bin/env bash
# The package suite: builds the .deb (scripts/package-deb.sh), checks what it holds
# and that apt can install it here, then installs it with dpkg into a clean copy
# of PostgreSQL that has never seen a pg_tenancy build (scripts/pg-tree.sh), starts
# a cluster on that copy with the library preloaded and runs sql/demo.sql in it.
#
#   scripts/test-package.sh          PROFILE=debug skips the slow release build
#
# PG=pg17 tests the package of another major: its files sit where Debian's
# and PGDG's postgresql-17 look for them, which the private copy of the
# relocatable build (scripts/pg-tree.sh) is given as links to its own.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
major=${PG:-$(config postgres default)}
pg_config=$(config pg_config "$major")
root=$(config test cluster_root)
host=$(config test host)
user=$(config test user)
version=$(awk -F'"' '/^version *=/ { print $2; exit }' "$here/Cargo.toml")
out="$here/target/package-test"
rm -rf "$out"; mkdir -p "$out"

deb=$("$here/scripts/package-deb.sh")
echo "package: built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

# What it holds: the library, the control file, today's install script, every
# upgrade script, where Debian's PostgreSQL of this major looks for them.
number=${major#pg}
deb_libdir=/usr/lib/postgresql/$number/lib
deb_sharedir=/usr/share/postgresql/$number
dpkg-deb --contents "$deb" | awk '{ print $NF }' | sed 's|^\./|/|' >"$out/contents.txt"
extdir=$deb_sharedir/extension
expected=("$deb_libdir/pg_tenancy.so" "$extdir/pg_tenancy.control" "$extdir/pg_tenancy--$version.sql")
for step in "$here"/sql/pg_tenancy--*--*.sql; do expected+=("$extdir/$(basename "$step")"); done
missing=0
for file in "${expected[@]}"; do
    grep -qxF "$file" "$out/contents.txt" || { echo "package: $file is not in the package"; missing=1; }
done
[ "$missing" -eq 0 ] || exit 1
echo "package: holds the library, control file, install script and ${#expected[@]} files in all"

# apt would install it on this machine (dependencies resolve), without installing
# it; only where apt knows this major's server package.
if [ -z "$(apt-cache policy "postgresql-$number" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)"')" ]; then
    echo "package: apt knows no postgresql-$number here: dependency resolution not tried"
elif [ "$(id -u)" -eq 0 ]; then
    apt-get install --simulate --no-install-recommends "$deb" >"$out/apt.txt" 2>&1 \
        || { cat "$out/apt.txt"; echo "package: apt-get cannot install it"; exit 1; }
    grep -q "^Inst postgresql-[0-9]*-pg-tenancy\|is already the newest version" "$out/apt.txt" \
        || { cat "$out/apt.txt"; echo "package: apt-get would not install it"; exit 1; }
    echo "package: apt-get install resolves its dependencies"
fi

# Install into a clean PostgreSQL with dpkg, as apt would, but into a private root.
tree="$root/trees/package"
tree_bindir=$("$here/scripts/pg-tree.sh" "$tree")
# A build kept elsewhere than Debian's places gets links from them to its own.
tree_libdir=$("$tree_bindir/pg_config" --pkglibdir)
tree_sharedir=$("$tree_bindir/pg_config" --sharedir)
if [ "$tree_libdir" != "$tree$deb_libdir" ]; then
    mkdir -p "$(dirname "$tree$deb_libdir")" "$(dirname "$tree$deb_sharedir")"
    ln -s "$tree_libdir" "$tree$deb_libdir"
    ln -s "$tree_sharedir" "$tree$deb_sharedir"
fi
mkdir -p "$tree/var/lib/dpkg/info" "$tree/var/lib/dpkg/updates"
touch "$tree/var/lib/dpkg/status"
dpkg --root="$tree" --force-not-root --force-depends --force-script-chrootless -i "$deb" >"$out/dpkg.txt" 2>&1 \
    || { cat "$out/dpkg.txt"; echo "package: dpkg could not install it"; exit 1; }
chmod -R a+rX "$tree"
[ -f "$("$tree_bindir/pg_config" --pkglibdir)/pg_tenancy.so" ] || { echo "package: dpkg left no library"; exit 1; }

cluster=package
port=$(PG_BINDIR=$tree_bindir "$here/scripts/cluster.sh" start "$cluster" "shared_preload_libraries = 'pg_tenancy'")
trap '"$here/scripts/cluster.sh" stop "$cluster"; rm -rf "$tree"' EXIT
psql() { "$tree_bindir/psql" -X -q -h "$host" -p "$port" -U "$user" "$@"; }
psql -d postgres -c "CREATE DATABASE demo"
if psql -d demo -v ON_ERROR_STOP=1 -f "$here/sql/demo.sql" >"$out/demo.out" 2>&1; then
    echo "package: sql/demo.sql runs on the installed package ($(grep -c '' "$out/demo.out") lines of output)"
else
    tail -20 "$out/demo.out"; echo "package: the demo FAILED on the installed package"; exit 1
fi
findings=$(psql -d demo -At -c "SELECT count(*) FROM tenancy.verify_isolation()")
[ "$findings" = 0 ] || { psql -d demo -c "SELECT * FROM tenancy.verify_isolation()"; echo "package: the demo database breaks isolation"; exit 1; }
echo "package: verify_isolation() finds nothing in the demo database"
installed=$(psql -d demo -At -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_tenancy'")
[ "$installed" = "$version" ] || { echo "package: installed version is $installed, not $version"; exit 1; }
echo "package: ok ($(basename "$deb"), pg_tenancy $installed)"
