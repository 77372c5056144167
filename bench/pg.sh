#!/usr/bin/env bash
# Runs weft-bench against a throwaway PostgreSQL server on loopback (see
# pg_lib.sh), removed afterwards. Arguments go to weft-bench.
# Usage: bench/pg.sh [--repeat N] [...]     (WEFT_BUILD: build dir, default build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD:-$root/build}
. "$root/bench/pg_lib.sh"
trap weft_pg_stop EXIT
weft_pg_start
"$build/bench/weft-bench" --db "$WEFT_PG_URL" "$@"
