// bench_test: the benchmark tools run for real, briefly: weft-bench's
// machine probe and its W2 floor line and busy columns on a real cluster,
// their malformed flags, and bench/compare.sh failing clearly when Dask
// cannot be had or does not start (no Dask needed for that).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"

static char bench_bin[1024];

static void
bench_setup(void)
{
	snprintf(bench_bin, sizeof(bench_bin), "%s/bench/weft-bench",
	    WEFT_BIN_DIR);
}

TestSuite(bench, .init = bench_setup);

// bench_json runs weft-bench with args and parses its stdout. Its stderr
// goes to a file whose tail names what went wrong when stdout is not JSON.
static json_t *
bench_json(const char *args, int *status)
{
	char        *dir = weft_h_tempdir("bench-json");
	char        *out = NULL, *log = NULL;
	char         msg[8192];
	json_error_t je;
	json_t      *doc;

	*status = weft_h_run_fmt(&out, "%s %s 2>'%s/stderr'", bench_bin, args,
	    dir);
	doc     = json_loads(out != NULL ? out : "", 0, &je);
	msg[0]  = '\0';
	if (doc == NULL) {
		weft_h_run_fmt(&log, "tail -n 40 '%s/stderr'", dir);
		snprintf(msg, sizeof(msg),
		    "weft-bench %s: not JSON (%s): %s\nits stderr:\n%s", args,
		    je.text, out != NULL ? out : "", log != NULL ? log : "");
	}
	weft_h_run_fmt(NULL, "rm -rf '%s'", dir);
	free(log);
	free(out);
	free(dir);
	cr_assert_not_null(doc, "%s", msg);
	return (doc);
}

static double
num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	cr_assert(json_is_number(v), "%s is not a number", key);
	return (json_number_value(v));
}

// The probe's figures: its counts as asked, plausible times, and the
// floor as fsync p50 + 2 round trips p50.
static void
check_probe(json_t *p, int fsyncs, int trips)
{
	cr_assert(json_is_object(p), "no probe in the document");
	cr_assert_eq(num(p, "fsyncs"), fsyncs);
	cr_assert_eq(num(p, "round_trips"), trips);
	cr_assert_gt(num(p, "fsync_p50_us"), 0);
	cr_assert_geq(num(p, "fsync_p99_us"), num(p, "fsync_p50_us"));
	// A loopback round trip is more than a microsecond and far less
	// than a second on any machine this runs on.
	cr_assert_gt(num(p, "rtt_p50_us"), 1);
	cr_assert_lt(num(p, "rtt_p50_us"), 1e6);
	cr_assert_geq(num(p, "rtt_p99_us"), num(p, "rtt_p50_us"));
	cr_assert_float_eq(num(p, "limit_step_us"),
	    num(p, "fsync_p50_us") + 2 * num(p, "rtt_p50_us"), 1e-6);
}

Test(bench, probe_only, .timeout = 120)
{
	int     st;
	json_t *doc = bench_json(
	    "--probe-only --json --probe-fsyncs 20 --probe-round-trips 300", &st);

	cr_assert_eq(st, 0);
	cr_assert(json_is_true(json_object_get(doc, "ok")));
	check_probe(json_object_get(doc, "probe"), 20, 300);
	cr_assert_null(json_object_get(doc, "workloads"),
	    "--probe-only ran workloads");
	json_decref(doc);
}

Test(bench, probe_only_text, .timeout = 120)
{
	char *out = NULL;
	int   st = weft_h_run_fmt(&out, "%s --probe-only --probe-fsyncs 5 "
	                                "--probe-round-trips 50 2>/dev/null",
	      bench_bin);

	cr_assert_eq(st, 0);
	cr_assert_not_null(strstr(out, "probe: fsync (4 KiB append + "
	                               "fdatasync, 5 times) p50 "),
	    "%s", out);
	cr_assert_not_null(strstr(out, "(50 times) p50 "), "%s", out);
	free(out);
}

// W2 on a real cluster, once: the probe precedes it, W2 carries its time
// per step and the ratio to the floor, and the busy columns are there
// (numbers when the coordinator reports its busy counters, null when not;
// overlap known exactly when both are).
Test(bench, w2_floor_and_busy, .timeout = 600)
{
	int     st;
	json_t *doc = bench_json("--workload W2 --repeat 1 --json "
	                         "--no-commit-hist --probe-fsyncs 20 "
	                         "--probe-round-trips 200",
	    &st);
	json_t *w2, *med, *p, *eb, *cb, *ov;

	cr_assert_eq(st, 0, "weft-bench failed: %s",
	    json_string_value(json_object_get(doc, "error")));
	p = json_object_get(doc, "probe");
	check_probe(p, 20, 200);
	w2 = json_array_get(json_object_get(doc, "workloads"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(w2, "name")), "W2");
	med = json_object_get(w2, "median");
	cr_assert_float_eq(num(w2, "per_step_ms"), num(med, "wall_ms") / 1000.0,
	    1e-9);
	cr_assert_float_eq(num(w2, "floor_step_ms"),
	    num(p, "limit_step_us") / 1000.0, 1e-9);
	cr_assert_float_eq(num(w2, "floor_ratio"),
	    num(w2, "per_step_ms") / num(w2, "floor_step_ms"), 1e-9);
	eb = json_object_get(med, "engine_busy_ms");
	cb = json_object_get(med, "commit_busy_ms");
	ov = json_object_get(med, "overlap_ms");
	cr_assert(eb != NULL && cb != NULL && ov != NULL,
	    "busy columns missing from the JSON");
	if (json_is_number(eb)) {
		cr_assert_gt(json_number_value(eb), 0);
	}
	if (json_is_number(eb) && json_is_number(cb)) {
		cr_assert_float_eq(json_number_value(ov),
		    json_number_value(eb) + json_number_value(cb) -
		        num(med, "wall_ms"),
		    1e-6);
	} else {
		cr_assert(json_is_null(ov), "overlap without both busy times");
	}
	json_decref(doc);
}

// W5 kills the coordinator with SIGKILL and starts it again: the new one
// must come back on the addresses the first one bound (port 0 at first),
// which the workers and the bench's clients hold.
Test(bench, w5_restart_comes_back_on_the_same_addresses, .timeout = 300)
{
	int     st;
	json_t *doc = bench_json("--workload W5 --queued-runs 200 --repeat 1 "
	                         "--json --no-probe",
	    &st);
	json_t *med = json_object_get(
	    json_array_get(json_object_get(doc, "workloads"), 0), "median");

	cr_assert_eq(st, 0, "weft-bench failed: %s",
	    json_string_value(json_object_get(doc, "error")));
	cr_assert(json_is_true(json_object_get(doc, "ok")));
	cr_assert_gt(num(med, "recover_ms"), 0);
	json_decref(doc);
}

// A cluster that cannot start (its store cannot be opened) still gives
// one JSON document under --json: ok false and the error, the coordinator's
// log on stderr.
// --keep leaves the cluster's temp dir (its database and logs) for the
// reader, and without it nothing is left: the dir is the bench's own to
// remove, not the harness's at exit.
Test(bench, keep_leaves_the_cluster_dir, .timeout = 300)
{
	char *out = NULL, *dir = NULL;
	int   st  = weft_h_run_fmt(&out, "%s --workload W2 --repeat 1 "
	                                "--no-probe --no-commit-hist --keep "
	                                "2>&1 >/dev/null",
	       bench_bin);
	const char *k = out != NULL ? strstr(out, "weft-bench: kept ") : NULL;
	struct stat sb;
	char        path[1200];

	cr_assert_eq(st, 0, "weft-bench --keep failed: %s", out);
	cr_assert_not_null(k, "no 'kept' line: %s", out);
	dir = strndup(k + 17, strcspn(k + 17, "\n"));
	snprintf(path, sizeof(path), "%s/weft.db", dir);
	cr_expect_eq(stat(path, &sb), 0, "%s is gone", path);
	snprintf(path, sizeof(path), "%s/coordinator.log", dir);
	cr_expect_eq(stat(path, &sb), 0, "%s is gone", path);
	weft_h_run_fmt(NULL, "rm -rf '%s'", dir);
	free(dir);
	free(out);
}

Test(bench, json_when_the_cluster_cannot_start, .timeout = 120)
{
	int     st;
	json_t *doc = bench_json("--workload W2 --repeat 1 --json --no-probe "
	                         "--db sqlite:/nonexistent-weft-dir/x/weft.db",
	    &st);

	cr_assert_eq(st, 1);
	cr_assert(json_is_false(json_object_get(doc, "ok")));
	cr_assert_str_eq(json_string_value(json_object_get(doc, "error")),
	    "could not start the cluster");
	json_decref(doc);
}

// Every new flag refuses a bad value, with a message naming the flag.
Test(bench, malformed_probe_flags, .timeout = 60)
{
	static const struct {
		const char *args, *says;
	} cases[] = {
		{ "--probe-fsyncs 0", "--probe-fsyncs takes 1..100000, not 0" },
		{ "--probe-fsyncs x", "--probe-fsyncs takes 1..100000, not x" },
		{ "--probe-round-trips 100001",
		    "--probe-round-trips takes 1..100000, not 100001" },
		{ "--probe-round-trips", "--probe-round-trips needs a value" },
		{ "--probe-only --no-probe", "--probe-only and --no-probe" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		int   st  = weft_h_run_fmt(&out, "%s --probe-only %s 2>&1",
		       bench_bin, cases[i].args);
		cr_assert_eq(st, 2, "%s: exit %d", cases[i].args, st);
		cr_assert_not_null(strstr(out, cases[i].says), "%s: %s",
		    cases[i].args, out);
		free(out);
	}
}

// ---- bench/compare.sh failing clearly ----

// compare_run runs compare.sh with env and args; its stderr in *out.
static int
compare_run(const char *env, const char *args, char **out)
{
	return (weft_h_run_fmt(out, "%s WEFT_BUILD=%s %s/bench/compare.sh %s 2>&1",
	    env, WEFT_BIN_DIR, WEFT_SRC_DIR, args));
}

Test(bench, compare_without_dask, .timeout = 120)
{
	char *out = NULL;
	int   st  = compare_run("WEFT_COMPARE_PYTHON=/nonexistent/python3",
	       "--no-install --repeat 1", &out);

	cr_assert_eq(st, 3, "exit %d: %s", st, out);
	cr_assert_not_null(strstr(out, "compare.sh: Dask is not available: "
	                               "/nonexistent/python3 cannot import "
	                               "distributed"),
	    "%s", out);
	free(out);
}

// A Python that imports distributed but whose scheduler dies at once: the
// script says so, exits 3, and leaves no process behind (the workers are
// never started; the test's group keeper would kill strays anyway).
Test(bench, compare_scheduler_dies, .timeout = 120)
{
	char *dir = weft_h_tempdir("fakepy");
	char  path[600], env[700], *out = NULL;
	FILE *f;
	int   st;

	snprintf(path, sizeof(path), "%s/python3", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "#!/bin/sh\n"
	           "case \"$*\" in\n"
	           "*dask_scheduler*) echo 'fake: address already in use' >&2;"
	           " exit 1 ;;\n"
	           "*__version__*) echo 0.0-fake ;;\n"
	           "esac\n"
	           "exit 0\n");
	fclose(f);
	chmod(path, 0755);
	snprintf(env, sizeof(env), "WEFT_COMPARE_PYTHON=%s", path);
	st = compare_run(env, "--no-install --repeat 1", &out);
	cr_assert_eq(st, 3, "exit %d: %s", st, out);
	cr_assert_not_null(strstr(out, "compare.sh: the Dask scheduler did not "
	                               "start: fake: address already in use"),
	    "%s", out);
	unlink(path);
	rmdir(dir);
	free(dir);
	free(out);
}

Test(bench, compare_malformed_flags, .timeout = 60)
{
	static const struct {
		const char *args, *says;
	} cases[] = {
		{ "--repeat 0", "--repeat takes 1..50, not '0'" },
		{ "--repeat", "--repeat takes 1..50, not ''" },
		{ "--workload W4", "--workload takes W1, W2, W3" },
		{ "--api map", "--api takes get or submit, not 'map'" },
		{ "--json", "--json needs a file name" },
		{ "--bogus", "unknown argument '--bogus'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		int   st  = compare_run("", cases[i].args, &out);
		cr_assert_eq(st, 2, "%s: exit %d: %s", cases[i].args, st, out);
		cr_assert_not_null(strstr(out, cases[i].says), "%s: %s",
		    cases[i].args, out);
		free(out);
	}
}

// ---- bench/compare_report.py: medians, ratios, targets ----

// report_weft writes a weft-bench --json document of one repetition with
// the given W1, W2, W3 walls and probe to path.
static void
report_weft(const char *path, double w1, double w2, double w3, double fs,
    double rtt)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fprintf(f,
	    "{\"bench\":\"weft\",\"ok\":true,\"probe\":{\"fsyncs\":200,"
	    "\"fsync_p50_us\":%g,\"fsync_p99_us\":%g,\"round_trips\":2000,"
	    "\"rtt_p50_us\":%g,\"rtt_p99_us\":%g,\"limit_step_us\":%g},"
	    "\"workloads\":["
	    "{\"name\":\"W1\",\"median\":{\"wall_ms\":%g,\"coord_cpu_ms\":1000.2,"
	    "\"engine_busy_ms\":null}},"
	    "{\"name\":\"W2\",\"median\":{\"wall_ms\":%g}},"
	    "{\"name\":\"W3\",\"median\":{\"wall_ms\":%g}},"
	    "{\"name\":\"W3S\",\"median\":{\"wall_ms\":%g}}]}\n",
	    fs, fs, rtt, rtt, fs + 2 * rtt, w1, w2, w3, 4 * w3);
	fclose(f);
}

// Three repetitions: medians are taken per system, the ratio is Dask's
// median over weft's, each target judged, W2's step set against the
// probe's floor, and the JSON carries the same.
Test(bench, compare_report, .timeout = 60)
{
	char  *dir = weft_h_tempdir("report");
	char   a[600], b[600], c[600], d[600], j[600], *out = NULL;
	FILE  *f;
	int    st;
	json_t *doc, *row;

	snprintf(a, sizeof(a), "%s/weft-r1.json", dir);
	snprintf(b, sizeof(b), "%s/weft-r2.json", dir);
	snprintf(c, sizeof(c), "%s/weft-r3.json", dir);
	snprintf(d, sizeof(d), "%s/dask.jsonl", dir);
	snprintf(j, sizeof(j), "%s/out.json", dir);
	report_weft(a, 110, 1500, 300, 900, 200);
	report_weft(b, 100, 1300, 250, 800, 100);
	report_weft(c, 90, 1400, 200, 1000, 150);
	f = fopen(d, "w");
	cr_assert_not_null(f);
	for (int r = 0; r < 3; r++) {
		static const double dw[3][3] = { { 2600, 7000, 2000 },
			{ 2400, 6500, 2100 }, { 2500, 9000, 1900 } };
		for (int w = 0; w < 3; w++) {
			fprintf(f, "{\"system\":\"dask\",\"workload\":\"W%d\","
			           "\"rep\":%d,\"wall_ms\":%g}\n",
			    w + 1, r + 1, dw[r][w]);
		}
	}
	fclose(f);
	st = weft_h_run_fmt(&out,
	    "python3 %s/bench/compare_report.py --weft %s %s %s --dask %s "
	    "--json %s 2>&1",
	    WEFT_SRC_DIR, a, b, c, d, j);
	cr_assert_eq(st, 0, "exit %d: %s", st, out);
	// W1: weft 100, Dask 2500: 25x, target 20x met. W2: 1400 and 7000:
	// 5.0x, met (>=). W3: 250 and 2000: 8.0x, under 10x.
	cr_assert_not_null(strstr(out, "| W1 root + 10,000 noop + join | "
	                               "100 (90-110) | 2500 (2400-2600) | "
	                               "25.0x | >= 20x | met |"),
	    "%s", out);
	cr_assert_not_null(strstr(out, "| 5.0x | >= 5x | met |"), "%s", out);
	cr_assert_not_null(strstr(out, "| 8.0x | >= 10x | not met |"), "%s",
	    out);
	// W3S (one request per run) against Dask's W3: 1000 and 2000, no
	// target of its own.
	cr_assert_not_null(strstr(out, "| W3S W3, one request per run (Dask: "
	                               "W3) | 1000 (800-1200) | 2000 "
	                               "(1900-2100) | 2.0x | - | - |"),
	    "%s", out);
	// Probe medians: fsync 900, rtt 150: floor 1.2 ms; W2 1.4 ms/step.
	cr_assert_not_null(strstr(out, "W2 per step: 1.400 ms; fsync p50 + 2 x "
	                               "rtt p50 = 1.200 ms; ratio 1.17 "
	                               "(target <= 1.5: met)"),
	    "%s", out);
	// W1's CPU per step: 1000.2 ms over 10,002 steps.
	cr_assert_not_null(strstr(out, "| W1 | 100 | - | 1000 | 100 |"), "%s",
	    out);
	free(out);
	doc = json_load_file(j, 0, NULL);
	cr_assert_not_null(doc);
	row = json_array_get(json_object_get(doc, "rows"), 2);
	cr_assert_float_eq(num(row, "ratio"), 8.0, 1e-9);
	cr_assert(json_is_false(json_object_get(row, "met")));
	cr_assert_float_eq(num(json_object_get(doc, "w2_floor"), "ratio"),
	    1.4 / 1.2, 1e-9);
	json_decref(doc);
	weft_h_run_fmt(NULL, "rm -rf %s", dir);
	free(dir);
}

// A weft-bench document that reports a failure is not averaged in.
Test(bench, compare_report_refuses_failed_run, .timeout = 60)
{
	char *dir = weft_h_tempdir("report");
	char  a[600], d[600], *out = NULL;
	FILE *f;
	int   st;

	snprintf(a, sizeof(a), "%s/weft-r1.json", dir);
	snprintf(d, sizeof(d), "%s/dask.jsonl", dir);
	f = fopen(a, "w");
	cr_assert_not_null(f);
	fprintf(f, "{\"ok\":false,\"error\":\"3 runs did not succeed\"}\n");
	fclose(f);
	f = fopen(d, "w");
	cr_assert_not_null(f);
	fprintf(f, "not json\n");
	fclose(f);
	st = weft_h_run_fmt(&out,
	    "python3 %s/bench/compare_report.py --weft %s --dask %s 2>&1",
	    WEFT_SRC_DIR, a, d);
	cr_assert_eq(st, 1, "exit %d: %s", st, out);
	cr_assert_not_null(strstr(out, "weft-r1.json: weft-bench reported a "
	                               "failure: 3 runs did not succeed"),
	    "%s", out);
	free(out);
	weft_h_run_fmt(NULL, "rm -rf %s", dir);
	free(dir);
}

// ---- bench/wakeups.py and wakeups.sh: a step's time between threads ----

// timehist_wake writes one `perf sched timehist -w` wake-up line: at t
// seconds, thread tid of process pid (named comm) wakes wtid of wpid.
static void
timehist_wake(FILE *f, double t, const char *comm, int tid, int pid,
    const char *wcomm, int wtid, int wpid)
{
	fprintf(f,
	    "%15.6f [0001]  %s[%d/%d]                                awakened: "
	    "%s[%d/%d]\n",
	    t, comm, tid, pid, wcomm, wtid, wpid);
}

// wakeups_open makes a temp dir (*dir) and opens file name in it for
// writing; its path in path.
static FILE *
wakeups_open(char **dir, char *path, size_t len, const char *name)
{
	FILE *f;

	*dir = weft_h_tempdir("wakeups");
	snprintf(path, len, "%s/%s", *dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	return (f);
}

// wakeups_close removes dir (wakeups_open's) and frees its path.
static void
wakeups_close(char *dir)
{
	weft_h_run_fmt(NULL, "rm -rf %s", dir);
	free(dir);
}

// wakeups_py runs bench/wakeups.py with args; its output in *out.
static int
wakeups_py(char **out, const char *args)
{
	return (weft_h_run_fmt(out, "python3 %s/bench/wakeups.py %s 2>&1",
	    WEFT_SRC_DIR, args));
}

// Ten steps a millisecond apart, each: the engine (process 10) writes an
// assignment (it wakes worker 20's poll thread), 200 us later a worker
// thread wakes a slot, at 300 us the worker's reply wakes the engine and
// at 500 us its result does. The segments are 200, 300 and 500 us; four
// wake-ups per step; other processes' lines and other lines are ignored.
// A second cluster (coordinator 30, worker 40) runs at the same time:
// without --tree the file has two coordinators; with it, the tree of
// process 5 (the bench: 10 and 20 and their threads) is what counts.
Test(bench, wakeups_report, .timeout = 60)
{
	char *dir, th[600], forks[600], args[1400], *out = NULL;
	FILE *f = wakeups_open(&dir, th, sizeof(th), "timehist.txt");
	int   st;

	fprintf(f, "           time    cpu  task name   wait time  sch delay "
	           "run time\n");
	for (int k = 0; k < 10; k++) {
		double t0 = 1000.0 + k * 0.001;
		timehist_wake(f, t0, "engine", 11, 10, "nng:poll:epoll", 21,
		    20);
		timehist_wake(f, t0 + 0.00005, "engine", 31, 30,
		    "nng:poll:epoll", 41, 40);
		timehist_wake(f, t0 + 0.0001, "kworker/1:1H", 60, 60, "sshd", 61,
		    61);
		timehist_wake(f, t0 + 0.00015, "nng:task", 42, 40, "weft-slot",
		    43, 40);
		timehist_wake(f, t0 + 0.0002, "nng:task", 22, 20, "weft-slot",
		    23, 20);
		fprintf(f, "%15.6f [0000]  weft-slot[23/20]   0.100  0.002  "
		           "0.010\n", t0 + 0.00021);
		timehist_wake(f, t0 + 0.0003, "nng:task", 12, 10, "engine", 11,
		    10);
		timehist_wake(f, t0 + 0.0004, "nng:task", 32, 30, "engine", 31,
		    30);
		timehist_wake(f, t0 + 0.0005, "nng:task", 12, 10, "engine", 11,
		    10);
	}
	fclose(f);
	snprintf(forks, sizeof(forks), "%s/forks.txt", dir);
	f = fopen(forks, "w");
	cr_assert_not_null(f);
	fprintf(f, "5 10\n5 20\n10 11\n10 12\n20 21\n20 22\n20 23\n"
	           "7 30\n7 40\n");
	fclose(f);
	snprintf(args, sizeof(args), "%s 10", th);
	st = wakeups_py(&out, args);
	cr_assert_eq(st, 1, "exit %d: %s", st, out);
	cr_assert_not_null(strstr(out, "found 2"), "%s", out);
	free(out);
	snprintf(args, sizeof(args), "%s 10 --tree %s 5", th, forks);
	st = wakeups_py(&out, args);
	cr_assert_eq(st, 0, "exit %d: %s", st, out);
	static const char *const says[] = {
		"wake-ups per step (10 steps; 4.0 in all):",
		"   2.00  coordinator nng:task        -> coordinator engine",
		("   1.00  coordinator engine          -> worker      "
		 "nng:poll:epoll"),
		"  assign -> slot       200  (200-200, 10 steps)",
		// The last step has no next assignment: nine.
		"  slot -> engine       300  (300-300, 9 steps)",
		"  engine -> assign     500  (500-500, 9 steps)",
	};
	for (size_t i = 0; i < sizeof(says) / sizeof(says[0]); i++) {
		cr_assert_not_null(strstr(out, says[i]), "%s: %s", says[i], out);
	}
	free(out);
	wakeups_close(dir);
}

// A file with no coordinator in it, a missing file and bad arguments: a
// clear error naming what, and a failing exit status.
Test(bench, wakeups_malformed, .timeout = 60)
{
	char *dir, th[600], args[700], *out = NULL;
	FILE *f = wakeups_open(&dir, th, sizeof(th), "garbage.txt");
	int   st;

	fprintf(f, "\x01\x02 not perf output\n   12.0 [0001] x[1/1] awakened: "
	           "y[2/2]\n");
	fclose(f);
	// args: %s is the file (the garbage, or one not there).
	static const struct {
		const char *file, *args, *says;
	} cases[] = {
		{ "garbage.txt", "%s 1000",
		    "garbage.txt: want one coordinator (threads named "
		    "\"engine\"), found 0" },
		{ "none", "%s 10", "wakeups.py: cannot read " },
		{ "garbage.txt", "%s ten",
		    "Usage: wakeups.py TIMEHIST_FILE STEPS" },
		// The forks file: here the garbage itself, not "parent child".
		{ "garbage.txt", "%1$s 10 --tree %1$s 5",
		    "garbage.txt:1: want \"parent child\" ids" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char file[700];
		snprintf(file, sizeof(file), "%s/%s", dir, cases[i].file);
		snprintf(args, sizeof(args), cases[i].args, file);
		st = wakeups_py(&out, args);
		cr_assert_eq(st, 1, "%s: exit %d: %s", args, st, out);
		cr_assert_not_null(strstr(out, cases[i].says), "%s: %s", args,
		    out);
		free(out);
	}
	st = weft_h_run_fmt(&out, "%s/bench/wakeups.sh --steps 5 2>&1",
	    WEFT_SRC_DIR);
	cr_assert_eq(st, 2, "exit %d: %s", st, out);
	cr_assert_not_null(strstr(out, "wakeups.sh: unknown argument "
	                               "'--steps'"),
	    "%s", out);
	free(out);
	wakeups_close(dir);
}

// The real thing once: W2 on a local cluster under perf sched, every
// segment measured. No figure is asserted: these machines are noisy.
Test(bench, wakeups_real_run, .timeout = 300)
{
	char *out = NULL;
	int   st  = weft_h_run_fmt(&out, "WEFT_BUILD=%s %s/bench/wakeups.sh 2>&1",
	       WEFT_BIN_DIR, WEFT_SRC_DIR);

	cr_assert_eq(st, 0, "exit %d: %s", st, out);
	cr_assert_not_null(strstr(out, "W2 wall "), "%s", out);
	cr_assert_not_null(strstr(out, "coordinator engine          -> "
	                               "worker      nng:poll:epoll"),
	    "%s", out);
	for (int i = 0; i < 3; i++) {
		static const char *seg[] = { "  assign -> slot    ",
			"  slot -> engine    ", "  engine -> assign  " };
		const char *p = strstr(out, seg[i]);
		cr_assert_not_null(p, "%s: %s", seg[i], out);
		cr_assert_null(strstr(p, "too few"), "%s", out);
	}
	free(out);
}
