#!/usr/bin/env bash
# Runs the ```sql blocks of each docs/*.md page, in order, in a fresh database
# per page, stopping at the first error: the docs' examples must actually run.
# Expects PGHOST/PGPORT/PGUSER (scripts/run-suites.sh sets them).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
bindir=$("$(config pg_config "$(config postgres default)")" --bindir)

status=0
for page in "$here"/docs/*.md; do
    name=$(basename "$page" .md)
    db="docs_${name//[^a-z0-9]/_}"
    script=$(mktemp)
    {
        echo '\set ON_ERROR_STOP on'
        echo 'CREATE EXTENSION pg_tenancy;'
        awk '/^```sql[[:space:]]*$/ { inside = 1; next } /^```/ { inside = 0; next } inside { print }' "$page"
    } >"$script"
    PGOPTIONS="-c client_min_messages=warning" "$bindir/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    if "$bindir/psql" -X -q -d "$db" -f "$script" >"$here/target/docs-$name.out" 2>&1; then
        echo "docs: $name.md ok ($(grep -c '' "$script") lines of SQL)"
    else
        echo "docs: $name.md FAILED:"; tail -5 "$here/target/docs-$name.out"; status=1
    fi
    "$bindir/psql" -X -q -d postgres -c "DROP DATABASE $db"
    rm -f "$script"
done
exit $status
