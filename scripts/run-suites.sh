#!/usr/bin/env bash
# Runs test suites against the installed extension in a throwaway cluster it
# starts itself and stops on exit:
#
#   scripts/run-suites.sh [releases] [regress] [isolation] [multi] [docs] [citus] [upgrade] [package]
#
#   releases   released SQL files unchanged, versions and upgrade scripts in order
#   regress    pg_regress golden files in tests/regress (what a psql user sees)
#   isolation  isolationtester specs in tests/isolation (interleaved sessions)
#   multi      Rust multi-connection tests in tests/multi (concurrency, dump/restore)
#   docs       the ```sql examples of docs/*.md, which must run as written
#   citus      pg_tenancy on a Citus coordinator and two workers (own clusters; skipped without Citus)
#   upgrade    every release updated to this version equals a fresh install (own clusters)
#   package    the .deb installs into a clean PostgreSQL and runs the demo (own cluster)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }

major=$(config postgres default)
pg_config=$(config pg_config "$major")
bindir=$("$pg_config" --bindir)
pgxs_dir=$(dirname "$("$pg_config" --pgxs)")/../..
host=$(config test host)
user=$(config test user)
cluster=suites

[ $# -gt 0 ] || set -- releases regress isolation multi docs citus upgrade package

# The library is preloaded so the scheduler tests find its background worker
# (off until tenancy.scheduler_database is set).
port=$("$here/scripts/cluster.sh" start "$cluster" "shared_preload_libraries = 'pg_tenancy'")
trap '"$here/scripts/cluster.sh" stop "$cluster"' EXIT
echo "suites: cluster on $host:$port"
export PGHOST=$host PGPORT=$port PGUSER=$user

status=0
passed=0
failed=0
for suite in "$@"; do
    earlier=$status
    status=0
    case "$suite" in
    regress)
        out="$here/target/regress"
        rm -rf "$out"; mkdir -p "$out"
        # The pg_partman migration test needs pg_partman, which Debian
        # packages for the default major only: elsewhere it is left out, said.
        schedule="$out/schedule"
        if [ -f "$("$pg_config" --sharedir)/extension/pg_partman.control" ]; then
            cp "$here/tests/regress/schedule" "$schedule"
        else
            grep -v '^test: partman_migration$' "$here/tests/regress/schedule" >"$schedule"
            echo "regress: partman_migration skipped: pg_partman is not installed for $major"
        fi
        "$pgxs_dir/src/test/regress/pg_regress" \
            --bindir="$bindir" --host="$host" --port="$port" --user="$user" \
            --inputdir="$here/tests/regress" --outputdir="$out" \
            --dbname=tenancy_regress \
            --schedule="$schedule" \
            || { status=1; [ -f "$out/regression.diffs" ] && cat "$out/regression.diffs"; }
        ;;
    isolation)
        [ -d "$here/tests/isolation/specs" ] || { echo "isolation: no specs"; continue; }
        out="$here/target/isolation"
        rm -rf "$out"; mkdir -p "$out"
        "$pgxs_dir/src/test/isolation/pg_isolation_regress" \
            --bindir="$bindir" --host="$host" --port="$port" --user="$user" \
            --inputdir="$here/tests/isolation" --outputdir="$out" \
            --dbname=tenancy_isolation \
            --load-extension=pg_tenancy \
            --schedule="$here/tests/isolation/schedule" \
            || { status=1; [ -f "$out/regression.diffs" ] && cat "$out/regression.diffs"; }
        ;;
    multi)
        PGTENANCY_TEST_DSN="host=$host port=$port user=$user" \
        PGTENANCY_BINDIR="$bindir" \
            CARGO_TARGET_DIR="$here/target/client" \
            cargo test --manifest-path "$here/tests/multi/Cargo.toml" -- --test-threads=1 \
            || status=1
        ;;
    docs)
        "$here/scripts/check-docs.sh" || status=1
        ;;
    releases)
        "$here/scripts/check-releases.sh" || status=1
        ;;
    upgrade)
        "$here/scripts/test-upgrade.sh" || status=1
        ;;
    citus)
        "$here/scripts/test-citus.sh" || status=1
        ;;
    package)
        "$here/scripts/test-package.sh" || status=1
        ;;
    *)
        echo "unknown suite: $suite" >&2
        status=2
        ;;
    esac
    if [ "$status" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    status=$((status > earlier ? status : earlier))
done
# One closing line a CI reader can count (suites, each of many tests).
echo "suites: $passed passed, $failed failed"
exit $status
