#!/bin/sh
# An exec step that fails on purpose: says why on stderr and exits with
# the code given as its first argument (examples/on-failure.json).
cat >/dev/null
echo "backup: disk full (simulated)" >&2
exit "${1:-1}"
