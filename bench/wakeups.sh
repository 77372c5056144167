#!/usr/bin/env bash
# bench/wakeups.sh: where a chained step's time goes between threads.
#
# Runs weft-bench's W2 (a chain of noop steps: a fresh local cluster, SQLite
# with fsync) once under `perf sched record -a`, then prints the wake-ups
# per step between the coordinator's, the workers' and weft-bench's threads
# and the three segments of a step (bench/wakeups.py tells what each is).
# Installs Debian's linux-perf when perf is missing. Needs root (or
# kernel.perf_event_paranoid <= -1) to trace the scheduler.
#
# Usage: bench/wakeups.sh [--keep]
# Environment: WEFT_BUILD  build dir with bench/weft-bench (default
#                          build-bench, configured Release and built when
#                          weft-bench is missing there)
# Exit status: 0 printed, 1 tracing or the run failed, 2 bad arguments,
# 3 perf could not be installed, 4 weft-bench could not be built.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD:-$root/build-bench}
keep=0

die() { # die MESSAGE STATUS: the one way this script fails
  echo "wakeups.sh: $1" >&2
  exit "$2"
}

while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=1; shift ;;
    --help|-h) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" 2 ;;
  esac
done

tmp=$(mktemp -d /tmp/weft-wakeups-XXXXXX) || die "cannot create a temp dir" 1
cleanup() {
  if [ $keep -eq 1 ]; then echo "wakeups.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

if ! perf --version >/dev/null 2>&1; then
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends linux-perf; } >"$tmp/apt.log" 2>&1
  perf --version >/dev/null 2>&1 ||
    die "perf is not available: apt-get install linux-perf failed; $(tail -n 3 "$tmp/apt.log" | tr '\n' ' ')" 3
fi

bench=$build/bench/weft-bench
if [ ! -x "$bench" ]; then
  echo "wakeups.sh: building weft-bench in $build (Release; log $tmp/build.log)" >&2
  { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release &&
    nice cmake --build "$build" -j"$(nproc)" --target weft-bench weft-coordinator weft-worker
  } >"$tmp/build.log" 2>&1 || { tail -n 30 "$tmp/build.log" >&2; die "cannot build weft-bench in $build" 4; }
fi

# One repetition: perf's buffers hold it, and the steps are known. The
# trace is machine-wide (the wake-ups that cross processes need it); the
# bench's pid and the forks it records tell its cluster from any other.
perf sched record -o "$tmp/sched.data" -- \
  sh -c 'echo $$ >"$0"; exec "$@"' "$tmp/bench.pid" \
  "$bench" --workload W2 --repeat 1 --no-probe --no-commit-hist \
  >"$tmp/bench.txt" 2>"$tmp/perf.log" ||
  die "perf sched record or weft-bench failed: $(tail -n 5 "$tmp/perf.log" | tr '\n' ' ')" 1
grep -E '^  1 ' "$tmp/bench.txt" | awk '{printf "W2 wall %s ms (weft-bench, under perf)\n", $2}'
perf sched timehist -w -i "$tmp/sched.data" >"$tmp/timehist.txt" 2>>"$tmp/perf.log" ||
  die "perf sched timehist failed: $(tail -n 5 "$tmp/perf.log" | tr '\n' ' ')" 1
perf script -i "$tmp/sched.data" 2>>"$tmp/perf.log" |
  sed -n 's/.*sched_process_fork: .* pid=\([0-9]*\) child_comm=.* child_pid=\([0-9]*\).*/\1 \2/p' \
  >"$tmp/forks.txt" || die "perf script failed: $(tail -n 5 "$tmp/perf.log" | tr '\n' ' ')" 1
python3 "$root/bench/wakeups.py" "$tmp/timehist.txt" 1000 \
  --tree "$tmp/forks.txt" "$(cat "$tmp/bench.pid")" || exit 1
