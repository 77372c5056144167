#!/usr/bin/env bash
# The main job: installs what is missing, builds weft, starts a local
# cluster (a coordinator with SQLite and the dashboard, two workers), runs
# the example workflow on it and shows its events. The cluster keeps running
# until Ctrl-C (or stops right away with --once).
#
# Usage: scripts/cluster.sh [--once] [--example goal]
#   --example goal  run examples/goal/ (goal decomposition) instead of hello
#   WEFT_HOME  where the database and logs go (default: .weft in the checkout)
#   WEFT_HTTP  dashboard address (default 127.0.0.1:7480)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
once=false
example=hello
while [ $# -gt 0 ]; do
  case "$1" in
    --once) once=true ;;
    --example) example=${2:-}; shift ;;
    *) echo "usage: scripts/cluster.sh [--once] [--example goal]" >&2; exit 2 ;;
  esac
  shift
done
case "$example" in
  hello|goal) ;;
  *) echo "scripts/cluster.sh: --example: no example \"$example\" (hello, goal)" >&2; exit 2 ;;
esac

"$root/scripts/deps.sh" build
echo "weft: building into $root/build ..."
"$root/scripts/build.sh" "$root/build"

bin=$root/build
home=${WEFT_HOME:-$root/.weft}
http=${WEFT_HTTP:-127.0.0.1:7480}
mkdir -p "$home"
weft() { "$bin/cli/weft" "$@"; }

pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT TERM

if weft info >/dev/null 2>&1; then
  echo "weft: something already answers on the control port 7420; stop it first" >&2
  exit 1
fi
"$bin/coordinator/weft-coordinator" --db "sqlite:$home/weft.db" --http "$http" \
  >"$home/coordinator.log" 2>&1 &
pids+=($!)
for i in 1 2; do
  "$bin/worker/weft-worker" --name "worker-$i" --slots 4 \
    --exec-allow "$root/examples/bin" --exec-allow "$root/examples/goal" \
    >"$home/worker-$i.log" 2>&1 &
  pids+=($!)
done

# Wait (bounded) for both workers to join.
for _ in $(seq 1 100); do
  n=$(weft workers --json 2>/dev/null | grep -o '"state":"alive"' | wc -l || true)
  [ "$n" -ge 2 ] && break
  sleep 0.1
done
weft workers

echo
for f in "$root"/examples/*.json "$root"/examples/goal/goal.json; do weft define "$f"; done
echo
if [ "$example" = goal ]; then
  echo 'weft: running the example workflow "goal" (goal decomposition) ...'
  out=$(weft run goal --input '{"goal": "Build user authentication system"}' --wait --json) || true
else
  echo 'weft: running the example workflow "hello" ...'
  out=$(weft run hello --params '{"who":"weft"}' --wait --json) || true
fi
id=$(printf '%s' "$out" | sed -n 's/.*"id":"\([0-9A-Z]*\)".*/\1/p' | head -1)
weft status "$id"
echo
echo "weft: its events (weft events --run $id --format table):"
weft events --run "$id" --format table
echo
cat <<TXT
The cluster is up:
  dashboard      http://$http/
  CLI            $bin/cli/weft runs | status RUN | events --run RUN | watch | workers
                 (on PATH: export PATH=$bin/cli:$bin/coordinator:$bin/worker:\$PATH)
  logs, db       $home
  cluster cookie ${WEFT_COOKIE_FILE:-${WEFT_HOME:-$HOME/.weft}/cookie} (made on first start; nodes
                 on other machines need a copy: see README, Security)
TXT
if $once; then
  exit 0
fi
echo "Press Ctrl-C to stop the cluster."
wait "${pids[0]}"
