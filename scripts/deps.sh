#!/usr/bin/env bash
# Installs the Debian 12 packages weft needs, only those that are missing.
# Usage: scripts/deps.sh [build|test]   (test adds what the test suite needs)
set -euo pipefail

want=(build-essential cmake pkg-config libnng-dev libprotobuf-c-dev
      protobuf-c-compiler libsqlite3-dev libpq-dev libjansson-dev
      libcriterion-dev libsodium-dev libmbedtls-dev)
if [ "${1:-build}" = test ]; then
  want+=(clang libclang-rt-14-dev iproute2 procps curl postgresql chromium
         openssl file prometheus)
  # The browser tests run on node; the machine image ships one, a bare
  # Debian gets Debian's.
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "weft: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as postgresql and prometheus start their own daemons
  # on install (prometheus on every interface): the tests start their
  # own, on loopback. A policy-rc.d that says no keeps them from starting
  # (put back as it was afterwards).
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
