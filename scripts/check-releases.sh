#!/usr/bin/env bash
# The release rules that need no server (make lint and make test run it):
#
#  - a released file never changes: sql/releases/SHA256SUMS pins every released
#    install script (sql/releases/pg_tenancy--V.sql) and every upgrade script whose
#    target is released (sql/pg_tenancy--A--B.sql), and each of them must verify;
#  - sql/releases/RELEASES lists the releases oldest first, each with its frozen
#    install script, and consecutive releases are joined by an upgrade script;
#  - the version being built (Cargo.toml) is the newest release or newer, and when
#    newer there is an upgrade script from the newest release to it.
#
# Whether the SQL itself changed without a version bump needs a server: the
# upgrade suite (scripts/test-upgrade.sh) compares a fresh install object by
# object with every release updated to this version.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here/sql"

ext=pg_tenancy
failures=0
fail() { echo "check-releases: $*" >&2; failures=$((failures + 1)); }

# Versions compare as dotted numbers (sort -V), which is how we number releases.
version_lt() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]; }

current=$(awk -F'"' '/^version *=/ { print $2; exit }' "$here/Cargo.toml")
locked=$(awk '/^name = "pg_tenancy"$/ { getline; split($0, v, "\""); print v[2]; exit }' "$here/Cargo.lock")
[ "$current" = "$locked" ] || fail "Cargo.toml says $current but Cargo.lock says $locked (run cargo build)"

mapfile -t releases < <(awk '!/^#/ && NF { print $1 }' releases/RELEASES)
[ ${#releases[@]} -gt 0 ] || fail "releases/RELEASES lists no release"

# 1. Frozen files verify.
if ! sha256sum --quiet -c releases/SHA256SUMS; then
    fail "a released file was edited (above). Released SQL never changes: put the change in a new version's upgrade script."
fi
pinned() { awk '{ print $2 }' releases/SHA256SUMS | grep -qxF "$1"; }

# 2. Every release has its install script, pinned; releases are in order and joined.
previous=""
for version in "${releases[@]}"; do
    script="releases/$ext--$version.sql"
    [ -f "$script" ] || fail "release $version has no frozen install script $script"
    pinned "$script" || fail "$script is not pinned in releases/SHA256SUMS"
    if [ -n "$previous" ]; then
        version_lt "$previous" "$version" || fail "releases/RELEASES: $version is listed after $previous"
        step="$ext--$previous--$version.sql"
        [ -f "$step" ] || fail "no upgrade script sql/$step between releases $previous and $version"
        pinned "$step" || fail "sql/$step belongs to release $version but is not pinned in releases/SHA256SUMS"
    fi
    previous=$version
done
for script in releases/*.sql; do
    pinned "$script" || fail "$script is in releases/ but not pinned in releases/SHA256SUMS"
done

# 3. The version being built.
newest=${releases[${#releases[@]}-1]}
if version_lt "$current" "$newest"; then
    fail "Cargo.toml version $current is older than the newest release $newest"
elif [ "$current" != "$newest" ]; then
    [ -f "$ext--$newest--$current.sql" ] \
        || fail "version $current is not released yet and has no upgrade script sql/$ext--$newest--$current.sql from $newest"
fi

# 4. No stray upgrade scripts: each joins two known versions, forward.
known=" ${releases[*]} $current "
for step in "$ext"--*--*.sql; do
    [ -e "$step" ] || continue
    pair=${step#"$ext--"}; pair=${pair%.sql}
    from=${pair%%--*}; to=${pair#*--}
    case "$known" in *" $from "*) ;; *) fail "sql/$step starts from $from, which is neither released nor current" ;; esac
    case "$known" in *" $to "*) ;; *) fail "sql/$step leads to $to, which is neither released nor current" ;; esac
    version_lt "$from" "$to" || fail "sql/$step goes backwards"
done

if [ "$failures" -gt 0 ]; then
    echo "check-releases: $failures problem(s); see docs/upgrading.md" >&2
    exit 1
fi
if [ "$current" = "$newest" ]; then
    echo "check-releases: ok (building released version $current; releases: ${releases[*]})"
else
    echo "check-releases: ok (building $current, not yet released; releases: ${releases[*]})"
fi
