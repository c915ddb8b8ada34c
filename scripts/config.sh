#!/usr/bin/env bash
# Prints one value of pgrx.toml: scripts/config.sh SECTION KEY
# Strings print bare; arrays print their items separated by spaces.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 SECTION KEY" >&2; exit 2; }
# PG=pgNN picks another major than pgrx.toml's default, for every script.
if [ "$1" = postgres ] && [ "$2" = default ] && [ -n "${PG:-}" ]; then
    printf '%s\n' "$PG"
    exit 0
fi
value=$(awk -v want="[$1]" -v key="$2" '
    /^[[:space:]]*#/ || /^[[:space:]]*$/ { next }
    /^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); in_section = ($0 == want); next }
    in_section {
        line = $0
        name = line; sub(/[[:space:]]*=.*/, "", name); gsub(/[[:space:]]/, "", name)
        if (name != key) next
        sub(/^[^=]*=[[:space:]]*/, "", line)
        sub(/[[:space:]]+#.*$/, "", line)
        gsub(/[][",]/, " ", line)
        gsub(/[[:space:]]+/, " ", line); sub(/^ /, "", line); sub(/ $/, "", line)
        print line; found = 1; exit
    }
    END { if (!found) exit 1 }
' "$here/pgrx.toml") || { echo "pgrx.toml: no key $2 in [$1]" >&2; exit 1; }
printf '%s\n' "$value"
