#!/usr/bin/env python3
"""The table of bench/compare.sh: weft and Dask medians, ratios, targets.

Reads the weft-bench --json documents of each repetition (one file per
repetition, --repeat 1 each) and the JSON lines of bench/dask_workloads.py,
and prints Markdown: per workload each system's median (min-max) and the
ratio Dask median / weft median against the issue's targets; the machine
probe with W2's time per step against fsync p50 + 2 x round trip p50; and
where weft's time went (CPU per step, engine and commit busy, overlap).
Medians of an even count are the lower middle, as weft-bench takes them.
Plain Python 3 (standard library only).
"""

import argparse
import json
import statistics
import sys

ABOUT = {
    "W1": "root + 10,000 noop + join",
    "W2": "1,000-step chain",
    "W3": "1,000 x 4-step diamond at once",
    "W3S": "W3, one request per run (Dask: W3)",
}
# Dask median / weft median at least this (the targets).
TARGET = {"W1": 20.0, "W2": 5.0, "W3": 10.0, "W3S": None}
# The Dask workload a weft workload is compared with.
DASK_OF = {"W1": "W1", "W2": "W2", "W3": "W3", "W3S": "W3"}
FLOOR_TARGET = 1.5  # W2 per step <= 1.5 x (fsync p50 + 2 x rtt p50)


def fail(msg):
    print("compare_report.py: " + msg, file=sys.stderr)
    sys.exit(1)


def load_weft(paths):
    """{workload: [median sample dict per repetition]}, [probe dicts]."""
    out, probes = {}, []
    for path in paths:
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            fail("%s: not a weft-bench JSON document: %s" % (path, e))
        if not doc.get("ok"):
            fail("%s: weft-bench reported a failure: %s"
                 % (path, doc.get("error", "?")))
        if doc.get("probe"):
            probes.append(doc["probe"])
        for w in doc.get("workloads", []):
            out.setdefault(w["name"], []).append(w["median"])
    return out, probes


def load_dask(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    out.setdefault(r["workload"], []).append(r["wall_ms"])
    except (OSError, ValueError, KeyError) as e:
        fail("%s: bad Dask result line: %s" % (path, e))
    return out


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median_low(v) if v else None


def cell(v):
    """median (min-max) of v, in ms."""
    v = [x for x in v if x is not None]
    if not v:
        return "-"
    if len(v) == 1:
        return "%.0f" % v[0]
    return "%.0f (%.0f-%.0f)" % (med(v), min(v), max(v))


def num(v, fmt="%.0f"):
    return "-" if v is None else fmt % v


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weft", nargs="+", required=True,
                   help="weft-bench --json files (SQLite), one per repetition")
    p.add_argument("--weft-pg", nargs="*", default=[],
                   help="the same on PostgreSQL")
    p.add_argument("--dask", required=True, help="dask_workloads.py output")
    p.add_argument("--dask-version", default="?")
    p.add_argument("--weft-build", default="?", help="its CMake build type")
    p.add_argument("--dask-setup", default="")
    p.add_argument("--json", help="also write the figures to this file")
    a = p.parse_args()

    weft, probes = load_weft(a.weft)
    weft_pg, _ = load_weft(a.weft_pg)
    dask = load_dask(a.dask)
    # W3S is weft's only (one request per run): listed when weft ran it.
    names = [w for w in ("W1", "W2", "W3") if w in dask or w in weft]
    names += [w for w in ("W3S",) if w in weft]
    reps = max([len(v) for v in list(weft.values()) + list(dask.values())]
               or [0])

    def walls(d, w):
        return [s.get("wall_ms") for s in d.get(w, [])]

    rows = []
    for w in names:
        dsamples = dask.get(DASK_OF[w], [])
        wm, dm = med(walls(weft, w)), med(dsamples)
        pm = med(walls(weft_pg, w)) if weft_pg else None
        ratio = dm / wm if wm and dm else None
        rows.append({
            "workload": w, "about": ABOUT[w],
            "weft_ms": wm, "dask_ms": dm, "ratio": ratio,
            "target": TARGET[w],
            "met": (None if TARGET[w] is None
                    else ratio is not None and ratio >= TARGET[w]),
            "weft_pg_ms": pm,
            "ratio_pg": dm / pm if pm and dm else None,
            "weft_samples": walls(weft, w), "dask_samples": dsamples,
            "weft_pg_samples": walls(weft_pg, w),
        })

    print("## weft vs Dask distributed: medians of %d, alternating, ms "
          "(min-max)\n" % reps)
    print("weft: weft-bench (%s build), SQLite (synchronous=FULL), a fresh "
          "local cluster per repetition; Dask %s: scheduler + %s on "
          "loopback, keeps nothing durable.\n"
          % (a.weft_build, a.dask_version, a.dask_setup))
    head = "| workload | weft | Dask | Dask / weft | target | |"
    line = "|---|---|---|---|---|---|"
    if weft_pg:
        head += " weft PostgreSQL | Dask / weft PG |"
        line += "---|---|"
    print(head)
    print(line)
    for r in rows:
        w = r["workload"]
        s = "| %s %s | %s | %s | %s | %s | %s |" % (
            w, r["about"], cell(r["weft_samples"]), cell(r["dask_samples"]),
            num(r["ratio"], "%.1fx"), num(r["target"], ">= %.0fx"),
            {None: "-", True: "met", False: "not met"}[r["met"]])
        if weft_pg:
            s += " %s | %s |" % (cell(r["weft_pg_samples"]),
                                 num(r["ratio_pg"], "%.1fx"))
        print(s)

    floor = None
    if probes:
        fs = med([x["fsync_p50_us"] for x in probes])
        rtt = med([x["rtt_p50_us"] for x in probes])
        lim = fs + 2 * rtt
        print("\nprobe (median over %d weft-bench runs): fsync p50 %.0f us "
              "(4 KiB append + fdatasync), nng req/rep loopback round trip "
              "p50 %.0f us" % (len(probes), fs, rtt))
        w2 = next((r for r in rows if r["workload"] == "W2"), None)
        if w2 and w2["weft_ms"]:
            step = w2["weft_ms"] / 1000.0
            floor = {"per_step_ms": step, "fsync_p50_us": fs,
                     "rtt_p50_us": rtt, "floor_step_ms": lim / 1000.0,
                     "ratio": step * 1000.0 / lim,
                     "target": FLOOR_TARGET}
            floor["met"] = floor["ratio"] <= FLOOR_TARGET
            print("W2 per step: %.3f ms; fsync p50 + 2 x rtt p50 = %.3f ms; "
                  "ratio %.2f (target <= %.1f: %s)" % (
                      step, lim / 1000.0, floor["ratio"], FLOOR_TARGET,
                      "met" if floor["met"] else "not met"))

    print("\nweft (SQLite), where the time went (medians):\n")
    print("| workload | wall ms | submit ms | coord cpu ms | cpu us/step | "
          "eng busy ms | commit busy ms | overlap ms | commits | batch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    steps = {"W1": 10002, "W2": 1000, "W3": 4000, "W3S": 4000}
    for w in names:
        ss = weft.get(w, [])

        def m(k):
            return med([s.get(k) for s in ss])
        cpu = m("coord_cpu_ms")
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            w, num(m("wall_ms")), num(m("submit_ms")), num(cpu),
            num(cpu * 1000.0 / steps[w] if cpu is not None else None),
            num(m("engine_busy_ms")), num(m("commit_busy_ms")),
            num(m("overlap_ms")), num(m("commits")),
            num(m("batch_mean"), "%.1f")))

    if a.json:
        with open(a.json, "w") as f:
            json.dump({"repetitions": reps, "weft_build": a.weft_build,
                       "dask_version": a.dask_version,
                       "dask_setup": a.dask_setup, "rows": rows,
                       "probes": probes, "w2_floor": floor}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
