#!/usr/bin/env bash
# run.sh [BUILD_DIR]: the dashboard's browser tests. Installs what is
# missing (the npm packages of package-lock.json, Debian's chromium), builds
# nothing, starts a real coordinator and workers from BUILD_DIR (default:
# build/ at the top of the checkout) and runs the tests with node's test
# runner. Screenshots and process logs go to BUILD_DIR/browser-screenshots.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
if [ ! -d "$build" ]; then
  echo "run.sh: no build directory $build: build weft first" >&2
  exit 1
fi
build=$(cd "$build" && pwd)
for b in coordinator/weft-coordinator worker/weft-worker; do
  if [ ! -x "$build/$b" ]; then
    echo "run.sh: $build/$b is missing: build weft first" >&2
    exit 1
  fi
done

if [ ! -x /usr/bin/chromium ]; then
  echo "run.sh: installing Debian's chromium" >&2
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq chromium >/dev/null
fi

if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  echo "run.sh: installing playwright-core (npm ci)" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

export WEFT_BUILD_DIR="$build"
export WEFT_BROWSER_OUT="$build/browser-screenshots"
mkdir -p "$WEFT_BROWSER_OUT"
cd "$here"
status=0
# One file at a time: each starts its own cluster and browser.
node --test --test-concurrency=1 --test-reporter=spec dashboard.test.mjs \
  login.test.mjs ops.test.mjs web.test.mjs || status=$?
echo "screenshots: $WEFT_BROWSER_OUT"
exit $status
