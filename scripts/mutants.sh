#!/usr/bin/env bash
# Planted bugs: does the suite catch them?
#
# Each tests/mutants/*.patch is a realistic bug as a unified diff, with
# header lines before it:
#   # mutant: what the bug is
#   # tests: the ctest names that must catch it (space separated)
# For each one this script applies the patch to a scratch copy of the
# working tree (uncommitted changes included), rebuilds, runs the named
# tests, and prints "caught" when they fail, "MISSED" when they pass. The
# patch is then taken back out before the next one.
#
# A developer tool, not part of CI: run it after changing a test or the
# code a mutant plants its bug in (a patch that no longer applies is
# reported as STALE: rewrite it against the new code).
#
# Usage: scripts/mutants.sh [PATCH...]      (default: every patch)
# Exits 0 only when every mutant was caught.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" test || exit 1

work=${WEFT_MUTANTS_DIR:-$(mktemp -d /tmp/weft-mutants-XXXXXX)}
src=$work/src
build=$work/build
mkdir -p "$src"
trap 'rm -rf "$work"' EXIT

if [ $# -eq 0 ]; then
  set -- "$root"/tests/mutants/*.patch
fi

# The working tree as it is, tracked and new files, without build dirs.
(cd "$root" && git ls-files -co --exclude-standard -z |
  tar --null -T - -cf - ) | (cd "$src" && tar -xf -)

echo "== building the unmutated tree in $build"
if ! "$src/scripts/build.sh" "$build" >/dev/null; then
  echo "weft-mutants: the unmutated tree does not build" >&2
  exit 1
fi

caught=0
missed=0
stale=0
results=()
for p in "$@"; do
  name=$(basename "$p" .patch)
  what=$(sed -n 's/^# mutant: //p' "$p" | head -1)
  tests=$(sed -n 's/^# tests: //p' "$p" | head -1)
  if [ -z "$tests" ]; then
    echo "weft-mutants: $p has no '# tests:' line" >&2
    stale=$((stale + 1))
    results+=("STALE   $name (no '# tests:' line)")
    continue
  fi
  if ! (cd "$src" && git apply --check "$p" 2>/dev/null); then
    stale=$((stale + 1))
    results+=("STALE   $name (does not apply)")
    continue
  fi
  (cd "$src" && git apply "$p")
  regex="^($(echo "$tests" | tr ' ' '|'))\$"
  t0=$(date +%s)
  if ! cmake --build "$build" -j"$(nproc)" >"$work/build-$name.log" 2>&1; then
    verdict="STALE   $name (does not compile: $work/build-$name.log)"
    stale=$((stale + 1))
  elif (cd "$build" && ctest -R "$regex" --timeout 600 \
          >"$work/test-$name.log" 2>&1); then
    verdict="MISSED  $name ($tests)  — $what"
    missed=$((missed + 1))
  else
    verdict="caught  $name ($tests, $(($(date +%s) - t0)) s)"
    caught=$((caught + 1))
  fi
  (cd "$src" && git apply -R "$p")
  echo "$verdict"
  results+=("$verdict")
done

# Leave the build matching the tree again (quietly): the next run reuses
# nothing, but a kept WEFT_MUTANTS_DIR should not hold a mutant.
cmake --build "$build" -j"$(nproc)" >/dev/null 2>&1

echo
echo "== planted bugs"
printf '%s\n' "${results[@]}"
echo "$caught caught, $missed missed, $stale stale"
[ "$missed" -eq 0 ] && [ "$stale" -eq 0 ]
