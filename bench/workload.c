// workload: the three workloads of weft-bench: their definitions, how their
// runs are submitted, and what one repetition measures: wall time seen by
// the bench, run durations as the store records them, the coordinator's
// store statistics as deltas, and commit latencies from the commit shim.
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "bench.h"
#include "clock.h"
#include "commit_log.h"

#define W1_FAN 10000 // noop steps between W1's root and join
#define W2_LEN 1000  // noop steps in W2's chain
#define W3_RUNS 1000 // diamond runs in W3

// W6: a layered DAG, each step on its neighbour in the layer before:
// 100,000 steps, ~5 MB of definition JSON (the limit is 8 MiB).
#define W6_LAYERS 100
#define W6_WIDTH 1000
#define W4E_PAD 1000 // bytes of padding each W4E item echoes back

#define RUN_ID_LEN 64

// CP: the long chain beside the short steps (issue 14 item 9). The short
// ones come first in the definition: in FIFO order they go first.
#define CP_CHAIN 10
#define CP_CHAIN_MS 200
#define CP_SHORT 40
#define CP_SHORT_MS 50

// ---- descriptions ----

const char *
bench_workload_name(enum bench_workload w)
{
	static const char *names[] = { "W1", "W2", "W3", "W4", "W4E", "W5",
		"W6", "W3S", "CP" };
	return (w < BENCH_NWORKLOADS ? names[w] : "?");
}

const char *
bench_workload_about(enum bench_workload w)
{
	switch (w) {
	case BENCH_W1:
		return ("one run: root, 10,000 noop steps on it, a join on all");
	case BENCH_W2:
		return ("one run: a chain of 1,000 noop steps");
	case BENCH_W3:
		return ("1,000 runs of a 4-step noop diamond, submitted at once "
		        "in one batch request");
	case BENCH_W3S:
		return ("W3, one RunRequest per run over --submitters sockets");
	case BENCH_W4:
		return ("one run: an echo making a list, a map of noop items "
		        "over it, a noop after");
	case BENCH_W4E:
		return ("W4 with echo items, each returning ~1 KiB");
	case BENCH_W5:
		return ("one-step runs queued with the workers stopped; the "
		        "coordinator killed -9 and restarted; then drained");
	case BENCH_W6:
		return ("one run: a layered DAG, 100 layers of 1,000 noop steps");
	case BENCH_CP:
		return ("one run: a chain of 10 x 200 ms sleeps beside 40 x 50 ms "
		        "sleeps (listed first), after a warm-up run");
	default:
		return ("?");
	}
}

// The scale workloads' sizes come from the options; set once by main.
static int wl_map_items   = 100000;
static int wl_queued_runs = 100000;

void
bench_workload_sizes(const bench_opts *o)
{
	wl_map_items   = o->map_items > 0 ? o->map_items : wl_map_items;
	wl_queued_runs = o->queued_runs > 0 ? o->queued_runs : wl_queued_runs;
}

size_t
bench_workload_runs(enum bench_workload w)
{
	return (w == BENCH_W3 || w == BENCH_W3S
	        ? W3_RUNS
	        : w == BENCH_W5 ? (size_t) wl_queued_runs : 1);
}

size_t
bench_workload_steps(enum bench_workload w)
{
	switch (w) {
	case BENCH_W1:
		return (W1_FAN + 2);
	case BENCH_W2:
		return (W2_LEN);
	case BENCH_W3:
	case BENCH_W3S:
		return (4u * W3_RUNS);
	case BENCH_W4:
	case BENCH_W4E:
		return ((size_t) wl_map_items + 3); // gen, m, its items, after
	case BENCH_W5:
		return ((size_t) wl_queued_runs);
	case BENCH_W6:
		return ((size_t) W6_LAYERS * W6_WIDTH);
	case BENCH_CP:
		return (CP_SHORT + CP_CHAIN);
	default:
		return (0);
	}
}

// ---- definitions ----

typedef struct wl_buf {
	char  *s;
	size_t len, cap;
} wl_buf;

static void
wl_add(wl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
wl_add(wl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int     n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t) n < b->cap - b->len) {
			b->len += (size_t) n;
			return;
		}
		b->cap = b->cap * 2 + (size_t) n + 64;
		b->s   = weft_xrealloc(b->s, b->cap);
	}
}

// wl_b62 is the base-62 digit of k's last place.
static char
wl_b62(int k)
{
	return ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    [k % 62]);
}

// wl_definition returns the definition text of w under name (malloc'd).
static char *
wl_definition(enum bench_workload w, const char *name)
{
	wl_buf b = { weft_xalloc(4096), 0, 4096 };

	wl_add(&b, "{\"name\":\"%s\",\"steps\":[", name);
	switch (w) {
	case BENCH_W1:
		wl_add(&b, "{\"id\":\"root\",\"type\":\"noop\"}");
		for (int i = 0; i < W1_FAN; i++) {
			wl_add(&b, ",{\"id\":\"s%d\",\"type\":\"noop\","
			           "\"depends_on\":[\"root\"]}", i);
		}
		wl_add(&b, ",{\"id\":\"join\",\"type\":\"noop\",\"depends_on\":[");
		for (int i = 0; i < W1_FAN; i++) {
			wl_add(&b, "%s\"s%d\"", i ? "," : "", i);
		}
		wl_add(&b, "]}");
		break;
	case BENCH_W2:
		wl_add(&b, "{\"id\":\"c0\",\"type\":\"noop\"}");
		for (int i = 1; i < W2_LEN; i++) {
			wl_add(&b, ",{\"id\":\"c%d\",\"type\":\"noop\","
			           "\"depends_on\":[\"c%d\"]}", i, i - 1);
		}
		break;
	case BENCH_W4:
	case BENCH_W4E:
		// The list is in gen's "with" (echo returns it): what is
		// measured is the map, not a generator.
		wl_add(&b, "{\"id\":\"gen\",\"type\":\"echo\",\"with\":{\"l\":[");
		for (int i = 0; i < wl_map_items; i++) {
			wl_add(&b, "%s%d", i ? "," : "", i);
		}
		wl_add(&b, "]}},{\"id\":\"m\",\"type\":\"%s\",\"depends_on\":"
		           "[\"gen\"],\"map\":\"steps.gen.output.with.l\"",
		    w == BENCH_W4 ? "noop" : "echo");
		if (w == BENCH_W4E) {
			wl_add(&b, ",\"with\":{\"i\":\"${index}\",\"pad\":\"");
			for (int i = 0; i < W4E_PAD; i++) {
				wl_add(&b, "x");
			}
			wl_add(&b, "\"}");
		}
		wl_add(&b, "},{\"id\":\"after\",\"type\":\"noop\","
		           "\"depends_on\":[\"m\"]}");
		break;
	case BENCH_W6:
		// Ids in base 62, three characters: the definition stays
		// under its 4 MiB limit.
		for (int l = 0; l < W6_LAYERS; l++) {
			for (int i = 0; i < W6_WIDTH; i++) {
				int k = l * W6_WIDTH + i;
				wl_add(&b, "%s{\"id\":\"%c%c%c\",\"type\":\"noop\"",
				    k ? "," : "", wl_b62(k / 3844), wl_b62(k / 62),
				    wl_b62(k));
				if (l > 0) {
					int d = k - W6_WIDTH;
					wl_add(&b, ",\"depends_on\":[\"%c%c%c\"]",
					    wl_b62(d / 3844), wl_b62(d / 62),
					    wl_b62(d));
				}
				wl_add(&b, "}");
			}
		}
		break;
	case BENCH_W5:
		wl_add(&b, "{\"id\":\"a\",\"type\":\"noop\"}");
		break;
	case BENCH_CP:
		for (int i = 0; i < CP_SHORT; i++) {
			wl_add(&b, "%s{\"id\":\"s%d\",\"type\":\"sleep\","
			           "\"with\":{\"ms\":%d}}",
			    i ? "," : "", i, CP_SHORT_MS);
		}
		for (int i = 0; i < CP_CHAIN; i++) {
			wl_add(&b, ",{\"id\":\"c%d\",\"type\":\"sleep\","
			           "\"with\":{\"ms\":%d}", i, CP_CHAIN_MS);
			if (i > 0) {
				wl_add(&b, ",\"depends_on\":[\"c%d\"]", i - 1);
			}
			wl_add(&b, "}");
		}
		break;
	default:
		wl_add(&b,
		    "{\"id\":\"a\",\"type\":\"noop\"},"
		    "{\"id\":\"b\",\"type\":\"noop\",\"depends_on\":[\"a\"]},"
		    "{\"id\":\"c\",\"type\":\"noop\",\"depends_on\":[\"a\"]},"
		    "{\"id\":\"d\",\"type\":\"noop\",\"depends_on\":[\"b\",\"c\"]}");
		break;
	}
	wl_add(&b, "]}");
	return (b.s);
}

// ---- submitting ----

// One connection's share of the runs: indices from, from + stride, ...
typedef struct wl_submitter {
	bench_client *client;
	const char   *name;
	char        (*ids)[RUN_ID_LEN];
	size_t        from, stride, n;
	int64_t       done_us; // when its last reply came (monotonic)
	bool          ok;
	char          err[256];
	pthread_t     thread;
	bool          threaded; // thread was created (else ran inline)
} wl_submitter;

static void *
wl_submit_main(void *arg)
{
	wl_submitter *t = arg;

	t->ok = true;
	for (size_t i = t->from; i < t->n; i += t->stride) {
		if (bench_stopping ||
		    !bench_client_run(t->client, t->name, t->ids[i], RUN_ID_LEN,
		        t->err, sizeof(t->err))) {
			t->ok = false;
			break;
		}
	}
	t->done_us = weft_clock_mono_us();
	return (NULL);
}

// wl_submit starts n runs of name over k connections at once and returns
// when every run has been accepted. *done_us: when the last reply came.
static bool
wl_submit(bench_ctx *x, const char *name, char (*ids)[RUN_ID_LEN], size_t n,
    int64_t *done_us, char *err, size_t errlen)
{
	size_t        k = n == 1 ? 1 : (size_t) x->opts->submitters;
	wl_submitter *t = weft_xalloc(k * sizeof(*t));
	bool          ok = true;

	memset(t, 0, k * sizeof(*t));
	*done_us = 0;
	for (size_t i = 0; i < k; i++) {
		t[i].client = n == 1 ? x->client : &x->subs[i];
		t[i].name   = name;
		t[i].ids    = ids;
		t[i].from   = i;
		t[i].stride = k;
		t[i].n      = n;
	}
	if (k == 1) {
		wl_submit_main(&t[0]);
	} else {
		for (size_t i = 0; i < k; i++) {
			t[i].threaded = pthread_create(&t[i].thread, NULL,
			                    wl_submit_main, &t[i]) == 0;
		}
		for (size_t i = 0; i < k; i++) {
			if (t[i].threaded) {
				pthread_join(t[i].thread, NULL);
			} else {
				wl_submit_main(&t[i]); // no thread: its share now
			}
		}
	}
	for (size_t i = 0; i < k; i++) {
		if (!t[i].ok && ok) {
			snprintf(err, errlen, "submit: %s", t[i].err);
			ok = false;
		}
		*done_us = t[i].done_us > *done_us ? t[i].done_us : *done_us;
	}
	free(t);
	return (ok);
}

// wl_submit_batch starts n runs of name in batch requests (one, for n up
// to 10,000) on the main connection. *done_us: when the last reply came.
static bool
wl_submit_batch(bench_ctx *x, const char *name, char (*ids)[RUN_ID_LEN],
    size_t n, int64_t *done_us, char *err, size_t errlen)
{
	char why[256];
	bool ok = bench_client_run_batch(x->client, name, n, ids[0], RUN_ID_LEN,
	    why, sizeof(why));

	*done_us = weft_clock_mono_us();
	if (!ok) {
		snprintf(err, errlen, "submit: %s", why);
	}
	return (ok);
}

// ---- measuring ----

static int
wl_cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return (x < y ? -1 : x > y);
}

// wl_rank returns the nearest-rank percentile p (0..100) of sorted v[n].
static double
wl_rank(const double *v, size_t n, double p)
{
	size_t r;

	if (n == 0) {
		return (-1.0);
	}
	r = (size_t) ((p / 100.0) * (double) n + 0.999999);
	r = r < 1 ? 1 : (r > n ? n : r);
	return (v[r - 1]);
}

typedef struct wl_stats {
	uint64_t commits, events;
	double   commit_ms_avg;
	double   engine_busy_us, commit_busy_us; // < 0: not reported
} wl_stats;

void
bench_sort(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), wl_cmp_double);
}

double
bench_rank(const double *v, size_t n, double p)
{
	return (wl_rank(v, n, p));
}

// wl_counter returns the number st.key, or -1 when the coordinator does
// not report it (an older one).
static double
wl_counter(json_t *st, const char *key)
{
	json_t *v = json_object_get(st, key);
	return (json_is_number(v) ? json_number_value(v) : -1.0);
}

// wl_busy fills the pipelined group commit's figures of s from the
// counters before and after the repetition: engine and store thread busy
// time and how much of it overlapped (engine + commit - wall).
static void
wl_busy(const wl_stats *before, const wl_stats *after, bench_sample *s)
{
	s->engine_busy_ms = s->commit_busy_ms = -1.0;
	s->overlap_ms = NAN;
	if (before->engine_busy_us >= 0 && after->engine_busy_us >= 0) {
		s->engine_busy_ms =
		    (after->engine_busy_us - before->engine_busy_us) / 1000.0;
	}
	if (before->commit_busy_us >= 0 && after->commit_busy_us >= 0) {
		s->commit_busy_ms =
		    (after->commit_busy_us - before->commit_busy_us) / 1000.0;
	}
	if (s->engine_busy_ms >= 0 && s->commit_busy_ms >= 0) {
		// Signed (NAN when unknown): < 0 is time neither was busy.
		s->overlap_ms = s->engine_busy_ms + s->commit_busy_ms - s->wall_ms;
	}
}

static bool
wl_store_stats(bench_client *c, wl_stats *s, char *err, size_t errlen)
{
	json_t *info = bench_client_info(c, err, errlen);
	json_t *st   = json_object_get(info, "stats");

	if (!json_is_object(st)) {
		if (info != NULL) {
			snprintf(err, errlen, "info reply without stats");
		}
		json_decref(info);
		return (false);
	}
	s->commits = (uint64_t) json_integer_value(json_object_get(st, "commits"));
	s->events  = (uint64_t) json_integer_value(json_object_get(st, "events"));
	s->commit_ms_avg = json_number_value(json_object_get(st, "commit_ms_avg"));
	s->engine_busy_us = wl_counter(st, "engine_busy_us");
	s->commit_busy_us = wl_counter(st, "commit_busy_us");
	json_decref(info);
	return (true);
}

long
bench_commit_log_size(const bench_cluster *c)
{
	struct stat st;

	if (c->commit_log[0] == '\0' || stat(c->commit_log, &st) != 0) {
		return (0);
	}
	return ((long) st.st_size);
}

// wl_commit_latency reads the shim's records between two offsets and fills
// the commit percentiles of s (left at -1 when there are none).
static void
wl_commit_latency(const bench_cluster *c, long from, long to, bench_sample *s)
{
	size_t           n = (size_t) (to - from) / sizeof(bench_commit_rec);
	bench_commit_rec *recs;
	double          *txn, *fs;
	FILE            *f;

	s->commit_p50_ms = s->commit_p99_ms = s->commit_max_ms = -1.0;
	s->fsync_p50_ms = s->fsync_p99_ms = -1.0;
	if (n == 0 || (f = fopen(c->commit_log, "rb")) == NULL) {
		return;
	}
	recs = weft_xalloc(n * sizeof(*recs));
	if (fseek(f, from, SEEK_SET) != 0 ||
	    (n = fread(recs, sizeof(*recs), n, f)) == 0) {
		fclose(f);
		free(recs);
		return;
	}
	fclose(f);
	txn = weft_xalloc(n * sizeof(*txn));
	fs  = weft_xalloc(n * sizeof(*fs));
	for (size_t i = 0; i < n; i++) {
		txn[i] = recs[i].txn_us / 1000.0;
		fs[i]  = recs[i].commit_us / 1000.0;
	}
	qsort(txn, n, sizeof(*txn), wl_cmp_double);
	qsort(fs, n, sizeof(*fs), wl_cmp_double);
	s->commit_p50_ms = wl_rank(txn, n, 50);
	s->commit_p99_ms = wl_rank(txn, n, 99);
	s->commit_max_ms = txn[n - 1];
	s->fsync_p50_ms  = wl_rank(fs, n, 50);
	s->fsync_p99_ms  = wl_rank(fs, n, 99);
	free(recs);
	free(txn);
	free(fs);
}

// wl_store_durations fills the store's view of the runs of name: span from
// the first created_ms to the last ended_ms, median and longest run.
static bool
wl_store_durations(bench_ctx *x, const char *name, size_t nruns,
    bench_sample *s, char *err, size_t errlen)
{
	json_t *runs = bench_client_runs(x->client, name, (uint32_t) nruns, err,
	    errlen);
	json_t *r;
	size_t  k, n = 0;
	double *d;
	int64_t first = INT64_MAX, last = 0;

	if (runs == NULL) {
		return (false);
	}
	d = weft_xalloc((json_array_size(runs) + 1) * sizeof(*d));
	json_array_foreach (runs, k, r) {
		int64_t c = json_integer_value(json_object_get(r, "created_ms"));
		int64_t e = json_integer_value(json_object_get(r, "ended_ms"));
		if (c <= 0 || e <= 0) {
			continue;
		}
		first  = c < first ? c : first;
		last   = e > last ? e : last;
		d[n++] = (double) (e - c);
	}
	json_decref(runs);
	if (n != nruns) {
		snprintf(err, errlen, "the store lists %zu ended runs of %s, "
		    "expected %zu", n, name, nruns);
		free(d);
		return (false);
	}
	qsort(d, n, sizeof(*d), wl_cmp_double);
	s->store_ms   = (double) (last - first);
	s->run_ms_p50 = wl_rank(d, n, 50);
	s->run_ms_max = d[n - 1];
	free(d);
	return (true);
}

// wl_load1 returns the 1-minute load average, or -1.
static double
wl_load1(void)
{
	FILE  *f = fopen("/proc/loadavg", "r");
	double v = -1.0;

	if (f != NULL) {
		if (fscanf(f, "%lf", &v) != 1) {
			v = -1.0;
		}
		fclose(f);
	}
	return (v);
}

// wl_wait waits (--timeout from t0) until the n runs of idp have ended;
// *last: when the last one was seen.
static bool
wl_wait(bench_ctx *x, char **idp, size_t n, int64_t t0, int64_t *last,
    bench_sample *s, char *err, size_t errlen)
{
	if (!bench_watch_wait(x->watch, x->client, idp, n,
	        t0 + (int64_t) x->opts->timeout_s * 1000000, last, &s->failed,
	        &s->polled)) {
		snprintf(err, errlen, "%s", bench_stopping
		        ? "interrupted"
		        : "runs did not end before the deadline (--timeout)");
		return (false);
	}
	return (true);
}

// wl_queued is W5 after its definition is registered: the workers
// stopped, n runs submitted, the coordinator killed -9 and started again
// (time to answer, peak and steady RSS of the recovery, RSS per queued
// run), the workers started again, every run drained. Stopped, not
// paused: workers held with SIGSTOP through the coordinator's restart
// sometimes never came back to it (the report of issue 11).
static bool
wl_queued(bench_ctx *x, const char *name, char (*ids)[RUN_ID_LEN],
    char **idp, size_t n, bench_sample *s, char *err, size_t errlen)
{
	bench_cluster *c = (bench_cluster *) x->cluster;
	double         rss1, peak;
	int64_t        t0, submitted, answered, last;
	bool           ok = false;

	bench_cluster_stop_workers(c);
	t0 = weft_clock_mono_us();
	if (!wl_submit(x, name, ids, n, &submitted, err, errlen)) {
		goto done;
	}
	s->submit_ms = (double) (submitted - t0) / 1000.0;
	bench_cluster_rss_kb(c, &rss1, &peak);
	s->peak_mb = peak / 1024.0;
	if (!bench_cluster_crash_restart(c, &answered)) {
		snprintf(err, errlen, "the coordinator did not come back");
		goto done;
	}
	s->recover_ms = (double) answered;
	bench_cluster_rss_kb(c, &rss1, &peak);
	s->steady_mb       = rss1 / 1024.0;
	s->recover_peak_mb = peak / 1024.0;
	// A fresh process holding only the queued runs: what they cost,
	// without what earlier workloads left in the old one's heap.
	s->run_kib = (rss1 - c->base_rss_kb) / (double) n;
	if (!bench_cluster_start_workers(c, x->opts)) {
		snprintf(err, errlen, "the workers did not come back");
		goto done;
	}
	t0 = weft_clock_mono_us();
	if (!wl_wait(x, idp, n, t0, &last, s, err, errlen)) {
		goto done;
	}
	s->drain_ms    = (double) (last - t0) / 1000.0;
	s->wall_ms     = s->drain_ms;
	s->steps_per_s = (double) n / (s->drain_ms / 1000.0);
	ok             = true;
done:
	return (ok);
}

// wl_warm_up runs one run of name, unmeasured, so that the coordinator
// has learned its steps' durations (CP).
static bool
wl_warm_up(bench_ctx *x, const char *name, char *err, size_t errlen)
{
	char         ids[1][RUN_ID_LEN] = { "" };
	char        *idp[1]             = { ids[0] };
	int64_t      t0 = weft_clock_mono_us(), submitted, last;
	bench_sample scratch;

	memset(&scratch, 0, sizeof(scratch));
	return (wl_submit(x, name, ids, 1, &submitted, err, errlen) &&
	    wl_wait(x, idp, 1, t0, &last, &scratch, err, errlen));
}

bool
bench_workload_run(bench_ctx *x, enum bench_workload w, int rep,
    bench_sample *s, char *err, size_t errlen)
{
	char        name[96];
	char       *def;
	size_t      nruns = bench_workload_runs(w);
	char      (*ids)[RUN_ID_LEN] = weft_xalloc(nruns * sizeof(*ids));
	char      **idp = weft_xalloc(nruns * sizeof(*idp));
	wl_stats    before, after;
	uint64_t    ev0, ev1, b0, b1;
	long        log0, log1;
	int64_t     t0, submitted, last;
	double      cc0, wc0, bc0, cc1, wc1, bc1;
	bool        ok = false;

	memset(s, 0, sizeof(*s));
	memset(ids, 0, nruns * sizeof(*ids));
	for (size_t i = 0; i < nruns; i++) {
		idp[i] = ids[i];
	}
	// A name per repetition and per bench process: the runs list of
	// that definition is exactly this repetition's runs, also in a
	// shared PostgreSQL database.
	snprintf(name, sizeof(name), "bench_%s_%s_r%d", bench_workload_name(w),
	    x->tag, rep);
	def = wl_definition(w, name);
	if (!bench_client_define(x->client, def, err, errlen)) {
		free(def);
		goto done;
	}
	free(def);
	if (!wl_store_stats(x->client, &before, err, errlen)) {
		goto done;
	}
	log0 = bench_commit_log_size(x->cluster);
	bench_watch_counts(x->watch, &ev0, &b0);
	bench_cluster_cpu_ms(x->cluster, &cc0, &wc0);
	bc0 = bench_self_cpu_ms();
	s->load1 = wl_load1();
	s->run_kib = s->recover_ms = s->recover_peak_mb = s->steady_mb =
	    s->drain_ms = -1.0;
	s->engine_busy_ms = s->commit_busy_ms = -1.0;
	s->overlap_ms = NAN;
	bench_cluster_reset_peak(x->cluster);
	if (w == BENCH_W5) {
		// Its own course; the store's figures of 100,000 runs are not
		// listed back (store_ms and run p50 stay unknown).
		s->store_ms = s->run_ms_p50 = s->run_ms_max = -1.0;
		s->commit_p50_ms = s->commit_p99_ms = s->commit_max_ms = -1.0;
		s->fsync_p50_ms = s->fsync_p99_ms = -1.0;
		ok = wl_queued(x, name, ids, idp, nruns, s, err, errlen);
		// Restarted processes: their CPU counters start again.
		s->workers_cpu_ms = s->coord_cpu_ms = -1.0;
		goto done;
	}

	if (w == BENCH_CP && !wl_warm_up(x, name, err, errlen)) {
		goto done;
	}
	t0 = weft_clock_mono_us();
	if (!(w == BENCH_W3
	            ? wl_submit_batch(x, name, ids, nruns, &submitted, err,
	                  errlen)
	            : wl_submit(x, name, ids, nruns, &submitted, err, errlen))) {
		goto done;
	}
	if (!wl_wait(x, idp, nruns, t0, &last, s, err, errlen)) {
		goto done;
	}
	bc1 = bench_self_cpu_ms();
	bench_cluster_cpu_ms(x->cluster, &cc1, &wc1);
	{
		double rss, peak;
		bench_cluster_rss_kb(x->cluster, &rss, &peak);
		s->peak_mb = peak / 1024.0;
	}
	s->coord_cpu_ms   = cc1 - cc0;
	s->workers_cpu_ms = wc1 - wc0;
	s->bench_cpu_ms   = bc1 - bc0;
	s->wall_ms     = (double) (last - t0) / 1000.0;
	s->submit_ms   = (double) (submitted - t0) / 1000.0;
	s->steps_per_s = (double) bench_workload_steps(w) / (s->wall_ms / 1000.0);

	if (!wl_store_stats(x->client, &after, err, errlen)) {
		goto done;
	}
	log1 = bench_commit_log_size(x->cluster);
	bench_watch_counts(x->watch, &ev1, &b1);
	s->events        = after.events - before.events;
	s->commits       = after.commits - before.commits;
	s->events_per_s  = (double) s->events / (s->wall_ms / 1000.0);
	s->batch_mean    = s->commits ? (double) s->events / (double) s->commits
	                              : 0.0;
	s->commit_ms_avg = s->commits
	    ? (after.commit_ms_avg * (double) after.commits -
	          before.commit_ms_avg * (double) before.commits) /
	        (double) s->commits
	    : 0.0;
	s->stream_events = ev1 - ev0;
	wl_busy(&before, &after, s);
	wl_commit_latency(x->cluster, log0, log1, s);
	ok = wl_store_durations(x, name, nruns, s, err, errlen);

done:
	free(ids);
	free(idp);
	return (ok);
}
