#!/usr/bin/env bash
# Times one map run on a local cluster (a coordinator and two workers on
# loopback, SQLite in a temp dir): gen -> map over N items -> after.
# Usage: scripts/map-scale.sh BUILD_DIR N [noop|echo|exec] [SLOTS]
#   noop: a `noop` map over input.xs (N integers in the run input)
#   echo: an exec `gen` prints {"l":[0..N-1]}, the map echoes each item
#         (the issue's livelock case), then `after`
#   exec: as echo, items are `noop`
# Prints the run's wall time, its status, the count of result_ignored and
# step_lost events, and peak RSS of the coordinator and workers (kB).
set -euo pipefail
b=$(cd "$1" && pwd); n=$2; kind=${3:-echo}; slots=${4:-16}
dir=$(mktemp -d /tmp/map-scale.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done;
  wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $dir" || rm -rf "$dir"; }
trap cleanup EXIT
mkdir "$dir/bin"
cat >"$dir/bin/gen.sh" <<GEN
#!/bin/sh
cat >/dev/null
awk 'BEGIN{printf "{\"l\":["; for(i=0;i<$n;i++){if(i)printf ",";printf "%d",i}; print "]}"}'
GEN
chmod 755 "$dir/bin/gen.sh"
"$b/coordinator/weft-coordinator" --db "sqlite:$dir/db" \
  --control tcp://127.0.0.1:0 --cluster tcp://127.0.0.1:0 \
  --results tcp://127.0.0.1:0 --events tcp://127.0.0.1:0 --http "" \
  --ports-file "$dir/ports.json" --cookie-file "$dir/cookie" \
  --log-level warn >"$dir/coord.log" 2>&1 &
pids+=($!); cpid=$!
for _ in $(seq 100); do [ -s "$dir/ports.json" ] && break; sleep 0.1; done
ctl=$(python3 -c "import json;print(json.load(open('$dir/ports.json'))['control'])")
clu=$(python3 -c "import json;print(json.load(open('$dir/ports.json'))['cluster'])")
wp=()
for i in 1 2; do
  "$b/worker/weft-worker" --join "$clu" --name "w$i" --slots "$slots" \
    --exec-allow "$dir/bin" --cookie-file "$dir/cookie" \
    >"$dir/w$i.log" 2>&1 &
  pids+=($!); wp+=($!)
done
export WEFT_COOKIE_FILE=$dir/cookie
weft() { "$b/cli/weft" --coordinator "$ctl" "$@"; }
for _ in $(seq 100); do
  [ "$(weft workers --json | grep -o '"alive"' | wc -l)" -ge 2 ] && break
  sleep 0.2
done
case $kind in
noop)
  def='{"name":"mapnoop","steps":[{"id":"m","type":"noop","map":"input.xs"},{"id":"after","type":"noop","depends_on":["m"]}]}'
  input=$(python3 -c "import json;print(json.dumps({'xs':list(range($n))}))")
  ;;
echo|exec)
  t=echo; [ "$kind" = exec ] && t=noop
  def='{"name":"map'$kind'","steps":[{"id":"gen","type":"exec","with":{"cmd":["gen.sh"]}},{"id":"m","type":"'$t'","depends_on":["gen"],"map":"steps.gen.output.l","with":{"x":"${item}"}},{"id":"after","type":"noop","depends_on":["m"]}]}'
  input='{}'
  ;;
esac
echo "$def" >"$dir/def.json"
echo "$input" >"$dir/input.json"
t0=$(date +%s.%N)
id=$(weft run "$dir/def.json" --input "@$dir/input.json")
st=running
while :; do
  # The run's end event, not `weft status`: a status of 100k steps may be
  # too large a reply for the coordinator this measures.
  st=$(weft events --run "$id" --type run_succeeded,run_failed,run_cancelled,run_timed_out --limit 1 |
    python3 -c "import json,sys;l=sys.stdin.readline();print(json.loads(l)['type'][4:] if l else 'running')")
  case $st in succeeded|failed|cancelled|timed_out) break ;; esac
  sleep 0.2
done
t1=$(date +%s.%N)
rss() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used: on a shared machine the
# wall time says less than this.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat"; }
printf 'items=%s kind=%s status=%s seconds=%.2f coord_cpu_s=%s worker_cpu_s=%s,%s coord_peak_kB=%s worker_peak_kB=%s,%s\n' \
  "$n" "$kind" "$st" "$(echo "$t1 - $t0" | bc)" "$(cpu $cpid)" "$(cpu ${wp[0]})" "$(cpu ${wp[1]})" \
  "$(rss $cpid)" "$(rss ${wp[0]})" "$(rss ${wp[1]})"
for ty in result_ignored step_lost; do
  printf '%s=%s\n' "$ty" "$(weft events --run "$id" --type "$ty" --limit 10000 | wc -l)"
done
