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

# The Grafana dashboards parse as JSON, and every metric they query is one
# metrics_prometheus() exports once a tenant's statements have been counted.
if [ -z "$citus_db" ]; then
    psql_q() { PGOPTIONS="-c client_min_messages=warning" "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
    psql_q -d postgres -c "DROP DATABASE IF EXISTS docs_dashboards" -c "CREATE DATABASE docs_dashboards"
    metrics=$(psql_q -d docs_dashboards -At \
        -c "CREATE EXTENSION pg_tenancy" \
        -c "CREATE TABLE dash_items (tenant_id uuid NOT NULL, v int)" \
        -c "SELECT tenancy.register_table('dash_items')" \
        -c "SELECT set_config('tenancy.tenant_id', tenancy.create_tenant('dash', 'Dash')::text, false)" \
        -c "INSERT INTO dash_items SELECT current_setting('tenancy.tenant_id')::uuid, g FROM generate_series(1, 100) g" \
        -c "RESET tenancy.tenant_id" \
        -c "ANALYZE dash_items" \
        -c "RESET tenancy.tenant_id" \
        -c "SELECT tenancy.metrics_prometheus()")
    for dashboard in "$here"/docs/grafana/*.json; do
        name=$(basename "$dashboard")
        # psql interpolates variables in its input, not in -c.
        if ! echo "SELECT (:'json'::jsonb) ? 'panels';" | psql_q -d docs_dashboards -At -v json="$(cat "$dashboard")" | grep -qx t; then
            echo "docs: $name is not a dashboard"; status=1; continue
        fi
        missing=$(grep -o 'pg_tenancy_[a-z_]*' "$dashboard" | sort -u | while read -r metric; do
            grep -q "^$metric[{ ]" <<<"$metrics" || echo "$metric"
        done)
        if [ -z "$missing" ]; then
            echo "docs: $name ok ($(grep -o 'pg_tenancy_[a-z_]*' "$dashboard" | sort -u | wc -l) metrics, all exported)"
        else
            echo "docs: $name queries metrics metrics_prometheus() does not export:" $missing; status=1
        fi
    done
    psql_q -d postgres -c "DROP DATABASE docs_dashboards"
fi
exit $status
