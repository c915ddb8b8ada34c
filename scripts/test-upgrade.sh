#!/usr/bin/env bash
# The upgrade suite: ALTER EXTENSION pg_tenancy UPDATE from every release to the
# version being built (the one `make install-debug` installed), in a throwaway
# cluster per release. For each release R of sql/releases/RELEASES:
#
#  1. On a private PostgreSQL tree holding R's own library and install script
#     (scripts/pg-tree.sh, scripts/build-release.sh), with pg_tenancy preloaded:
#     create R in three databases; fill two of them through R's API
#     (tests/upgrade/fill-V.sql); record what the data and the functions say.
#  2. Restart the same cluster on the installed PostgreSQL, i.e. today's library,
#     still on R's SQL. Every C function R's SQL declares must exist in the new
#     library with the signature R gave it; tests/upgrade/smoke.sql must run.
#  3. Update each database step by step through every later release to today's
#     version, then compare with a fresh install of today's version:
#       (a) every object, property by property (tests/upgrade/describe.sql) and the
#           rows the install puts in its own tables (tests/upgrade/seed.sql);
#       (b) every row of every table and view, and what the functions say about
#           them (tests/upgrade/snapshot.sql, tests/upgrade/probe.sql);
#       (c) for the oldest release, the pg_regress suites, run on the updated
#           database instead of a fresh one;
#       (d) a pg_dump of R's filled database restores where today's version is
#           installed, with the same rows and the same answers as in (b).
#
# When today's version is itself released, step 3 compares a fresh install with
# its frozen install script: SQL changed without a version bump fails there.
#
# Any difference is printed as a diff, and the suite fails. Outputs stay in
# target/upgrade.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
major=${PG:-$(config postgres default)}
sys_bindir=$("$(config pg_config "$major")" --bindir)
root=$(config test cluster_root)
pgxs_dir=$(dirname "$("$(config pg_config "$major")" --pgxs)")/../..
export PGHOST=${PGHOST:-$(config test host)} PGUSER=${PGUSER:-$(config test user)}
out="$here/target/upgrade"
rm -rf "$out"
mkdir -p "$out"
chmod a+rwx "$out"

current=$(awk -F'"' '/^version *=/ { print $2; exit }' "$here/Cargo.toml")
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]; }
# The releases this major can build (pgrx.toml [releases]): older ones call
# functions an older PostgreSQL had.
oldest=$(config releases "$major")
mapfile -t listed < <(awk '!/^#/ && NF { print $1 }' "$here/sql/releases/RELEASES")
releases=() skipped=()
for release in "${listed[@]}"; do
    if version_le "$oldest" "$release"; then releases+=("$release"); else skipped+=("$release"); fi
done
if [ ${#releases[@]} -eq 0 ]; then
    echo "upgrade: no release builds for $major (${skipped[*]} predate $oldest, the first that will): nothing to update from yet, suite skipped"
    exit 0
fi
[ ${#skipped[@]} -eq 0 ] || echo "upgrade: on $major from ${releases[*]} (${skipped[*]} predate $oldest)"

# The fill script of release R: the newest fill-V.sql with V <= R.
fill_script_for() {
    local best="" f v
    for f in "$here"/tests/upgrade/fill-*.sql; do
        v=$(basename "$f" .sql); v=${v#fill-}
        if version_le "$v" "$1" && { [ -z "$best" ] || version_le "$best" "$v"; }; then best=$v; fi
    done
    [ -n "$best" ] || { echo "upgrade: no tests/upgrade/fill-V.sql for release $1" >&2; return 1; }
    echo "$here/tests/upgrade/fill-$best.sql"
}

# The versions an update from R passes through: later releases, then today's.
steps_after() {
    local v
    for v in "${releases[@]}" "$current"; do
        if [ "$v" != "$1" ] && version_le "$1" "$v"; then echo "$v"; fi
    done | awk '!seen[$0]++'
}

# The columns an update from R changes on purpose (tests/upgrade/changes-V.txt
# of every version it passes through), as a text[] literal for snapshot.sql.
changed_columns() {
    local v columns=()
    for v in $(steps_after "$1"); do
        [ -f "$here/tests/upgrade/changes-$v.txt" ] || continue
        mapfile -t -O "${#columns[@]}" columns < <(awk '!/^#/ && NF && $2 != "+rows" { print $1 }' "$here/tests/upgrade/changes-$v.txt")
    done
    local IFS=,
    echo "{${columns[*]}}"
}

# The tables an update from R adds rows to, one per line.
growing_tables() {
    local v
    for v in $(steps_after "$1"); do
        [ -f "$here/tests/upgrade/changes-$v.txt" ] || continue
        awk '!/^#/ && NF && $2 == "+rows" { print $1 }' "$here/tests/upgrade/changes-$v.txt"
    done
}

# Rows compared: every row of BEFORE is in AFTER unchanged, and AFTER has no
# row BEFORE lacks, except in tables GROWING names. Prints what is wrong.
check_rows() { # NAME BEFORE AFTER GROWING
    local lost="$out/$1.lost" added="$out/$1.added"
    sort "$2" >"$2.sorted"; sort "$3" >"$3.sorted"
    comm -23 "$2.sorted" "$3.sorted" >"$lost"
    comm -13 "$2.sorted" "$3.sorted" | awk -F'|' 'NR == FNR { grow[$0] = 1; next } !($1 in grow)' "$4" - >"$added"
    if [ ! -s "$lost" ] && [ ! -s "$added" ]; then
        echo "upgrade: $1 ok ($(grep -c '' "$2") rows kept)"
    else
        echo "upgrade: $1 DIFFERS:"
        sed 's/^/  lost or changed: /' "$lost" | head -20
        sed 's/^/  unexpected:      /' "$added" | head -20
        failures=$((failures + 1))
    fi
}

failures=0
check() { # NAME EXPECTED-FILE ACTUAL-FILE: prints the differences, counts a failure
    if diff -U0 "$2" "$3" >"$out/$1.diff"; then
        echo "upgrade: $1 ok"
    else
        echo "upgrade: $1 DIFFERS (- expected, + actual):"
        head -100 "$out/$1.diff"
        failures=$((failures + 1))
    fi
}

for release in "${releases[@]}"; do
    r=${release//./_}
    cluster="upgrade-$r"
    echo "upgrade: from $release"

    # 1. Release R with its own library.
    libdir=$("$here/scripts/build-release.sh" "$release")
    tree="$root/trees/$release"
    tree_bindir=$("$here/scripts/pg-tree.sh" "$tree")
    install -m 644 "$libdir/pg_tenancy.so" "$("$tree_bindir/pg_config" --pkglibdir)/pg_tenancy.so"
    install -m 644 "$libdir/pg_tenancy.control" "$here/sql/releases/pg_tenancy--$release.sql" \
        "$("$tree_bindir/pg_config" --sharedir)/extension/"
    port=$(PG_BINDIR=$tree_bindir "$here/scripts/cluster.sh" start "$cluster" "shared_preload_libraries = 'pg_tenancy'")
    trap '"$here/scripts/cluster.sh" stop "$cluster"' EXIT
    psql() { "$sys_bindir/psql" -X -q -v ON_ERROR_STOP=1 -p "$port" "$@"; }
    fill=$(fill_script_for "$release")
    empty_db="from_${r}_empty"
    [ "$release" = "${releases[0]}" ] && empty_db=tenancy_regress   # the regress suites run here
    for db in "$empty_db" "from_${r}_filled"; do
        psql -d postgres -c "CREATE DATABASE $db"
        psql -d "$db" -c "CREATE EXTENSION pg_tenancy VERSION '$release'"
    done
    psql -d "from_${r}_filled" -f "$fill" >"$out/fill-$r.out"
    psql -d postgres -c "CREATE DATABASE from_${r}_oldsql TEMPLATE from_${r}_filled"
    psql -d "from_${r}_filled" -v excluded="$(changed_columns "$release")" \
        -f "$here/tests/upgrade/snapshot.sql" >"$out/snapshot-$r.sql"
    psql -d "from_${r}_filled" -At -f "$out/snapshot-$r.sql" >"$out/data-before-$r.txt"
    psql -d "from_${r}_filled" -f "$here/tests/upgrade/probe.sql" >"$out/probe-before-$r.txt"
    "$sys_bindir/pg_dump" -p "$port" -Fc -f "$out/dump-$r.pgdump" "from_${r}_filled"

    # 2. Today's library under R's SQL.
    "$here/scripts/cluster.sh" restart "$cluster" >/dev/null
    psql -d postgres -c "CREATE DATABASE fresh_$r"
    psql -d "fresh_$r" -c "CREATE EXTENSION pg_tenancy"
    # Each symbol R's SQL names exists, and where today's SQL names it too, with R's signature.
    c_functions="SELECT p.prosrc || '(' || coalesce(array_to_string(p.proargtypes::regtype[], ', '), '') || ') '
                        || CASE WHEN p.proretset THEN 'SETOF ' ELSE '' END || p.prorettype::regtype
                   FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
                  WHERE p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c') ORDER BY 1"
    psql -d "from_${r}_oldsql" -At -c "$c_functions" >"$out/symbols-$r.txt"
    psql -d "fresh_$r" -At -c "$c_functions" >"$out/symbols-current.txt"
    if psql -d "from_${r}_oldsql" -At >"$out/symbol-lookup-$r.txt" 2>&1 -c "
        SELECT count(fmgr_c_validator(p.oid)) FROM pg_proc p
         WHERE p.probin = '\$libdir/pg_tenancy'"; then
        echo "upgrade: every C function of $release is in today's library"
    else
        echo "upgrade: a C function of $release is missing from today's library:"; cat "$out/symbol-lookup-$r.txt"
        failures=$((failures + 1))
    fi
    awk 'NR == FNR { sig[$0] = 1; sub(/\(.*/, ""); have[$0] = 1; next }
         { line = $0; sym = $0; sub(/\(.*/, "", sym)
           if (sym in have && !(line in sig)) print "changed signature: " line }' \
        "$out/symbols-current.txt" "$out/symbols-$r.txt" >"$out/symbols-changed-$r.txt"
    if [ -s "$out/symbols-changed-$r.txt" ]; then
        echo "upgrade: today's library reuses a symbol of $release with another signature; $release's SQL would call it"
        echo "         with the wrong arguments. Give the new function a new symbol (docs/upgrading.md):"
        sed 's/^/           /' "$out/symbols-changed-$r.txt"
        failures=$((failures + 1))
    fi
    if psql -d "from_${r}_oldsql" -f "$here/tests/upgrade/smoke.sql" >"$out/smoke-$r.out" 2>&1; then
        echo "upgrade: $release's SQL works with today's library"
    else
        echo "upgrade: $release's SQL with today's library FAILED:"; tail -5 "$out/smoke-$r.out"
        failures=$((failures + 1))
    fi

    # 3. Update step by step, then compare with the fresh install.
    for db in "$empty_db" "from_${r}_filled" "from_${r}_oldsql"; do
        for step in $(steps_after "$release"); do
            psql -d "$db" -c "ALTER EXTENSION pg_tenancy UPDATE TO '$step'"
        done
    done
    psql -d "fresh_$r" -f "$here/tests/upgrade/describe.sql" >"$out/describe-fresh.txt"
    psql -d "fresh_$r" -f "$here/tests/upgrade/seed.sql" >"$out/seed-fresh.txt"
    for db in "$empty_db" "from_${r}_filled" "from_${r}_oldsql"; do
        psql -d "$db" -f "$here/tests/upgrade/describe.sql" >"$out/describe-$db.txt"
        check "schema-of-$db" "$out/describe-fresh.txt" "$out/describe-$db.txt"
    done
    psql -d "$empty_db" -f "$here/tests/upgrade/seed.sql" >"$out/seed-$empty_db.txt"
    check "seed-rows-of-$empty_db" "$out/seed-fresh.txt" "$out/seed-$empty_db.txt"
    psql -d "from_${r}_filled" -At -f "$out/snapshot-$r.sql" >"$out/data-after-$r.txt"
    growing_tables "$release" >"$out/growing-$r.txt"
    check_rows "data-of-from_${r}_filled" "$out/data-before-$r.txt" "$out/data-after-$r.txt" "$out/growing-$r.txt"
    psql -d "from_${r}_filled" -f "$here/tests/upgrade/probe.sql" >"$out/probe-after-$r.txt"
    check "functions-on-from_${r}_filled" "$out/probe-before-$r.txt" "$out/probe-after-$r.txt"
    # What each version's update changes on purpose, checked on the filled database.
    for step in $(steps_after "$release"); do
        [ -f "$here/tests/upgrade/after-$step.sql" ] || continue
        if psql -d "from_${r}_filled" -f "$here/tests/upgrade/after-$step.sql" >"$out/after-$step-$r.out" 2>&1; then
            echo "upgrade: what $step changes is there on from_${r}_filled"
        else
            echo "upgrade: after-$step.sql FAILED on from_${r}_filled:"; tail -5 "$out/after-$step-$r.out"
            failures=$((failures + 1))
        fi
    done

    # A dump of R restored where today's version is installed: pg_restore's CREATE
    # EXTENSION makes today's version, then the dumped configuration goes in.
    psql -d postgres -c "CREATE DATABASE restored_$r"
    if "$sys_bindir/pg_restore" -p "$port" -d "restored_$r" --exit-on-error "$out/dump-$r.pgdump" >"$out/restore-$r.out" 2>&1; then
        # pg_dump carries configuration, not history or state: job_runs and
        # health_streaks start empty, and the built-in storage_bytes resource
        # is made anew by CREATE EXTENSION (docs/upgrading.md).
        not_carried='^tenancy\.(job_runs|health_streaks|quota_resources)\|'
        grep -Ev "$not_carried" "$out/data-before-$r.txt" >"$out/data-before-carried-$r.txt"
        psql -d "restored_$r" -At -f "$out/snapshot-$r.sql" | grep -Ev "$not_carried" >"$out/data-restored-$r.txt"
        check_rows "data-of-restored_$r" "$out/data-before-carried-$r.txt" "$out/data-restored-$r.txt" "$out/growing-$r.txt"
        psql -d "restored_$r" -At -c "SELECT name, period, unit FROM tenancy.quota_resources ORDER BY name" >"$out/resources-restored-$r.txt"
        psql -d "from_${r}_filled" -At -c "SELECT name, period, unit FROM tenancy.quota_resources ORDER BY name" >"$out/resources-before-$r.txt"
        check "resources-of-restored_$r" "$out/resources-before-$r.txt" "$out/resources-restored-$r.txt"
        psql -d "restored_$r" -f "$here/tests/upgrade/probe.sql" >"$out/probe-restored-$r.txt"
        check "functions-on-restored_$r" "$out/probe-before-$r.txt" "$out/probe-restored-$r.txt"
    else
        echo "upgrade: a dump of $release does not restore where $current is installed:"; tail -5 "$out/restore-$r.out"
        failures=$((failures + 1))
    fi

    if [ "$release" = "${releases[0]}" ]; then
        if "$pgxs_dir/src/test/regress/pg_regress" \
            --bindir="$sys_bindir" --host="$PGHOST" --port="$port" --user="$PGUSER" \
            --inputdir="$here/tests/regress" --outputdir="$out/regress" \
            --use-existing --dbname=tenancy_regress \
            --schedule="$here/tests/regress/schedule" >"$out/regress.out" 2>&1; then
            echo "upgrade: regress suites pass on $release updated to $current ($(grep -c '^ok\|^test.* ok' "$out/regress.out" || true) tests)"
        else
            echo "upgrade: regress suites FAILED on $release updated to $current:"
            tail -15 "$out/regress.out"; [ -f "$out/regress/regression.diffs" ] && head -60 "$out/regress/regression.diffs"
            failures=$((failures + 1))
        fi
    fi

    "$here/scripts/cluster.sh" stop "$cluster"
    trap - EXIT
    rm -rf "$tree"
done

if [ "$failures" -gt 0 ]; then
    echo "upgrade: $failures check(s) failed; outputs in $out"
    exit 1
fi
echo "upgrade: every release (${releases[*]}) updates to $current and matches a fresh install"
