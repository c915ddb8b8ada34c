#!/usr/bin/env bash
# A throwaway Citus cluster on loopback: a coordinator and two workers, each a
# scripts/cluster.sh cluster preloading 'citus,pg_tenancy' (Citus first, as it
# requires), with each database of DBS (comma-separated) created on every
# node, Citus created in it and the workers added from the coordinator.
#
#   scripts/citus-cluster.sh start NAME DBS [postgresql.conf line ...]
#       prints "COORDINATOR_PORT WORKER1_PORT WORKER2_PORT"
#   scripts/citus-cluster.sh stop NAME
#
# pg_tenancy itself is not created: a suite does that on the coordinator, and
# Citus carries the CREATE EXTENSION to the workers.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
host=$(config test host)
user=$(config test user)
nodes=(coordinator worker1 worker2)

cmd=${1:-}
name=${2:-}
[ -n "$cmd" ] && [ -n "$name" ] || { sed -n '2,11p' "$0" >&2; exit 2; }

case "$cmd" in
start)
    IFS=, read -r -a dbs <<<"${3:?database names}"
    shift 3
    ports=()
    for node in "${nodes[@]}"; do
        ports+=("$("$here/scripts/cluster.sh" start "${name}_$node" \
            "shared_preload_libraries = 'citus,pg_tenancy'" \
            "max_prepared_transactions = 100" \
            "citus.log_remote_commands = off" \
            "$@")")
    done
    for db in "${dbs[@]}"; do
        for port in "${ports[@]}"; do
            psql -X -q -v ON_ERROR_STOP=1 "host=$host port=$port user=$user dbname=postgres" \
                -c "CREATE DATABASE \"$db\"" >/dev/null
            psql -X -q -v ON_ERROR_STOP=1 "host=$host port=$port user=$user dbname=$db" \
                -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null
        done
        psql -X -q -v ON_ERROR_STOP=1 "host=$host port=${ports[0]} user=$user dbname=$db" \
            -c "SELECT citus_set_coordinator_host('$host', ${ports[0]})" \
            -c "SELECT citus_add_node('$host', ${ports[1]})" \
            -c "SELECT citus_add_node('$host', ${ports[2]})" >/dev/null
    done
    echo "${ports[*]}"
    ;;
stop)
    for node in "${nodes[@]}"; do
        "$here/scripts/cluster.sh" stop "${name}_$node"
    done
    ;;
*)
    sed -n '2,11p' "$0" >&2
    exit 2
    ;;
esac
