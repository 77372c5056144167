#!/usr/bin/env bash
# package_test: weft as a user installs it.
#  1. A Release build for prefix /usr; `cmake --install --prefix` of it
#     into a scratch tree, and the SDK example compiled against that tree
#     through its relocatable weft-worker.pc (prefix from ${pcfiledir}).
#     `systemd-analyze verify` on the staged units (their ExecStart
#     pointed at the staged binaries) and, after step 3, on the installed
#     ones: any warning about them fails.
#  2. `cpack -G DEB`: the four packages, their names, dependencies and
#     files.
#  3. `apt-get install ./*.deb`, then with the installed binaries from
#     PATH: examples/custom-worker built with plain
#     `cc … $(pkg-config --cflags --libs weft-worker)`, a coordinator, a
#     weft-worker and the custom worker on loopback; the hello example and
#     the custom step type's workflow run to success; a long custom step
#     reports progress and stops when its run is cancelled.
#  4. The packages are purged again (the system user weft stays, as
#     Debian leaves system users).
# Needs root (apt-get). Outside CI a non-root run is skipped (exit 77).
# Usage: package_test.sh SOURCE_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
if [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "package_test: needs root to install packages" >&2
    exit 1
  fi
  echo "package_test: skipped (needs root to install packages)" >&2
  exit 77
fi
tmp=$(mktemp -d /tmp/weft-pkg-XXXXXX)
name=package_test
pkgs=(weft-coordinator weft-worker weft-cli libweft-worker-dev)
installed=false
export DEBIAN_FRONTEND=noninteractive
on_exit() {
  if $installed; then
    apt-get purge -y -qq "${pkgs[@]}" >/dev/null 2>&1 || true
  fi
}
# shellcheck source=../support/testlib.sh
. "$src/tests/support/testlib.sh"

# A leftover install from an interrupted run would mask this one.
for p in "${pkgs[@]}"; do
  if grep -q "install ok" <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)"; then
    apt-get purge -y -qq "$p" >/dev/null
  fi
done

echo "== build for /usr"
cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX=/usr -DWEFT_TESTS=OFF -DWEFT_BENCH=OFF >"$tmp/cmake.log" 2>&1 ||
  fail "cmake configure"
nice cmake --build "$tmp/build" -j2 >"$tmp/build.log" 2>&1 || fail "build"

echo "== cmake --install into a scratch tree; the .pc is relocatable"
# DESTDIR: the build is for /usr, and /etc/weft is absolute for it (as
# GNUInstallDirs makes /etc of sysconfdir for prefix /usr).
DESTDIR=$tmp/stage cmake --install "$tmp/build" >"$tmp/install.log" 2>&1 ||
  fail "cmake --install"
[ -f "$tmp/stage/etc/weft/coordinator.conf" ] || fail "no /etc/weft/coordinator.conf"
stage=$tmp/stage/usr
for f in bin/weft bin/weft-coordinator bin/weft-worker include/weft/worker.h \
    include/weft/err.h share/weft/dashboard/index.html \
      share/bash-completion/completions/weft lib/systemd/system/weft-coordinator.service \
    "lib/systemd/system/weft-worker@.service"; do
  [ -e "$stage/$f" ] || fail "cmake --install: $f missing"
done
pc=$(find "$stage" -name weft-worker.pc | head -1)
[ -n "$pc" ] || fail "cmake --install: weft-worker.pc missing"
libdir=$(dirname "$(dirname "$pc")")
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags weft-worker)
libs=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --libs weft-worker)
case "$cflags $libs" in
  *"$stage"*) ;;
  *) fail "weft-worker.pc does not point into the tree it is in: $cflags $libs" ;;
esac
# shellcheck disable=SC2086
cc -Wall -Wextra -Werror -o "$tmp/cw-stage" "$src/examples/custom-worker/main.c" \
  $cflags $libs -Wl,-rpath,"$libdir" || fail "custom worker against the scratch tree"
"$tmp/cw-stage" --help >/dev/null || fail "custom worker (scratch tree) does not start"

# verify_units DIR BINDIR: systemd-analyze verify on the two units in DIR
# (copies, ExecStart's /usr/bin replaced by BINDIR, where the binaries
# are). It exits 0 on warnings (an unknown key, a bad value): any line
# naming a weft unit fails.
verify_units() {
  local dir=$1 bindir=$2 v=$tmp/verify out
  command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (apt-get install systemd)"
  rm -rf "$v" && mkdir -p "$v"
  for u in weft-coordinator.service "weft-worker@.service"; do
    sed "s|/usr/bin/|$bindir/|g" "$dir/$u" >"$v/$u"
  done
  out=$(cd "$v" && systemd-analyze verify ./weft-coordinator.service \
    ./weft-worker@.service ./weft-worker@1.service 2>&1) ||
    fail "systemd-analyze verify: $out"
  if grep -q weft <<<"$out"; then
    fail "systemd-analyze verify warns about the units: $out"
  fi
}
echo "== systemd-analyze verify, staged units"
verify_units "$stage/lib/systemd/system" "$stage/bin"

echo "== cpack -G DEB"
(cd "$tmp/build" && cpack -G DEB >"$tmp/cpack.log" 2>&1) || fail "cpack"
debs=()
for p in "${pkgs[@]}"; do
  d=$(ls "$tmp/build/${p}_"*.deb 2>/dev/null | head -1)
  [ -n "$d" ] || fail "no package $p"
  [ "$(dpkg-deb -f "$d" Package)" = "$p" ] || fail "$d: wrong Package"
  debs+=("$d")
done
deps() { dpkg-deb -f "$tmp/build/${1}_"*.deb Depends; }
echo "weft-coordinator depends on: $(deps weft-coordinator)"
for want in "weft-coordinator:libnng1" "weft-coordinator:libpq5" \
    "weft-coordinator:libsqlite3-0" "weft-worker:libnng1" "weft-cli:libnng1" \
    "libweft-worker-dev:weft-worker" "libweft-worker-dev:libjansson-dev"; do
  grep -q "${want#*:}" <<<"$(deps "${want%%:*}")" ||
    fail "${want%%:*} does not depend on ${want#*:}: $(deps "${want%%:*}")"
done
# (grep on a variable: grep -q closing a pipe early fails it under pipefail)
has() {
  local list
  list=$(dpkg-deb -c "$tmp/build/${1}_"*.deb)
  grep -q -- "$2" <<<"$list" || fail "$1 lacks $2"
}
has weft-coordinator ./usr/bin/weft-coordinator
has weft-coordinator ./usr/share/weft/dashboard/index.html
has weft-coordinator ./usr/lib/systemd/system/weft-coordinator.service
has weft-coordinator ./etc/weft/coordinator.conf
has weft-worker ./usr/bin/weft-worker
has weft-worker "./usr/lib/systemd/system/weft-worker@.service"
has weft-worker "libweft-worker.so.0"
has weft-cli ./usr/bin/weft
has weft-cli ./usr/share/bash-completion/completions/weft
has libweft-worker-dev ./usr/include/weft/worker.h
has libweft-worker-dev weft-worker.pc

echo "== apt-get install ./*.deb"
installed=true
apt-get install -y -qq --no-install-recommends "${debs[@]}" >"$tmp/apt.log" 2>&1 ||
  fail "apt-get install"
for b in weft weft-coordinator weft-worker; do
  [ "$(command -v "$b")" = "/usr/bin/$b" ] || fail "$b is not on PATH from /usr/bin"
done
getent passwd weft >/dev/null || fail "the weft system user was not made"
[ "$(stat -c %a /var/lib/weft)" = 700 ] || fail "/var/lib/weft is not 0700"
echo "== systemd-analyze verify, installed units"
verify_units /usr/lib/systemd/system /usr/bin

echo "== the SDK example with plain cc and pkg-config"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -o "$tmp/weft-custom-worker" \
  /usr/share/weft/examples/custom-worker/main.c \
  $(pkg-config --cflags --libs weft-worker) || fail "cc against the package"

echo "== a cluster of installed binaries"
export WEFT_HOME=$tmp/home
mkdir -p "$WEFT_HOME"
weft-coordinator --db "sqlite:$WEFT_HOME/weft.db" --control tcp://127.0.0.1:0 \
  --cluster tcp://127.0.0.1:0 --results tcp://127.0.0.1:0 \
  --events tcp://127.0.0.1:0 --http 127.0.0.1:0 --survey-ms 200 \
  --ports-file "$tmp/ports.json" >"$tmp/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [ -s "$tmp/ports.json" ] && break; sleep 0.1; done
[ -s "$tmp/ports.json" ] || fail "the coordinator did not start"
port() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$tmp/ports.json"; }
control=$(port control)
cluster=$(port cluster)
w() { timeout 120 weft --coordinator "$control" "$@"; }
weft-worker --join "$cluster" --name pkg-worker \
  --exec-allow /usr/share/weft/examples/bin >"$tmp/worker.log" 2>&1 &
pids+=($!)
"$tmp/weft-custom-worker" --join "$cluster" --name pkg-custom --slots 2 \
  >"$tmp/custom-worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  n=$(w workers --json 2>/dev/null | grep -o '"state":"alive"' | wc -l || true)
  [ "$n" -ge 2 ] && break
  sleep 0.1
done
[ "$n" -ge 2 ] || fail "the workers did not join ($n alive)"

w define /usr/share/weft/examples/hello.json >/dev/null || fail "define hello"
out=$(w run hello --params '{"who":"deb"}' --wait --json) || fail "run hello: $out"
[ "$(first status "$out")" = succeeded ] || fail "hello did not succeed: $out"

w define /usr/share/weft/examples/custom-worker/primes.json >/dev/null ||
  fail "define primes"
out=$(w run primes --wait --json) || fail "run primes: $out"
[ "$(first status "$out")" = succeeded ] || fail "primes did not succeed: $out"
run=$(first id "$out")
rep=$(w status "$run" --step report --output) || fail "status --output"
grep -q '"below_1000": *168' <<<"$rep" || fail "primes below 1000: $rep"
grep -q '"below_param": *25997' <<<"$rep" || fail "primes below 300000: $rep"

echo "== a long custom step reports progress and stops when cancelled"
run=$(w run primes --params '{"below": 100000000}') || fail "run long primes"
seen=false
for _ in $(seq 1 300); do
  if grep -q '"done"' <<<"$(w events --run "$run" --type step_progress 2>/dev/null)"; then
    seen=true
    break
  fi
  sleep 0.1
done
$seen || fail "no step_progress from the custom step"
w cancel "$run" >/dev/null || fail "cancel"
state=""
for _ in $(seq 1 300); do
  state=$(first status "$(w status "$run" --json)")
  [ "$state" = cancelled ] && break
  sleep 0.1
done
[ "$state" = cancelled ] || fail "the run did not end cancelled ($state)"
# The handler saw the abort and returned: the worker has a free slot again
# (its log says the attempt ended, not that it was cut).
free=false
for _ in $(seq 1 100); do
  grep -q "did not stop" "$tmp/custom-worker.log" && fail "the custom step ignored the abort"
  if grep -q '"name":"pkg-custom"[^}]*"running":0,' <<<"$(w workers --json)"; then
    free=true
    break
  fi
  sleep 0.1
done
$free || fail "a worker still runs an attempt after the cancel: $(w workers --json)"
echo "package_test: ok"
