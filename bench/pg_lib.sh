# shellcheck shell=bash disable=SC2034  # WEFT_PG_URL: read by the sourcing script
# bench/pg_lib.sh: a throwaway PostgreSQL server on loopback for the
# benchmarks (sourced by pg.sh and compare.sh): initdb + pg_ctl in a temp
# dir, a free port, as nobody when run as root.
#
#   weft_pg_start        starts it; sets WEFT_PG_URL (database "bench")
#   weft_pg_stop         stops it and removes its dir; safe to call twice
#                        or when weft_pg_start failed half way

WEFT_PG_DIR=
WEFT_PG_URL=
weft_pg_as=()

weft_pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

weft_pg_start() {
  local bin port
  bin=$(weft_pg_bin)
  if [ -z "$bin" ]; then
    echo "weft_pg_start: no PostgreSQL server (/usr/lib/postgresql/*/bin); apt-get install postgresql" >&2
    return 1
  fi
  WEFT_PG_DIR=$(mktemp -d /tmp/weft-benchpg-XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
  weft_pg_as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown nobody "$WEFT_PG_DIR"
    weft_pg_as=(runuser -u nobody --)
  fi
  "${weft_pg_as[@]}" "$bin/initdb" -D "$WEFT_PG_DIR/data" -U weft -A trust -E UTF8 >/dev/null &&
  "${weft_pg_as[@]}" "$bin/pg_ctl" -D "$WEFT_PG_DIR/data" -l "$WEFT_PG_DIR/pg.log" -w \
    -o "-p $port -k $WEFT_PG_DIR -c listen_addresses=127.0.0.1" start >/dev/null &&
  "${weft_pg_as[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U weft -d postgres -qc "CREATE DATABASE bench" ||
    { echo "weft_pg_start: PostgreSQL did not start (log: $WEFT_PG_DIR/pg.log)" >&2; return 1; }
  WEFT_PG_URL="postgres://weft@127.0.0.1:$port/bench"
}

weft_pg_stop() {
  if [ -n "$WEFT_PG_DIR" ]; then
    "${weft_pg_as[@]}" "$(weft_pg_bin)/pg_ctl" -D "$WEFT_PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$WEFT_PG_DIR"
    WEFT_PG_DIR=
  fi
}
