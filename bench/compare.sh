#!/usr/bin/env bash
# bench/compare.sh: weft and Dask distributed side by side on W1-W3.
#
# Starts a Dask scheduler and two workers x 4 threads on loopback (Debian's
# python3-distributed, installed with apt-get when missing), then runs,
# repetition by repetition and alternating the two systems, weft-bench (a
# fresh local cluster per repetition, SQLite with fsync) and the same
# workloads on Dask (bench/dask_workloads.py). Prints each system's median,
# the ratio Dask / weft and the issue's targets as a Markdown table, with
# the machine probe (fsync, loopback round trip) beside W2. --pg adds weft
# on a throwaway PostgreSQL server to every repetition. Every process it
# starts is stopped by PID on exit, also on failure or Ctrl-C.
#
# Usage: bench/compare.sh [--repeat N] [--workload W1,W2,W3] [--pg]
#            [--json FILE] [--nanny] [--api get|submit] [--no-install]
#            [--keep] [-- weft-bench options...]
# Environment: WEFT_BUILD    build dir with bench/weft-bench (default
#                            build-bench, configured Release and built
#                            when weft-bench is missing there)
#              WEFT_COMPARE_PYTHON  the Python with dask.distributed
#                            (default /usr/bin/python3, Debian's)
# Exit status: 0 measured (targets met or not: see the table), 1 a
# measurement failed, 2 bad arguments, 3 Dask could not be installed or
# started, 4 weft-bench could not be built.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD:-$root/build-bench}
py=${WEFT_COMPARE_PYTHON:-/usr/bin/python3}
repeat=5
workloads=W1,W2,W3
pg=0
json=
nanny=--no-nanny
api="get"
install=1
keep=0
extra=()

exec 3>&2 # the caller's stderr, also inside a redirected command's trap
die() { # die STATUS MESSAGE: the one way this script fails
  echo "compare.sh: $2" >&3
  exit "$1"
}

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case $1 in
    --repeat)
      [[ ${2:-} =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 50 ] ||
        die 2 "--repeat takes 1..50, not '${2:-}'"
      repeat=$2; shift 2 ;;
    --workload)
      [[ ${2:-} =~ ^(W[123])(,W[123])*$ ]] ||
        die 2 "--workload takes W1, W2, W3 separated by commas, not '${2:-}'"
      workloads=$2; shift 2 ;;
    --json)
      [ -n "${2:-}" ] || die 2 "--json needs a file name"
      json=$2; shift 2 ;;
    --api)
      [[ ${2:-} =~ ^(get|submit)$ ]] || die 2 "--api takes get or submit, not '${2:-}'"
      api=$2; shift 2 ;;
    --pg) pg=1; shift ;;
    --nanny) nanny=--nanny; shift ;;
    --no-install) install=0; shift ;;
    --keep) keep=1; shift ;;
    --help|-h) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die 2 "unknown argument '$1' (see --help)" ;;
  esac
done

tmp=$(mktemp -d /tmp/weft-compare-XXXXXX) || die 1 "cannot create a temp dir"
pids=() # the Dask processes, and the child `child` runs while it runs
. "$root/bench/pg_lib.sh"

# child runs a command in the background and waits for it: a signal to
# this script is handled at once (a foreground command would delay the
# trap until it ends), and cleanup stops the command too. Its exit status.
child() {
  "$@" &
  pids+=($!)
  wait $!
  local rc=$?
  unset 'pids[${#pids[@]}-1]'
  return $rc
}

# cleanup stops every process this script started, by PID: SIGTERM, then
# SIGKILL for what is still there after 10 s; then PostgreSQL and the dir.
cleanup() {
  local rc=$? p left
  trap - EXIT INT TERM HUP
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 1 100); do
    left=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
    [ $left -eq 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  weft_pg_stop
  if [ $keep -eq 1 ]; then
    echo "compare.sh: kept $tmp" >&3
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "compare.sh: interrupted" >&3; exit 130' INT TERM HUP

# ---- Dask: present, or installed from Debian's packages ----
have_dask() { "$py" -c 'import distributed' >/dev/null 2>&1; }
if ! have_dask; then
  [ $install -eq 1 ] ||
    die 3 "Dask is not available: $py cannot import distributed (--no-install given; apt-get install python3-distributed)"
  [ "$(id -u)" -eq 0 ] ||
    die 3 "Dask is not available and installing python3-distributed needs root (apt-get install python3-distributed)"
  echo "compare.sh: installing python3-distributed (apt-get; log $tmp/apt.log)" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-distributed ||
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-distributed; }
  } >"$tmp/apt.log" 2>&1
  have_dask || die 3 "Dask is not available: apt-get install python3-distributed failed or $py still cannot import distributed; $(tail -n 3 "$tmp/apt.log" | tr '\n' ' ')"
fi
dask_version=$("$py" -c 'import distributed; print(distributed.__version__)')

# ---- weft-bench: a Release build ----
bench=$build/bench/weft-bench
if [ ! -x "$bench" ]; then
  echo "compare.sh: building weft-bench in $build (Release; log $tmp/build.log)" >&2
  { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release &&
    nice cmake --build "$build" -j"$(nproc)" --target weft-bench weft-coordinator weft-worker weft
  } >"$tmp/build.log" 2>&1 || { tail -n 30 "$tmp/build.log" >&2; die 4 "cannot build weft-bench in $build"; }
fi

# A Debug or sanitizer build measures the sanitizers: say so.
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null)
btype=${btype:-unknown}
if grep -q '^WEFT_SANITIZE:[A-Z]*=.' "$build/CMakeCache.txt" 2>/dev/null ||
   [[ ! $btype =~ ^(Release|RelWithDebInfo)$ ]]; then
  echo "compare.sh: warning: $build is a $btype build (sanitizers: $(sed -n 's/^WEFT_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null)); weft's figures measure that" >&3
fi

# weft-bench's W3S (W3 with one request per run, where W3 sends one batch
# request) is reported beside W3 when this weft-bench has it.
weft_workloads=$workloads
if [[ $workloads == *W3* ]] && "$bench" --help 2>/dev/null | grep -q W3S; then
  weft_workloads+=,W3S
fi

# ---- the Dask cluster: scheduler + 2 workers x 4 threads on loopback ----
sched=$tmp/scheduler.json
"$py" -m distributed.cli.dask_scheduler --host 127.0.0.1 --port 0 \
  --no-dashboard --scheduler-file "$sched" --idle-timeout 3600 \
  >"$tmp/dask-scheduler.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
  [ -s "$sched" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || break
  sleep 0.1
done
[ -s "$sched" ] ||
  die 3 "the Dask scheduler did not start: $(tail -n 5 "$tmp/dask-scheduler.log" | tr '\n' ' ')"
for i in 1 2; do
  "$py" -m distributed.cli.dask_worker --scheduler-file "$sched" \
    --host 127.0.0.1 --nthreads 4 "$nanny" --no-dashboard \
    --local-directory "$tmp/dask-w$i" --death-timeout 60 --name "w$i" \
    >"$tmp/dask-worker$i.log" 2>&1 &
  pids+=($!)
done
child "$py" "$root/bench/dask_workloads.py" --scheduler-file "$sched" --wait-only \
  2>"$tmp/dask-wait.log" ||
  die 3 "the Dask workers did not join: $(tr '\n' ' ' <"$tmp/dask-wait.log") $(tail -n 3 "$tmp/dask-worker1.log" | tr '\n' ' ')"

if [ $pg -eq 1 ]; then
  weft_pg_start || die 1 "PostgreSQL did not start"
fi

# ---- the repetitions, alternating (odd: weft first; even: Dask first) ----
run_weft() { # run_weft KIND [weft-bench options]: one repetition
  local kind=$1 out=$tmp/weft-$1-r$rep.json
  shift
  echo "compare.sh: weft ($kind) repetition $rep/$repeat" >&2
  child "$bench" --repeat 1 --workload "$weft_workloads" --json "$@" "${extra[@]}" \
    >"$out" 2>"$out.log" ||
    { tail -n 20 "$out.log" >&2; die 1 "weft-bench ($kind) failed (repetition $rep)"; }
}
run_dask() {
  echo "compare.sh: Dask repetition $rep/$repeat" >&2
  child "$py" "$root/bench/dask_workloads.py" --scheduler-file "$sched" \
    --workload "$workloads" --repeat 1 --rep-base $((rep - 1)) --api "$api" \
    >>"$tmp/dask.jsonl" 2>>"$tmp/dask.log" ||
    { tail -n 20 "$tmp/dask.log" >&2; die 1 "the Dask workloads failed (repetition $rep)"; }
}
for rep in $(seq 1 "$repeat"); do
  if [ $((rep % 2)) -eq 0 ]; then run_dask; fi
  run_weft sqlite
  if [ $pg -eq 1 ]; then run_weft pg --db "$WEFT_PG_URL"; fi
  if [ $((rep % 2)) -eq 1 ]; then run_dask; fi
done

report=("$root/bench/compare_report.py" --dask "$tmp/dask.jsonl" --weft-build "$btype"
  --dask-version "$dask_version" --dask-setup "2 workers x 4 threads, ${nanny#--}, Client.$api"
  --weft "$tmp"/weft-sqlite-r*.json)
if [ $pg -eq 1 ]; then report+=(--weft-pg "$tmp"/weft-pg-r*.json); fi
if [ -n "$json" ]; then report+=(--json "$json"); fi
"$py" "${report[@]}" || die 1 "cannot summarise the figures (kept in $tmp with --keep)"
