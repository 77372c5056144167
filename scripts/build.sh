#!/usr/bin/env bash
# Configures and builds weft into a build directory; prints the compiler's
# output only when something fails.
# Usage: scripts/build.sh [DIR] [extra cmake args...]   (default DIR: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
mkdir -p "$dir"
log="$dir/build.log"
if ! { cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" &&
       cmake --build "$dir" -j"$(nproc)"; } >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "weft: build failed (full log: $log)" >&2
  exit 1
fi
