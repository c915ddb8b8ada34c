#!/usr/bin/env bash
# The Citus suite (tests/citus): pg_tenancy on a coordinator and two workers,
# started here on loopback and stopped on exit. pg_regress runs the golden
# files against the coordinator; the files reach the workers themselves
# (\getenv WORKER1_PORT) to try what a role connecting to a worker directly
# could do, and the health file halts and restarts worker 2 (\! with
# HALT_WORKER2 and RESTART_WORKER2) to see an unreachable node reported;
# the quotas file runs 16 pgbench clients (PGBENCH, CONSUME_SCRIPT). Skipped, with a line saying so, when Citus is not installed
# (make setup builds it from CITUS_SOURCE; .ci/run always does). The Citus
# pages of docs/ run there too (scripts/check-docs.sh --citus).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }

major=$(config postgres default)
pg_config=$(config pg_config "$major")
bindir=$("$pg_config" --bindir)
pgxs_dir=$(dirname "$("$pg_config" --pgxs)")/../..
host=$(config test host)
user=$(config test user)

if [[ " $(config citus majors) " != *" $major "* ]]; then
    echo "citus: not tested on $major (pgrx.toml [citus] majors says why): suite skipped"
    exit 0
fi
if [ ! -f "$("$pg_config" --pkglibdir)/citus.so" ]; then
    echo "citus: Citus is not installed for $major: suite skipped (CITUS_SOURCE=... make setup builds it)"
    exit 0
fi

read -r coordinator worker1 worker2 < <("$here/scripts/citus-cluster.sh" start citus tenancy_citus,docs_citus)
trap '"$here/scripts/citus-cluster.sh" stop citus' EXIT
echo "citus: coordinator $host:$coordinator, workers $host:$worker1 and $host:$worker2"

out="$here/target/citus"
rm -rf "$out"; mkdir -p "$out"
status=0
WORKER1_PORT=$worker1 WORKER2_PORT=$worker2 \
HALT_WORKER2="$here/scripts/cluster.sh halt citus_worker2" \
PGBENCH="$bindir/pgbench -h $host -p $coordinator -U $user tenancy_citus" \
CONSUME_SCRIPT="$here/tests/citus/consume.pgbench" \
TICKET_SCRIPT="$here/tests/citus/ticket.pgbench" \
RESTART_WORKER2="$here/scripts/cluster.sh restart citus_worker2" \
"$pgxs_dir/src/test/regress/pg_regress" \
    --bindir="$bindir" --host="$host" --port="$coordinator" --user="$user" \
    --inputdir="$here/tests/citus" --outputdir="$out" \
    --use-existing --dbname=tenancy_citus \
    --schedule="$here/tests/citus/schedule" \
    || { status=1; [ -f "$out/regression.diffs" ] && cat "$out/regression.diffs"; }
# The Citus pages of docs/ run as written, on the coordinator.
PGHOST=$host PGPORT=$coordinator PGUSER=$user "$here/scripts/check-docs.sh" --citus docs_citus || status=1
exit $status
