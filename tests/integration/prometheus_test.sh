#!/usr/bin/env bash
# prometheus_test: weft watched by a real Prometheus (Debian's).
#  1. examples/prometheus/alerts.yml passes `promtool check rules` and its
#     unit tests (`promtool test rules alerts_test.yml`: each alert fires
#     on the series it is for, and not before its `for`).
#  2. A coordinator with --api-tokens and a worker (this build) run a few
#     workflows; Prometheus scrapes /metrics every second with a read
#     token, and a second job without a token must see up == 0 (401).
#  3. PromQL over what it scraped: the workers alive, the steps that
#     succeeded, the store up, commit latency quantiles from the
#     histogram, runs by status; the rules loaded; killing the worker
#     makes WeftWorkersLost pending.
# Usage: prometheus_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
bin=$(cd "$2" && pwd)
mult=${WEFT_TEST_TIMEOUT_MULTIPLIER:-1}
tmp=$(mktemp -d /tmp/weft-prom-XXXXXX)
name=prometheus_test
# shellcheck source=../support/testlib.sh
. "$src/tests/support/testlib.sh"
command -v prometheus >/dev/null && command -v promtool >/dev/null ||
  fail "prometheus and promtool are missing (scripts/deps.sh test installs them)"

echo "== promtool check rules / test rules"
promtool check rules "$src/examples/prometheus/alerts.yml" >"$tmp/promtool.log" 2>&1 ||
  fail "promtool check rules"
(cd "$src/examples/prometheus" && promtool test rules alerts_test.yml) \
  >>"$tmp/promtool.log" 2>&1 || fail "promtool test rules"

echo "== a coordinator with API tokens, a worker, some runs"
export WEFT_HOME=$tmp/home
mkdir -p "$WEFT_HOME"
read_token=prom-read-0123456789abcdef
op_token=prom-operate-0123456789abcdef
printf 'prom read %s\nops operate %s\n' "$read_token" "$op_token" >"$tmp/tokens"
chmod 600 "$tmp/tokens"
"$bin/coordinator/weft-coordinator" --db "sqlite:$WEFT_HOME/weft.db" \
  --control tcp://127.0.0.1:0 --cluster tcp://127.0.0.1:0 \
  --results tcp://127.0.0.1:0 --events tcp://127.0.0.1:0 \
  --http 127.0.0.1:0 --survey-ms 200 --api-tokens "$tmp/tokens" \
  --ports-file "$tmp/ports.json" >"$tmp/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 $((300 * mult))); do [ -s "$tmp/ports.json" ] && break; sleep 0.1; done
[ -s "$tmp/ports.json" ] || fail "the coordinator did not start"
field() {
  if [[ $(cat "$tmp/ports.json") =~ \"$1\":\"([^\"]*)\" ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  fi
}
control=$(field control)
cluster=$(field cluster)
http=$(field http)
http=${http#http://}
http=${http%/}
w() { WEFT_TOKEN=$op_token timeout $((60 * mult)) "$bin/cli/weft" --coordinator "$control" "$@"; }
"$bin/worker/weft-worker" --join "$cluster" --name prom-worker --slots 4 \
  >"$tmp/worker.log" 2>&1 &
worker=$!
pids+=($worker)
for _ in $(seq 1 $((300 * mult))); do
  grep -q '"state":"alive"' <<<"$(w workers --json 2>/dev/null)" && break
  sleep 0.1
done
w define "$src/examples/diamond.json" >/dev/null || fail "define"
for _ in 1 2 3; do
  w run diamond --wait >/dev/null || fail "run diamond"
done

echo "== Prometheus scrapes it"
printf '%s\n' "$read_token" >"$tmp/read-token"
cp "$src/examples/prometheus/alerts.yml" "$tmp/alerts.yml"
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: weft
    authorization:
      type: Bearer
      credentials_file: $tmp/read-token
    static_configs:
      - targets: ["$http"]
  - job_name: weft-no-token
    static_configs:
      - targets: ["$http"]
YML
promtool check config "$tmp/prometheus.yml" >>"$tmp/promtool.log" 2>&1 ||
  fail "promtool check config"
# A port free when looked at can be taken before Prometheus binds it (other
# tests start servers too): a Prometheus that exits before it is ready is
# started again on another port, up to five times.
port=""
for _ in 1 2 3 4 5; do
  try=""
  for p in $(shuf -i 20000-60000 -n 50); do
    if ! grep -q LISTEN <<<"$(ss -Hltn "sport = :$p")"; then try=$p; break; fi
  done
  [ -n "$try" ] || fail "no free port for Prometheus"
  prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
    --web.listen-address="127.0.0.1:$try" >"$tmp/prometheus.log" 2>&1 &
  prom=$!
  pids+=($prom)
  for _ in $(seq 1 $((300 * mult))); do
    kill -0 "$prom" 2>/dev/null || break
    # Its own answer: the port's taker, if any, would not say this.
    if curl -s --max-time 2 "http://127.0.0.1:$try/-/ready" |
        grep -q "Prometheus Server is Ready"; then
      port=$try
      break
    fi
    sleep 0.1
  done
  [ -n "$port" ] && break
  kill "$prom" 2>/dev/null || true
  wait "$prom" 2>/dev/null || true
  echo "prometheus_test: Prometheus did not come up on port $try; another port"
done
[ -n "$port" ] || fail "Prometheus did not start (five ports tried)"

# q PROMQL: the query's JSON answer from Prometheus's HTTP API.
q() {
  curl -s --max-time 5 "http://127.0.0.1:$port/api/v1/query" \
    --data-urlencode "query=$1" || true
}
# value PROMQL: the first sample's value ("" when there is none).
value() {
  if [[ $(q "$1") =~ \"value\":\[[0-9.]+,\"([^\"]*)\"\] ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  fi
}
# until_value PROMQL WANT: waits (bounded) for the query to answer WANT.
until_value() {
  local v=""
  for _ in $(seq 1 $((300 * mult))); do
    v=$(value "$1")
    [ "$v" = "$2" ] && return 0
    sleep 0.2
  done
  fail "PromQL '$1' answered '${v}', want '$2'"
}
until_value 'up{job="weft"}' 1
until_value 'up{job="weft-no-token"}' 0
until_value 'weft_workers_alive' 1
until_value 'weft_store_up' 1
until_value 'weft_steps_succeeded_total >= bool 12' 1   # 3 runs of 4 steps
until_value 'weft_runs{status="succeeded"}' 3
until_value 'count(weft_store_commit_seconds_bucket) > bool 1' 1
until_value 'histogram_quantile(0.99, sum by (le) (weft_store_commit_seconds_bucket)) > bool 0' 1
until_value 'sum(weft_wire_dropped_total)' 0
rules=$(curl -s --max-time 5 "http://127.0.0.1:$port/api/v1/rules")
for a in WeftCoordinatorDown WeftWorkersLost WeftNoWorkers WeftStoreDown \
    WeftReadyQueueGrowing WeftCommitLatencyHigh; do
  grep -q "\"name\":\"$a\"" <<<"$rules" || fail "rule $a not loaded"
done

echo "== the worker dies: WeftWorkersLost goes pending"
kill -9 "$worker"
until_value 'weft_workers_alive' 0
pending=false
for _ in $(seq 1 $((150 * mult))); do
  if grep -q '"alertname":"WeftWorkersLost"' <<<"$(curl -s --max-time 5 \
      "http://127.0.0.1:$port/api/v1/alerts")"; then
    pending=true
    break
  fi
  sleep 0.2
done
$pending || fail "WeftWorkersLost did not go pending"
echo "prometheus_test: ok"
