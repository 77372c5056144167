// main: weft-bench: parses the command line, starts a local cluster, runs
// the selected workloads --repeat times, and prints a table per workload
// (median and min/max of each figure) or one JSON document (--json).
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "bench.h"
#include "clock.h"
#include "harness.h"

volatile sig_atomic_t bench_stopping;

#define MAIN_CONTROL_TIMEOUT_MS 30000 // any one control request

// ---- the figures of a sample, for aggregation and output ----

// MAIN_SIGNED: a double that may be negative; NAN when unknown (MAIN_DBL
// takes any negative value for unknown).
enum main_kind { MAIN_DBL, MAIN_U64, MAIN_SIZE, MAIN_SIGNED };

static const struct main_field {
	const char    *key;  // JSON key
	const char    *head; // table header; NULL: JSON only
	const char    *fmt;  // table format of the value
	size_t         off;
	enum main_kind kind;
} main_fields[] = {
	{ "wall_ms", "wall ms", "%.1f", offsetof(bench_sample, wall_ms),
	    MAIN_DBL },
	{ "steps_per_s", "steps/s", "%.0f",
	    offsetof(bench_sample, steps_per_s), MAIN_DBL },
	{ "store_ms", "store ms", "%.0f", offsetof(bench_sample, store_ms),
	    MAIN_DBL },
	{ "run_ms_p50", "run p50", "%.0f", offsetof(bench_sample, run_ms_p50),
	    MAIN_DBL },
	{ "run_ms_max", NULL, "%.0f", offsetof(bench_sample, run_ms_max),
	    MAIN_DBL },
	{ "submit_ms", "submit ms", "%.1f", offsetof(bench_sample, submit_ms),
	    MAIN_DBL },
	{ "events", "events", "%.0f", offsetof(bench_sample, events),
	    MAIN_U64 },
	{ "events_per_s", "events/s", "%.0f",
	    offsetof(bench_sample, events_per_s), MAIN_DBL },
	{ "commits", "commits", "%.0f", offsetof(bench_sample, commits),
	    MAIN_U64 },
	{ "batch_mean", "batch", "%.1f", offsetof(bench_sample, batch_mean),
	    MAIN_DBL },
	{ "commit_ms_avg", "c.avg ms", "%.2f",
	    offsetof(bench_sample, commit_ms_avg), MAIN_DBL },
	{ "commit_p50_ms", "c.p50", "%.2f",
	    offsetof(bench_sample, commit_p50_ms), MAIN_DBL },
	{ "commit_p99_ms", "c.p99", "%.2f",
	    offsetof(bench_sample, commit_p99_ms), MAIN_DBL },
	{ "engine_busy_ms", "eng busy ms", "%.0f",
	    offsetof(bench_sample, engine_busy_ms), MAIN_DBL },
	{ "commit_busy_ms", "commit busy ms", "%.0f",
	    offsetof(bench_sample, commit_busy_ms), MAIN_DBL },
	{ "overlap_ms", "overlap ms", "%.0f", offsetof(bench_sample, overlap_ms),
	    MAIN_SIGNED },
	{ "commit_max_ms", NULL, "%.2f", offsetof(bench_sample, commit_max_ms),
	    MAIN_DBL },
	{ "fsync_p50_ms", NULL, "%.2f", offsetof(bench_sample, fsync_p50_ms),
	    MAIN_DBL },
	{ "fsync_p99_ms", NULL, "%.2f", offsetof(bench_sample, fsync_p99_ms),
	    MAIN_DBL },
	{ "coord_cpu_ms", "coord cpu", "%.0f",
	    offsetof(bench_sample, coord_cpu_ms), MAIN_DBL },
	{ "workers_cpu_ms", "wrk cpu", "%.0f",
	    offsetof(bench_sample, workers_cpu_ms), MAIN_DBL },
	{ "bench_cpu_ms", "bench cpu", "%.0f",
	    offsetof(bench_sample, bench_cpu_ms), MAIN_DBL },
	{ "load1", NULL, "%.2f", offsetof(bench_sample, load1), MAIN_DBL },
	{ "stream_events", NULL, "%.0f",
	    offsetof(bench_sample, stream_events), MAIN_U64 },
	{ "failed_runs", NULL, "%.0f", offsetof(bench_sample, failed),
	    MAIN_SIZE },
	{ "polled_runs", NULL, "%.0f", offsetof(bench_sample, polled),
	    MAIN_SIZE },
	{ "peak_mb", "peak MB", "%.0f", offsetof(bench_sample, peak_mb),
	    MAIN_DBL },
	// W5 only ("-" elsewhere).
	{ "run_kib", "KiB/run", "%.2f", offsetof(bench_sample, run_kib),
	    MAIN_DBL },
	{ "recover_ms", "recover ms", "%.0f",
	    offsetof(bench_sample, recover_ms), MAIN_DBL },
	{ "recover_peak_mb", "rec.peak", "%.0f",
	    offsetof(bench_sample, recover_peak_mb), MAIN_DBL },
	{ "steady_mb", "steady MB", "%.0f", offsetof(bench_sample, steady_mb),
	    MAIN_DBL },
	{ "drain_ms", "drain ms", "%.0f", offsetof(bench_sample, drain_ms),
	    MAIN_DBL },
};
#define MAIN_NFIELDS (sizeof(main_fields) / sizeof(main_fields[0]))

static double
main_get(const bench_sample *s, const struct main_field *f)
{
	const char *p = (const char *) s + f->off;

	switch (f->kind) {
	case MAIN_U64:
		return ((double) *(const uint64_t *) (const void *) p);
	case MAIN_SIZE:
		return ((double) *(const size_t *) (const void *) p);
	default:
		return (*(const double *) (const void *) p);
	}
}

// main_unknown tells whether v is the "not measured" value of f.
static bool
main_unknown(const struct main_field *f, double v)
{
	return (f->kind == MAIN_SIGNED ? isnan(v) : v < 0);
}

// main_summary computes median (lower middle for even n), min and max of
// one field over n samples. A NAN (unknown MAIN_SIGNED) makes all three
// unknown: NANs do not sort.
static void
main_summary(const bench_sample *s, size_t n, const struct main_field *f,
    double *med, double *min, double *max)
{
	double v[256];

	n = n > 256 ? 256 : n;
	for (size_t i = 0; i < n; i++) {
		v[i] = main_get(&s[i], f);
		if (isnan(v[i])) {
			*med = *min = *max = v[i];
			return;
		}
	}
	bench_sort(v, n);
	*med = v[(n - 1) / 2];
	*min = v[0];
	*max = v[n - 1];
}

// ---- output ----

// main_width is f's column width: its header's, at least 10.
static int
main_width(const struct main_field *f)
{
	size_t n = f->head != NULL ? strlen(f->head) : 0;
	return (n > 10 ? (int) n : 10);
}

static void
main_cell(const struct main_field *f, double v)
{
	char buf[32];

	if (main_unknown(f, v)) {
		snprintf(buf, sizeof(buf), "-");
	} else {
		snprintf(buf, sizeof(buf), f->fmt, v);
	}
	printf(" %*s", main_width(f), buf);
}

static void
main_print_table(enum bench_workload w, const bench_sample *s, size_t n)
{
	printf("\n%s  %s (%zu step%s, %zu run%s)\n", bench_workload_name(w),
	    bench_workload_about(w), bench_workload_steps(w),
	    bench_workload_steps(w) == 1 ? "" : "s", bench_workload_runs(w),
	    bench_workload_runs(w) == 1 ? "" : "s");
	printf("  %-6s", "rep");
	for (size_t k = 0; k < MAIN_NFIELDS; k++) {
		if (main_fields[k].head != NULL) {
			printf(" %*s", main_width(&main_fields[k]),
			    main_fields[k].head);
		}
	}
	printf("\n");
	for (size_t i = 0; i < n; i++) {
		printf("  %-6zu", i + 1);
		for (size_t k = 0; k < MAIN_NFIELDS; k++) {
			if (main_fields[k].head != NULL) {
				main_cell(&main_fields[k],
				    main_get(&s[i], &main_fields[k]));
			}
		}
		if (s[i].failed > 0 || s[i].polled > 0) {
			printf("  (%zu failed, %zu seen by polling)", s[i].failed,
			    s[i].polled);
		}
		printf("\n");
	}
	for (int which = 0; which < 3; which++) {
		static const char *label[] = { "median", "min", "max" };
		printf("  %-6s", label[which]);
		for (size_t k = 0; k < MAIN_NFIELDS; k++) {
			double v[3];
			if (main_fields[k].head == NULL) {
				continue;
			}
			main_summary(s, n, &main_fields[k], &v[0], &v[1], &v[2]);
			main_cell(&main_fields[k], v[which]);
		}
		printf("\n");
	}
	fflush(stdout);
}

static json_t *
main_sample_json(const bench_sample *s)
{
	json_t *o = json_object();

	for (size_t k = 0; k < MAIN_NFIELDS; k++) {
		const struct main_field *f = &main_fields[k];
		double                   v = main_get(s, f);
		json_object_set_new(o, f->key,
		    main_unknown(f, v) ? json_null()
		    : f->kind == MAIN_DBL || f->kind == MAIN_SIGNED
		        ? json_real(v)
		        : json_integer((json_int_t) v));
	}
	return (o);
}

static json_t *
main_workload_json(enum bench_workload w, const bench_sample *s, size_t n)
{
	json_t *samples = json_array();
	json_t *agg[3]  = { json_object(), json_object(), json_object() };

	for (size_t i = 0; i < n; i++) {
		json_array_append_new(samples, main_sample_json(&s[i]));
	}
	for (size_t k = 0; k < MAIN_NFIELDS && n > 0; k++) {
		double v[3];
		main_summary(s, n, &main_fields[k], &v[0], &v[1], &v[2]);
		for (int j = 0; j < 3; j++) {
			json_object_set_new(agg[j], main_fields[k].key,
			    main_unknown(&main_fields[k], v[j])
			        ? json_null()
			        : json_real(v[j]));
		}
	}
	return (json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o}", "name",
	    bench_workload_name(w), "about", bench_workload_about(w), "steps",
	    (json_int_t) bench_workload_steps(w), "runs",
	    (json_int_t) bench_workload_runs(w), "samples", samples, "median",
	    agg[0], "min", agg[1], "max", agg[2]));
}

// ---- the machine's limits beside W2 ----

#define MAIN_FLOOR_TARGET 1.5 // W2 per step <= 1.5 x (fsync + 2 round trips)

// main_floor computes W2's median time per step and its ratio to the
// probe's floor (one fsync + two loopback round trips); false when either
// is not known.
static bool
main_floor(enum bench_workload w, const bench_sample *s, size_t n,
    const bench_probe *p, double *step_ms, double *ratio)
{
	const struct main_field *wall = &main_fields[0]; // wall_ms
	double                   med, min, max;

	if (w != BENCH_W2 || p == NULL || p->limit_step_us <= 0 || n == 0) {
		return (false);
	}
	main_summary(s, n, wall, &med, &min, &max);
	*step_ms = med / (double) bench_workload_steps(w);
	*ratio   = *step_ms * 1000.0 / p->limit_step_us;
	return (true);
}

static void
main_print_floor(enum bench_workload w, const bench_sample *s, size_t n,
    const bench_probe *p)
{
	double step_ms, ratio;

	if (!main_floor(w, s, n, p, &step_ms, &ratio)) {
		return;
	}
	printf("  per step %.3f ms (median wall / %zu steps); floor: fsync p50 "
	       "%.3f + 2 x rtt p50 %.3f = %.3f ms;\n  ratio %.2f (target <= "
	       "%.1f: %s)\n",
	    step_ms, bench_workload_steps(w), p->fsync_p50_us / 1000.0,
	    p->rtt_p50_us / 1000.0, p->limit_step_us / 1000.0, ratio,
	    MAIN_FLOOR_TARGET, ratio <= MAIN_FLOOR_TARGET ? "met" : "not met");
	fflush(stdout);
}

// main_floor_json adds W2's per step time and floor ratio to its object.
static void
main_floor_json(json_t *o, enum bench_workload w, const bench_sample *s,
    size_t n, const bench_probe *p)
{
	double step_ms, ratio;

	if (main_floor(w, s, n, p, &step_ms, &ratio)) {
		json_object_set_new(o, "per_step_ms", json_real(step_ms));
		json_object_set_new(o, "floor_step_ms",
		    json_real(p->limit_step_us / 1000.0));
		json_object_set_new(o, "floor_ratio", json_real(ratio));
	}
}

// ---- command line ----

static void
main_usage(FILE *f)
{
	fprintf(f,
	    "usage: weft-bench [options]\n"
	    "Starts a coordinator and two workers on loopback (free ports, a\n"
	    "temp dir) and measures workloads W1-W3 (W4-W6 on request).\n"
	    "  --db URL          store for the coordinator (default: SQLite in the\n"
	    "                    temp dir; e.g. postgres://...)\n"
	    "  --slots N         worker --slots (default: the worker's)\n"
	    "  --queue N         worker --queue (default: the worker's)\n"
	    "  --repeat N        repetitions per workload (default 5)\n"
	    "  --workload W      W1, W2, W3, W3S, W4, W4E, W5, W6 or CP; repeat or\n"
	    "                    separate with commas (default: W1,W2,W3,W3S)\n"
	    "  --map-items N     items of W4/W4E's map (default 100000)\n"
	    "  --queued-runs N   runs W5 queues (default 100000)\n"
	    "  --submitters N    concurrent control connections submitting W3S's\n"
	    "                    runs (default 32)\n"
	    "  --timeout S       deadline of one repetition in seconds (default 300)\n"
	    "  --no-commit-hist  do not time commits with the preload shim\n"
	    "  --no-probe        do not measure the machine's limits first\n"
	    "  --probe-only      measure the machine's limits only (no cluster)\n"
	    "  --probe-fsyncs N  durable writes the probe times (default 200)\n"
	    "  --probe-round-trips N\n"
	    "                    req/rep round trips the probe times (default 2000)\n"
	    "  --order O         the coordinator's --order (fifo or critical-path;\n"
	    "                    CP's makespan: run it with --slots 1 and each)\n"
	    "  --keep            keep the temp dir (logs, database)\n"
	    "  --json            print one JSON document instead of tables\n"
	    "  --help            this text\n");
}

static bool
main_int(const char *s, int min, int max, int *out)
{
	char *end;
	long  v;

	errno = 0;
	v     = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		return (false);
	}
	*out = (int) v;
	return (true);
}

static bool
main_workloads(const char *s, unsigned *mask)
{
	char buf[64], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		bool found = false;
		for (int w = 0; w < BENCH_NWORKLOADS; w++) {
			if (strcasecmp(tok, bench_workload_name(w)) == 0) {
				*mask |= 1u << w;
				found = true;
			}
		}
		if (!found) {
			return (false);
		}
	}
	return (true);
}

static int
main_args(int argc, char **argv, bench_opts *o)
{
	int v;

	memset(o, 0, sizeof(*o));
	o->repeat      = 5;
	o->submitters  = 32;
	o->timeout_s   = 300;
	o->commit_hist = true;
	o->probe       = true;
	o->probe_fsyncs      = 200;
	o->probe_round_trips = 2000;
	for (int i = 1; i < argc; i++) {
		const char *a   = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		bool        takes = strcmp(a, "--db") == 0 ||
		    strcmp(a, "--slots") == 0 || strcmp(a, "--queue") == 0 ||
		    strcmp(a, "--repeat") == 0 || strcmp(a, "--workload") == 0 ||
		    strcmp(a, "--submitters") == 0 ||
		    strcmp(a, "--timeout") == 0 || strcmp(a, "--map-items") == 0 ||
		    strcmp(a, "--queued-runs") == 0 ||
		    strcmp(a, "--probe-fsyncs") == 0 ||
		    strcmp(a, "--probe-round-trips") == 0 ||
		    strcmp(a, "--order") == 0;

		if (takes && val == NULL) {
			fprintf(stderr, "weft-bench: %s needs a value\n", a);
			return (2);
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			main_usage(stdout);
			return (-1);
		} else if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--keep") == 0) {
			o->keep = true;
		} else if (strcmp(a, "--no-commit-hist") == 0) {
			o->commit_hist = false;
		} else if (strcmp(a, "--no-probe") == 0) {
			o->probe = false;
		} else if (strcmp(a, "--probe-only") == 0) {
			o->probe_only = true;
		} else if (strcmp(a, "--probe-fsyncs") == 0 ||
		    strcmp(a, "--probe-round-trips") == 0) {
			if (!main_int(val, 1, 100000, a[8] == 'f'
			            ? &o->probe_fsyncs
			            : &o->probe_round_trips)) {
				fprintf(stderr, "weft-bench: %s takes 1..100000, "
				    "not %s\n", a, val);
				return (2);
			}
		} else if (strcmp(a, "--db") == 0) {
			o->db = val;
		} else if (strcmp(a, "--order") == 0) {
			if (strcmp(val, "fifo") != 0 &&
			    strcmp(val, "critical-path") != 0) {
				fprintf(stderr, "weft-bench: --order takes fifo or "
				                "critical-path, not %s\n",
				    val);
				return (2);
			}
			o->order = val;
		} else if (strcmp(a, "--slots") == 0 ||
		    strcmp(a, "--queue") == 0) {
			if (!main_int(val, a[2] == 's' ? 1 : 0, 1000000, &v)) {
				fprintf(stderr, "weft-bench: bad %s %s\n", a, val);
				return (2);
			}
			*(a[2] == 's' ? &o->slots : &o->queue) = val;
		} else if (strcmp(a, "--repeat") == 0) {
			if (!main_int(val, 1, 256, &o->repeat)) {
				fprintf(stderr, "weft-bench: --repeat 1..256\n");
				return (2);
			}
		} else if (strcmp(a, "--submitters") == 0) {
			if (!main_int(val, 1, 64, &o->submitters)) {
				fprintf(stderr, "weft-bench: --submitters 1..64\n");
				return (2);
			}
		} else if (strcmp(a, "--timeout") == 0) {
			if (!main_int(val, 1, 86400, &o->timeout_s)) {
				fprintf(stderr, "weft-bench: bad --timeout\n");
				return (2);
			}
		} else if (strcmp(a, "--map-items") == 0 ||
		    strcmp(a, "--queued-runs") == 0) {
			if (!main_int(val, 1, 1000000, a[2] == 'm'
			            ? &o->map_items
			            : &o->queued_runs)) {
				fprintf(stderr, "weft-bench: %s 1..1000000\n", a);
				return (2);
			}
		} else if (strcmp(a, "--workload") == 0) {
			if (!main_workloads(val, &o->workloads)) {
				fprintf(stderr,
				    "weft-bench: --workload takes W1, W2, W3, W3S, W4, "
				    "W4E, W5, W6 or CP\n");
				return (2);
			}
		} else {
			fprintf(stderr, "weft-bench: unknown argument %s\n", a);
			main_usage(stderr);
			return (2);
		}
		i += takes;
	}
	if (o->probe_only && !o->probe) {
		fprintf(stderr, "weft-bench: --probe-only and --no-probe "
		                "contradict each other\n");
		return (2);
	}
	if (o->workloads == 0) {
		o->workloads = BENCH_DEFAULT_SET;
	}
	bench_workload_sizes(o);
	return (0);
}

static void
main_on_signal(int sig)
{
	(void) sig;
	bench_stopping = 1;
}

static void
main_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

// ---- main ----

// main_probe measures the machine's limits in a temp dir of its own (on
// the filesystem the SQLite store uses), before the cluster starts so
// nothing else of the bench competes with it.
static bool
main_probe(const bench_opts *o, bench_probe *p, char *err, size_t errlen)
{
	char *dir = weft_h_tempdir("probe");
	bool  ok;

	fprintf(stderr, "weft-bench: probing fsync and loopback round trips\n");
	ok = bench_probe_run(dir, o->probe_fsyncs, o->probe_round_trips, p, err,
	    errlen);
	rmdir(dir);
	free(dir);
	return (ok);
}

static bool
main_open_clients(bench_ctx *x, const bench_cluster *c, char *err,
    size_t errlen)
{
	x->subs = weft_xalloc((size_t) x->opts->submitters * sizeof(*x->subs));
	memset(x->subs, 0, (size_t) x->opts->submitters * sizeof(*x->subs));
	if (!bench_client_open(x->client, c->control, MAIN_CONTROL_TIMEOUT_MS,
	        err, errlen)) {
		return (false);
	}
	for (int i = 0; i < x->opts->submitters; i++) {
		if (!bench_client_open(&x->subs[i], c->control,
		        MAIN_CONTROL_TIMEOUT_MS, err, errlen)) {
			return (false);
		}
	}
	return (true);
}

static void
main_close_clients(bench_ctx *x)
{
	bench_client_close(x->client);
	for (int i = 0; x->subs != NULL && i < x->opts->submitters; i++) {
		bench_client_close(&x->subs[i]);
	}
	free(x->subs);
	x->subs = NULL;
}

int
main(int argc, char **argv)
{
	bench_opts    o;
	bench_cluster c;
	bench_client  client;
	bench_watch   watch;
	bench_ctx     x;
	bench_sample *samples = NULL;
	json_t       *out     = NULL;
	bench_probe   probe;
	bool          probed  = false;
	char          err[1024] = "";
	int           rv, status = 1;
	bool          watching = false;
	size_t        failed   = 0; // runs that did not succeed, all workloads
	bool          started  = false; // the cluster came up

	if ((rv = main_args(argc, argv, &o)) != 0) {
		return (rv < 0 ? 0 : rv);
	}
	main_signals();
	memset(&x, 0, sizeof(x));
	memset(&client, 0, sizeof(client));
	x.opts   = &o;
	x.client = &client;
	x.watch  = &watch;
	x.cluster = &c;
	snprintf(x.tag, sizeof(x.tag), "%lld%d",
	    (long long) (weft_clock_wall_ms() % 100000000), (int) getpid());
	samples = weft_xalloc((size_t) o.repeat * sizeof(*samples));
	memset(&c, 0, sizeof(c));

	if ((o.probe || o.probe_only) &&
	    !(probed = main_probe(&o, &probe, err, sizeof(err)))) {
		goto done;
	}
	if (o.probe_only) {
		status = 0;
		if (o.json) {
			out = json_pack("{s:s, s:o}", "bench", "weft", "probe",
			    bench_probe_json(&probe));
		} else {
			bench_probe_print(&probe);
		}
		goto done;
	}
	if (!bench_cluster_start(&c, &o)) {
		snprintf(err, sizeof(err), "could not start the cluster");
		goto done;
	}
	started = true;
	watching = true; // bench_watch_stop also undoes a failed start
	if (!bench_watch_start(&watch, c.events, err, sizeof(err)) ||
	    !main_open_clients(&x, &c, err, sizeof(err))) {
		goto done;
	}
	if (o.json) {
		out = json_pack("{s:s, s:{s:s, s:i, s:s?, s:s?, s:i, s:i, s:b}, "
		                "s:[]}",
		    "bench", "weft", "config", "db", c.db, "workers",
		    BENCH_NWORKERS, "slots", o.slots, "queue", o.queue, "repeat",
		    o.repeat, "submitters", o.submitters, "commit_hist",
		    o.commit_hist, "workloads");
		if (probed) {
			json_object_set_new(out, "probe", bench_probe_json(&probe));
		}
	} else {
		printf("weft-bench: store %s, %d workers (slots %s, queue %s), "
		       "repeat %d\n",
		    c.db, BENCH_NWORKERS, o.slots ? o.slots : "default",
		    o.queue ? o.queue : "default", o.repeat);
		printf("wall = first submit to last run end seen on the event "
		       "stream; store = created_ms to ended_ms;\nevents, commits, "
		       "c.avg: deltas of the coordinator's store stats; c.p50/"
		       "c.p99: commit shim (BEGIN..COMMIT);\neng busy, commit busy: "
		       "the coordinator's engine and store thread busy time; "
		       "overlap = eng busy + commit busy - wall\n");
		if (probed) {
			bench_probe_print(&probe);
		}
		fflush(stdout);
	}
	for (int w = 0; w < BENCH_NWORKLOADS; w++) {
		if ((o.workloads & (1u << w)) == 0) {
			continue;
		}
		for (int r = 0; r < o.repeat; r++) {
			fprintf(stderr, "weft-bench: %s repetition %d/%d\n",
			    bench_workload_name(w), r + 1, o.repeat);
			if (!bench_workload_run(&x, w, r + 1, &samples[r], err,
			        sizeof(err))) {
				goto done;
			}
			failed += samples[r].failed;
		}
		if (o.json) {
			json_t *wj = main_workload_json(w, samples,
			    (size_t) o.repeat);
			main_floor_json(wj, w, samples, (size_t) o.repeat,
			    probed ? &probe : NULL);
			json_array_append_new(json_object_get(out, "workloads"),
			    wj);
		} else {
			main_print_table(w, samples, (size_t) o.repeat);
			main_print_floor(w, samples, (size_t) o.repeat,
			    probed ? &probe : NULL);
		}
	}
	status = 0;
	if (failed > 0) {
		snprintf(err, sizeof(err), "%zu runs did not succeed", failed);
		status = 1;
	}

done:
	if (status != 0 && err[0] != '\0') {
		fprintf(stderr, "weft-bench: %s\n", err);
		if (started) {
			bench_cluster_dump_logs(&c);
		}
	}
	// With --json the document comes out whatever happened: a failure
	// before the first workload (the probe, the cluster) is still one
	// object with ok false and the error.
	if (o.json && out == NULL) {
		out = json_pack("{s:s}", "bench", "weft");
	}
	if (out != NULL) {
		json_object_set_new(out, "ok", json_boolean(status == 0));
		if (status != 0 && err[0] != '\0') {
			json_object_set_new(out, "error", json_string(err));
		}
		json_dumpf(out, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(out);
	}
	main_close_clients(&x);
	if (watching) {
		bench_watch_stop(&watch);
	}
	bench_cluster_stop(&c, o.keep);
	free(samples);
	nng_fini();
	return (status);
}
