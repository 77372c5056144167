#!/usr/bin/env bash
# Runs weft-bench against a throwaway PostgreSQL server on loopback (initdb
# + pg_ctl in a temp dir, a free port, as nobody when run as root), removed
# afterwards. Arguments go to weft-bench.
# Usage: bench/pg.sh [--repeat N] [...]     (WEFT_BUILD: build dir, default build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD:-$root/build}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /tmp/weft-benchpg-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
as=()
if [ "$(id -u)" -eq 0 ]; then
  chown nobody "$dir"
  as=(runuser -u nobody --)
fi
stop() { "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap stop EXIT
"${as[@]}" "$bin/initdb" -D "$dir/data" -U weft -A trust -E UTF8 >/dev/null
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
"${as[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U weft -d postgres -qc "CREATE DATABASE bench"
"$build/bench/weft-bench" --db "postgres://weft@127.0.0.1:$port/bench" "$@"
