#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds and runs
#   1. the regular build (RelWithDebInfo) with every test: unit, end-to-end
#      on loopback (SQLite and a PostgreSQL server the tests start), the
#      network-namespace tests, and the browser tests;
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build with the same
#      C tests;
#   3. the libFuzzer targets, each for a bounded time.
# Prints CTest's summary for each, then one total line.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" test || exit 1

passed=0
failed=0
run_ctest() { # dir label [ctest args...]
  local dir=$1 label=$2 log
  shift 2
  log=$(mktemp)
  echo "== $label"
  (cd "$dir" && ctest --output-on-failure --timeout 900 "$@") 2>&1 | tee "$log"
  local line
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
  if [ -z "$line" ]; then
    failed=$((failed + 1))
  else
    local total f
    total=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed.*/\1/')
    passed=$((passed + total - f))
    failed=$((failed + f))
  fi
  rm -f "$log"
}

echo "== build (RelWithDebInfo)"
if "$root/scripts/build.sh" "$root/build"; then
  run_ctest "$root/build" "tests (regular build)" -j2
else
  failed=$((failed + 1))
fi

echo "== build (AddressSanitizer + UBSan)"
if "$root/scripts/build.sh" "$root/build-asan" -DCMAKE_C_COMPILER=clang \
     -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=address,undefined; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  LSAN_OPTIONS=suppressions=$root/tests/lsan.supp \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest "$root/build-asan" "tests (ASan+UBSan)" -j2 -E 'browser|netns|package'
else
  failed=$((failed + 1))
fi

echo "== build (libFuzzer)"
if "$root/scripts/build.sh" "$root/build-fuzz" -DCMAKE_C_COMPILER=clang \
     -DWEFT_FUZZ=ON -DWEFT_TESTS=ON; then
  run_ctest "$root/build-fuzz" "fuzzers" -L fuzz -j2
else
  failed=$((failed + 1))
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
