#!/usr/bin/env bash
# Runs the ```sql blocks of each docs/*.md page, in order, in a fresh database
# per page, stopping at the first error: the docs' examples must actually run.
# Expects PGHOST/PGPORT/PGUSER (scripts/run-suites.sh sets them).
#
#   scripts/check-docs.sh            every page but those for Citus
#   scripts/check-docs.sh --citus DB the pages marked <!-- docs-check: citus -->,
#                                    in database DB (a Citus coordinator's,
#                                    made by scripts/test-citus.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
bindir=$("$(config pg_config "$(config postgres default)")" --bindir)

citus_db=""
[ "${1:-}" = "--citus" ] && citus_db=${2:?database}

status=0
for page in "$here"/docs/*.md; do
    name=$(basename "$page" .md)
    if head -1 "$page" | grep -q '<!-- docs-check: citus -->'; then
        [ -n "$citus_db" ] || { echo "docs: $name.md runs in the Citus suite"; continue; }
    else
        [ -z "$citus_db" ] || continue
    fi
    db="docs_${name//[^a-z0-9]/_}"
    script=$(mktemp)
    {
        echo '\set ON_ERROR_STOP on'
        echo 'CREATE EXTENSION pg_tenancy;'
        awk '/^```sql[[:space:]]*$/ { inside = 1; next } /^```/ { inside = 0; next } inside { print }' "$page"
    } >"$script"
    # A Citus database has to exist on every node: the page runs in the one
    # the Citus suite made, and is not dropped.
    [ -n "$citus_db" ] && db=$citus_db
    [ -n "$citus_db" ] || PGOPTIONS="-c client_min_messages=warning" "$bindir/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    if "$bindir/psql" -X -q -d "$db" -f "$script" >"$here/target/docs-$name.out" 2>&1; then
        echo "docs: $name.md ok ($(grep -c '' "$script") lines of SQL)"
    else
        echo "docs: $name.md FAILED:"; tail -5 "$here/target/docs-$name.out"; status=1
    fi
    [ -n "$citus_db" ] || "$bindir/psql" -X -q -d postgres -c "DROP DATABASE $db"
    rm -f "$script"
done
exit $status
