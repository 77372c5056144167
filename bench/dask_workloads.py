#!/usr/bin/env python3
"""weft-bench's workloads W1-W3 on Dask distributed, for bench/compare.sh.

Connects to a running scheduler (--scheduler-file), waits for its workers,
and runs each workload --repeat times. Prints one JSON object per
repetition on stdout: {"system": "dask", "workload": "W1", "rep": 1,
"wall_ms": ..., "tasks": ...}. Exit status 0 when every repetition ran and
every task ran exactly once; 2 on a bad argument; 3 when Dask cannot be
imported or reached.

The shapes are weft-bench's (bench/workload.c), with no-op Python tasks:
  W1  root, 10,000 tasks depending on it, a join depending on all of them
  W2  a chain of 1,000 tasks, each depending on the previous
  W3  1,000 independent 4-task diamonds (a; b, c on a; d on b and c),
      submitted at once

Graphs go in as one low-level dict per repetition through Client.get
(sync=False, then wait + gather): one update-graph message and no client
side graph optimisation, so every task is scheduled and run as its own
task (no fusion of W2's chain). --api submit uses one Client.submit per
task with futures as dependencies instead (measured slower; see
bench/README.md). The clock runs from submission to the final result in
the client, graph building excluded (as weft-bench registers its
definition before its clock starts). Keys are unique per repetition, so no
result of an earlier repetition is reused; after each repetition the
workers' executed-task counters prove every task ran once.

Plain Python 3 and the dask.distributed API only (Debian's
python3-distributed).
"""

import argparse
import json
import sys
import time
import uuid

W1_FAN = 10000
W2_LEN = 1000
W3_RUNS = 1000
WORKLOADS = ("W1", "W2", "W3")


def noop(*args):
    """The task: takes its dependencies' results and returns nothing."""
    return None


def graph(workload, prefix):
    """Returns (dsk, result keys, tasks) of one repetition of workload."""
    dsk = {}
    if workload == "W1":
        root = prefix + "root"
        dsk[root] = (noop,)
        fan = [prefix + "s%d" % i for i in range(W1_FAN)]
        for k in fan:
            dsk[k] = (noop, root)
        dsk[prefix + "join"] = (noop, fan)
        return dsk, [prefix + "join"], W1_FAN + 2
    if workload == "W2":
        prev = None
        for i in range(W2_LEN):
            k = prefix + "c%d" % i
            dsk[k] = (noop,) if prev is None else (noop, prev)
            prev = k
        return dsk, [prev], W2_LEN
    ends = []
    for r in range(W3_RUNS):
        a, b, c, d = (prefix + "%s%d" % (x, r) for x in "abcd")
        dsk[a] = (noop,)
        dsk[b] = (noop, a)
        dsk[c] = (noop, a)
        dsk[d] = (noop, b, c)
        ends.append(d)
    return dsk, ends, 4 * W3_RUNS


def run_get(client, dsk, keys, timeout):
    from distributed import wait

    futs = client.get(dsk, keys, sync=False)
    wait(futs, timeout=timeout)
    return client.gather(futs)


def run_submit(client, dsk, keys, timeout):
    from distributed import wait

    futs = {}
    for k in dsk:  # built dependencies first
        task = dsk[k]
        args = []
        for a in task[1:]:
            if isinstance(a, list):
                args.append([futs[x] for x in a])
            else:
                args.append(futs[a])
        futs[k] = client.submit(task[0], *args, key=k, pure=False)
    out = [futs[k] for k in keys]
    wait(out, timeout=timeout)
    return client.gather(out)


def executed(client):
    """Tasks the workers have executed so far, summed."""
    counts = client.run(lambda dask_worker: dask_worker.state.executed_count)
    return sum(counts.values())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scheduler-file", required=True)
    p.add_argument("--workload", default="W1,W2,W3",
                   help="W1, W2, W3, comma separated (default all)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--rep-base", type=int, default=0,
                   help="number of the first repetition, minus one")
    p.add_argument("--api", choices=("get", "submit"), default="get")
    p.add_argument("--workers", type=int, default=2,
                   help="workers to wait for (default 2)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="deadline of one repetition, seconds")
    p.add_argument("--wait-only", action="store_true",
                   help="only wait until the workers have joined")
    a = p.parse_args()
    wls = [w.strip().upper() for w in a.workload.split(",") if w.strip()]
    bad = [w for w in wls if w not in WORKLOADS]
    if bad or not wls or a.repeat < 1 or a.timeout <= 0:
        print("dask_workloads.py: --workload takes W1, W2, W3 (got %r); "
              "--repeat >= 1, --timeout > 0" % a.workload, file=sys.stderr)
        return 2
    try:
        from distributed import Client
    except ImportError as e:
        print("dask_workloads.py: cannot import distributed (%s): install "
              "python3-distributed" % e, file=sys.stderr)
        return 3
    try:
        client = Client(scheduler_file=a.scheduler_file, timeout="30s")
        client.wait_for_workers(a.workers, timeout=60)
    except Exception as e:  # any failure to reach the cluster
        print("dask_workloads.py: cannot reach the Dask cluster of %s: %s"
              % (a.scheduler_file, e), file=sys.stderr)
        return 3
    if a.wait_only:
        client.close()
        return 0
    run = run_get if a.api == "get" else run_submit
    status = 0
    try:
        for r in range(a.repeat):
            for w in wls:
                prefix = "%s-%s-r%d-" % (w, uuid.uuid4().hex[:8],
                                        a.rep_base + r + 1)
                dsk, keys, tasks = graph(w, prefix)
                before = executed(client)
                t0 = time.perf_counter()
                run(client, dsk, keys, a.timeout)
                wall = (time.perf_counter() - t0) * 1000.0
                ran = executed(client) - before
                if ran != tasks:
                    print("dask_workloads.py: %s ran %d tasks, expected %d"
                          % (w, ran, tasks), file=sys.stderr)
                    status = 1
                print(json.dumps({"system": "dask", "workload": w,
                                  "rep": a.rep_base + r + 1,
                                  "api": a.api, "wall_ms": round(wall, 1),
                                  "tasks": tasks, "executed": ran}),
                      flush=True)
    except Exception as e:
        print("dask_workloads.py: %s failed: %s" % (a.api, e),
              file=sys.stderr)
        status = 1
    finally:
        client.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
