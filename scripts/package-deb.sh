#!/usr/bin/env bash
# Builds the Debian package of the extension for one PostgreSQL major:
#
#   scripts/package-deb.sh            release build; prints the .deb's path
#   PROFILE=debug scripts/package-deb.sh
#
# The package is named as Debian names extension packages (postgresql-15-pg-tenancy),
# holds the library, the control file, today's install script and every upgrade
# script of sql/, plus the docs, and depends on the server package it was built
# against. `apt-get install ./postgresql-15-pg-tenancy_*.deb` installs it.
#
# PG=pg17 builds it for another major, against the pg_config pgrx.toml names
# (here a relocatable build), with the files at the places Debian's and
# PGDG's postgresql-17 use: /usr/lib/postgresql/17/lib and
# /usr/share/postgresql/17/extension.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
major=${PG:-$(config postgres default)}
pg_config=$(config pg_config "$major")
number=${major#pg}
profile=${PROFILE:-release}

version=$(awk -F'"' '/^version *=/ { print $2; exit }' "$here/Cargo.toml")
package="postgresql-$number-pg-tenancy"
arch=$(dpkg --print-architecture)
tree="$here/target/$profile/pg_tenancy-$major"
out="$here/target/package"
staging="$out/$package"

profile_args=()
[ "$profile" = debug ] && profile_args=(--debug)
[ "$profile" = release ] || [ "$profile" = debug ] || profile_args=(--profile "$profile")
echo "package: building $package $version ($profile)" >&2
rm -rf "$tree"
cargo pgrx package --pg-config "$pg_config" "${profile_args[@]}" --out-dir "$tree" \
    --no-default-features --features "$major" >&2

rm -rf "$staging"
mkdir -p "$staging/DEBIAN" "$out"
# Debian's places for this major, wherever the pg_config built against keeps them.
deb_libdir=/usr/lib/postgresql/$number/lib
deb_extdir=/usr/share/postgresql/$number/extension
mkdir -p "$staging$deb_libdir" "$staging$deb_extdir"
cp -a "$tree$("$pg_config" --pkglibdir)/." "$staging$deb_libdir/"
cp -a "$tree$("$pg_config" --sharedir)/extension/." "$staging$deb_extdir/"
docdir="$staging/usr/share/doc/$package"
mkdir -p "$docdir"
cp "$here/README.md" "$here"/docs/*.md "$docdir/"
cat >"$docdir/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pg_tenancy

Files: *
License: PostgreSQL
EOF

library="$staging$deb_libdir/pg_tenancy.so"
[ -f "$library" ] || { echo "package: no library at $library" >&2; exit 1; }
glibc=$(objdump -T "$library" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
installed_kb=$(du -sk "$staging" | cut -f1)
cat >"$staging/DEBIAN/control" <<EOF
Package: $package
Version: $version-1
Architecture: $arch
Maintainer: pg_tenancy developers <pg_tenancy@localhost>
Depends: postgresql-$number, libc6 (>= $glibc), libgcc-s1
Section: database
Priority: optional
Installed-Size: $installed_kb
Homepage: https://github.com/pg-tenancy/pg_tenancy
Description: multi-tenant operations layer for PostgreSQL $number
 pg_tenancy gives a multi-tenant SaaS database, in one CREATE EXTENSION, a
 tenant registry with row-level isolation, tenant-aware audit with hash
 chains, partition management, quotas, PII masking, health statistics and
 retention jobs with a background scheduler.
 .
 The package holds the extension for PostgreSQL $number and the scripts that
 update databases from every earlier release (ALTER EXTENSION pg_tenancy UPDATE).
EOF
deb="$out/${package}_$version-1_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$staging" "$deb" >&2
echo "$deb"
