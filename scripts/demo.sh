#!/usr/bin/env bash
# Runs sql/demo.sql against the installed extension in a throwaway cluster and
# leaves that cluster running so you can look around; it tells how to stop it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
major=$(config postgres default)
bindir=$("$(config pg_config "$major")" --bindir)
host=$(config test host)
user=$(config test user)

# Preloaded, as in production (throttle's buckets are in shared memory).
port=$("$here/scripts/cluster.sh" start demo "shared_preload_libraries = 'pg_tenancy'")
"$bindir/psql" -X -h "$host" -p "$port" -U "$user" -d postgres -q -c "CREATE DATABASE demo"
"$bindir/psql" -X -h "$host" -p "$port" -U "$user" -d demo -e -f "$here/sql/demo.sql"
cat <<MSG

Demo done. The demo cluster is still running on $host:$port:
  connect:  psql -h $host -p $port -U $user demo
  stop:     scripts/cluster.sh stop demo      (or make clean)
MSG
