#!/usr/bin/env bash
# Throwaway PostgreSQL clusters for tests, the demo and benchmarks.
#
#   scripts/cluster.sh start NAME [postgresql.conf line ...]   initdb + start, prints the port
#   scripts/cluster.sh stop NAME                               stop and delete it
#   scripts/cluster.sh restart NAME                            stop and start again, data kept
#   scripts/cluster.sh halt NAME                               stop, data kept (restart starts it)
#   scripts/cluster.sh port NAME                               the port of a running cluster
#
# Clusters live in <cluster_root>/NAME (pgrx.toml), run as the configured user,
# listen on loopback only with trust authentication, and are meant to be thrown away.
# PG_BINDIR, when set, names the PostgreSQL binaries to run instead of those of
# pgrx.toml's pg_config: the upgrade and package tests run a cluster first on a
# private PostgreSQL tree holding an older release, then restart it on this one.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
config() { "$here/scripts/config.sh" "$@"; }

major=$(config postgres default)
pg_config=$(config pg_config "$major")
bindir=${PG_BINDIR:-$("$pg_config" --bindir)}
root=$(config test cluster_root)
user=$(config test user)
host=$(config test host)
range=$(config test port_range)

as_user() {
    if [ "$(id -un)" = "$user" ]; then "$@"; else runuser -u "$user" -- "$@"; fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
}

free_port() {
    local port
    for port in $(seq "${range%-*}" "${range#*-}"); do
        if ! port_in_use "$port" && [ ! -e "/tmp/.s.PGSQL.$port.lock" ]; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port in $range" >&2
    return 1
}

start_server() {
    # A server inheriting RUST_BACKTRACE would put Rust backtraces in error
    # details (pgrx does), which no test output can pin.
    as_user env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
        "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
}

cmd=${1:-}
name=${2:-}
[ -n "$cmd" ] && [ -n "$name" ] || { sed -n '2,10p' "$0" >&2; exit 2; }
dir="$root/$name"

case "$cmd" in
start)
    shift 2
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_user "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    chown "$user" "$root" "$dir"
    as_user "$bindir/initdb" -D "$dir/data" -U "$user" --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(free_port)
    {
        echo "listen_addresses = '$host'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        echo "max_connections = 200"
        echo "shared_buffers = '256MB'"
        echo "fsync = off                   # throwaway cluster"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        echo "log_min_messages = warning"
        echo "log_line_prefix = '%m [%p] %d '"
        for line in "$@"; do echo "$line"; done
    } >>"$dir/data/postgresql.conf"
    start_server
    echo "$port" >"$dir/port"
    echo "$port"
    ;;
restart)
    [ -f "$dir/data/postmaster.pid" ] && as_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    start_server
    cat "$dir/port"
    ;;
halt)
    [ ! -f "$dir/data/postmaster.pid" ] || as_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    rm -rf "$dir"
    ;;
port)
    cat "$dir/port"
    ;;
*)
    sed -n '2,10p' "$0" >&2
    exit 2
    ;;
esac
