#!/usr/bin/env bash
# Benchmarks against the installed (release) build, in a throwaway cluster:
#   scripts/bench.sh [scenario ...]
# Prints one table: our figure, the anchor's figure, the ratio and its target.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }
host=$(config test host)
user=$(config test user)

CARGO_TARGET_DIR="$here/target/client" cargo build --release --manifest-path "$here/bench/Cargo.toml"
# Preloaded, as in production: throttle's buckets live in shared memory.
port=$("$here/scripts/cluster.sh" start bench "max_wal_size = '4GB'" "work_mem = '16MB'" \
    "shared_preload_libraries = 'pg_tenancy'")
trap '"$here/scripts/cluster.sh" stop bench' EXIT
echo "bench: cluster on $host:$port ($(nproc) cores)"
# A Citus coordinator and two workers for the citus scenario, when Citus is installed.
pg_config=$(config pg_config "$(config postgres default)")
if [ -f "$("$pg_config" --pkglibdir)/citus.so" ]; then
    read -r citus_port _ _ < <("$here/scripts/citus-cluster.sh" start bench_citus bench_citus \
        "max_wal_size = '4GB'" "work_mem = '16MB'")
    trap '"$here/scripts/cluster.sh" stop bench; "$here/scripts/citus-cluster.sh" stop bench_citus' EXIT
    export PGTENANCY_CITUS_DSN="host=$host port=$citus_port user=$user"
    echo "bench: Citus coordinator on $host:$citus_port, two workers"
fi
PGTENANCY_BINDIR="$("$(config pg_config "$(config postgres default)")" --bindir)" \
    "$here/target/client/release/pg_tenancy_bench" "host=$host port=$port user=$user" "$@"
