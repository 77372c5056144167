// weft-store-bench: the store alone, at size. Fills a store with about
// --events events of realistic runs through weft_store_append (the
// engine's write path, in batches of --batch as group commit makes them),
// reports what each event cost to write, then times every query the
// README documents on it (median of --repeat). See bench/README.md.
//
//   weft-store-bench --db /tmp/big.db                  # 1,000,000 events
//   weft-store-bench --pg                              # a throwaway server
//   weft-store-bench --db /tmp/big.db --queries-only   # time an old fill
//
// The runs: --steps steps each (default 100: ready, dispatched, started,
// succeeded per step), --inflight of them (default 8) at once so their
// events interleave as they do in a busy coordinator, on 4 nodes; one run in 50
// has a step that fails and ends the run failed. Timestamps spread the
// events evenly over the 24 hours before the fill started, so "--since 1h"
// selects the last 1/24th.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "pg.h"
#include "store.h"

#define SB_NODES 4
#define SB_DAY_MS (24 * 3600 * 1000LL)

typedef struct sb_opts {
	const char *db, *sql;
	bool        pg, queries_only;
	size_t      events, batch, steps, repeat, inflight;
} sb_opts;

// One event being built: the strings it points at live here.
typedef struct sb_ev {
	weft_event ev;
	char       run[32], step[24], node[8];
	char      *text;
} sb_ev;

typedef struct sb_fill {
	weft_store *s;
	sb_ev      *buf;
	weft_event *evs;
	size_t      n, cap;
	uint64_t    id, total;
	int64_t     t0_ms;
	double      ms_per_event;
	int64_t    *lat;
	size_t      nlat, caplat;
} sb_fill;

static double
sb_cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
	    (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0);
}

// sb_server_cpu_ms is the CPU time of the PostgreSQL backend serving s
// (same machine only), or 0.
static double
sb_server_cpu_ms(weft_store *s)
{
	uint64_t      pid = 0;
	char          path[64], buf[1024];
	FILE         *f;
	unsigned long ut = 0, st = 0;

	if (strcmp(s->ops->name, "postgres") != 0 ||
	    s->ops->query(s, "SELECT pg_backend_pid()", NULL, 0,
	        weft_store_u64_row, &pid) != WEFT_OK) {
		return (0);
	}
	snprintf(path, sizeof(path), "/proc/%" PRIu64 "/stat", pid);
	if ((f = fopen(path, "r")) == NULL) {
		return (0);
	}
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *p = strrchr(buf, ')');
		if (p == NULL ||
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
		                  "%lu %lu", &ut, &st) != 2) {
			ut = st = 0;
		}
	}
	fclose(f);
	return ((double) (ut + st) * 1000.0 / (double) sysconf(_SC_CLK_TCK));
}

static int
sb_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
	return (x < y ? -1 : x > y);
}

static void
sb_flush(sb_fill *f)
{
	int64_t t0 = weft_clock_mono_us();

	for (size_t i = 0; i < f->n; i++) {
		f->evs[i] = f->buf[i].ev;
	}
	if (weft_store_append(f->s, f->evs, f->n) != WEFT_OK) {
		fprintf(stderr, "weft-store-bench: append: %s\n", f->s->error);
		exit(1);
	}
	if (f->nlat == f->caplat) {
		f->caplat = f->caplat ? f->caplat * 2 : 1024;
		f->lat    = weft_xrealloc(f->lat, f->caplat * sizeof(*f->lat));
	}
	f->lat[f->nlat++] = weft_clock_mono_us() - t0;
	for (size_t i = 0; i < f->n; i++) {
		json_decref(f->buf[i].ev.data);
		free(f->buf[i].text);
	}
	f->n = 0;
}

// sb_copy copies src (NULL: "") into dst of size n; the fill makes every
// name itself, so one that does not fit is a bug here.
static void
sb_copy(char *dst, size_t n, const char *src)
{
	size_t len = src != NULL ? strlen(src) : 0;

	if (len >= n) {
		fprintf(stderr, "weft-store-bench: name \"%s\" over %zu bytes\n",
		    src, n - 1);
		abort();
	}
	memcpy(dst, src != NULL ? src : "", len);
	dst[len] = '\0';
}

// sb_add appends one event (data taken) to the batch being built.
static void
sb_add(sb_fill *f, const char *run, uint64_t seq, enum weft_event_type t,
    const char *step, uint32_t attempt, const char *node, json_t *data)
{
	sb_ev *e = &f->buf[f->n++];

	memset(e, 0, sizeof(*e));
	sb_copy(e->run, sizeof(e->run), run);
	sb_copy(e->step, sizeof(e->step), step);
	sb_copy(e->node, sizeof(e->node), node);
	e->text           = json_dumps(data, JSON_COMPACT);
	e->ev.id          = ++f->id;
	e->ev.run_id      = run != NULL ? e->run : NULL;
	e->ev.seq         = seq;
	e->ev.ts_ms       = f->t0_ms + (int64_t) ((double) f->id * f->ms_per_event);
	e->ev.type        = t;
	e->ev.step_id     = step != NULL ? e->step : NULL;
	e->ev.attempt     = attempt;
	e->ev.node        = node != NULL ? e->node : NULL;
	e->ev.data        = data;
	e->ev.data_text   = e->text;
	if (f->n == f->cap) {
		sb_flush(f);
	}
}

// sb_definition registers the definition every run uses: a chain of
// pairs (s0; s1, s2 on s0; s3 on s1 and s2; ...), steps steps of noop.
static void
sb_definition(sb_fill *f, size_t steps)
{
	json_t *list = json_array();
	char    id[24], dep[24];

	for (size_t i = 0; i < steps; i++) {
		snprintf(id, sizeof(id), "s%zu", i);
		json_t *st = json_pack("{s:s, s:s}", "id", id, "type", "noop");
		if (i > 0) {
			snprintf(dep, sizeof(dep), "s%zu", i - 1);
			json_object_set_new(st, "depends_on", json_pack("[s]", dep));
		}
		json_array_append_new(list, st);
	}
	json_t *def = json_pack("{s:s, s:o}", "name", "sb", "steps", list);
	sb_add(f, NULL, 0, WEFT_EV_DEFINITION_REGISTERED, NULL, 0, NULL,
	    json_pack("{s:s, s:i, s:o}", "name", "sb", "version", 1,
	        "definition", def));
}

// sb_fill_store writes runs until about o->events events are stored.
static void
sb_fill_store(weft_store *s, const sb_opts *o)
{
	sb_fill  f;
	size_t   per_run = 4 + 4 * o->steps, nruns = o->events / per_run;
	double   cpu0    = sb_cpu_ms(), scpu0 = sb_server_cpu_ms(s);
	int64_t  start   = weft_clock_mono_us();

	memset(&f, 0, sizeof(f));
	f.s            = s;
	f.cap          = o->batch;
	f.buf          = weft_xalloc(f.cap * sizeof(*f.buf));
	f.evs          = weft_xalloc(f.cap * sizeof(*f.evs));
	f.t0_ms        = weft_clock_wall_ms() - SB_DAY_MS;
	f.ms_per_event = (double) SB_DAY_MS / (double) (nruns * per_run + 1);
	if (weft_store_max_event_id(s, &f.id) != WEFT_OK || f.id != 0) {
		fprintf(stderr, "weft-store-bench: the store is not empty (use "
		                "a new one, or --queries-only)\n");
		exit(1);
	}
	sb_definition(&f, o->steps);
	// o->inflight runs at a time; each takes one step through its four
	// events per round, so the runs' events interleave.
	char (*runs)[32] = weft_xalloc(o->inflight * sizeof(*runs));
	uint64_t *seq    = weft_xalloc(o->inflight * sizeof(*seq));
	for (size_t r0 = 0; r0 < nruns; r0 += o->inflight) {
		size_t k = nruns - r0 < o->inflight ? nruns - r0 : o->inflight;
		for (size_t j = 0; j < k; j++) {
			snprintf(runs[j], sizeof(runs[j]), "01SB%022zu", r0 + j);
			seq[j] = 0;
			sb_add(&f, runs[j], ++seq[j], WEFT_EV_RUN_QUEUED, NULL, 0,
			    NULL,
			    json_pack("{s:s, s:i, s:{s:i}, s:{}, s:i}", "definition",
			        "sb", "version", 1, "input", "n", (int) (r0 + j),
			        "params", "steps", (int) o->steps));
			sb_add(&f, runs[j], ++seq[j], WEFT_EV_RUN_STARTED, NULL, 0,
			    NULL, json_object());
		}
		for (size_t i = 0; i < o->steps; i++) {
			char step[24];
			snprintf(step, sizeof(step), "s%zu", i);
			for (size_t j = 0; j < k; j++) {
				char node[8];
				bool fails = (r0 + j) % 50 == 7 && i + 1 == o->steps;
				snprintf(node, sizeof(node), "w%zu",
				    (r0 + j + i) % SB_NODES);
				sb_add(&f, runs[j], ++seq[j], WEFT_EV_STEP_READY, step,
				    0, NULL, json_object());
				sb_add(&f, runs[j], ++seq[j],
				    WEFT_EV_STEP_DISPATCHED, step, 1, node,
				    json_object());
				sb_add(&f, runs[j], ++seq[j], WEFT_EV_STEP_STARTED,
				    step, 1, node, json_object());
				sb_add(&f, runs[j], ++seq[j],
				    fails ? WEFT_EV_STEP_FAILED
				          : WEFT_EV_STEP_SUCCEEDED,
				    step, 1, node,
				    fails ? json_pack("{s:s, s:i}", "error",
				                "exit status 3: disk quota exceeded",
				                "duration_ms", 12)
				          : json_pack("{s:{s:i}, s:i}", "output",
				                "n", (int) i, "duration_ms", 3));
			}
		}
		for (size_t j = 0; j < k; j++) {
			bool fails = (r0 + j) % 50 == 7;
			sb_add(&f, runs[j], ++seq[j],
			    fails ? WEFT_EV_RUN_FAILED : WEFT_EV_RUN_SUCCEEDED, NULL,
			    0, NULL,
			    fails ? json_pack("{s:s}", "error", "step s99 failed")
			          : json_pack("{s:{s:i}}", "output", "n", 1));
		}
	}
	if (f.n > 0) {
		sb_flush(&f);
	}
	free(runs);
	free(seq);
	double  us    = (double) (weft_clock_mono_us() - start);
	double  cpu   = sb_cpu_ms() - cpu0, scpu = sb_server_cpu_ms(s) - scpu0;
	qsort(f.lat, f.nlat, sizeof(*f.lat), sb_cmp_i64);
	printf("fill: %s, %" PRIu64 " events in %zu runs, %zu commits of %zu: "
	       "%.1f s, %.1f us/event wall, %.1f us/event CPU (weft %.1f + "
	       "server %.1f), commit p50 %.1f ms p99 %.1f ms\n",
	    s->ops->name, f.id, nruns, f.nlat, o->batch, us / 1e6,
	    us / (double) f.id, (cpu + scpu) * 1000.0 / (double) f.id,
	    cpu * 1000.0 / (double) f.id, scpu * 1000.0 / (double) f.id,
	    (double) f.lat[f.nlat / 2] / 1000.0,
	    (double) f.lat[(f.nlat * 99) / 100] / 1000.0);
	fflush(stdout);
	free(f.buf);
	free(f.evs);
	free(f.lat);
}

// ---- queries ----

typedef struct sb_query {
	const char *what; // as a user would ask
	int         kind;
	weft_runs_filter   rf;
	weft_events_filter ef;
	const char        *types[1];
} sb_query;

enum { SB_RUNS, SB_EVENTS, SB_STATUS, SB_BY_STATUS, SB_UNFINISHED };

static int
sb_ignore_row(void *arg, int ncols, const char **cols)
{
	(void) arg;
	(void) ncols;
	(void) cols;
	return (0);
}

// sb_time runs q once: its wall time in us; *rows: rows of the answer.
static int64_t
sb_time(weft_store *s, sb_query *q, const char *run, size_t *rows)
{
	json_t         *out = NULL;
	weft_err        rv  = WEFT_OK;
	int64_t         t0  = weft_clock_mono_us();
	char            next[64];
	weft_steps_page pg = { .bytes = WEFT_QUERY_BYTES };

	switch (q->kind) {
	case SB_RUNS:
		q->rf.next     = next;
		q->rf.next_len = sizeof(next);
		rv             = weft_store_list_runs(s, &q->rf, &out);
		break;
	case SB_EVENTS:
		q->ef.next     = next;
		q->ef.next_len = sizeof(next);
		rv             = weft_store_list_events(s, &q->ef, &out);
		break;
	case SB_STATUS:
		rv = weft_store_get_run_page(s, run, &pg, &out);
		break;
	case SB_BY_STATUS:
		rv = weft_store_runs_by_status(s, sb_ignore_row, NULL);
		break;
	case SB_UNFINISHED:
		rv = weft_store_unfinished_runs(s, "", 256, &out);
		break;
	}
	int64_t us = weft_clock_mono_us() - t0;
	if (rv != WEFT_OK) {
		fprintf(stderr, "weft-store-bench: %s: %s\n", q->what, s->error);
		exit(1);
	}
	*rows = json_is_array(out) ? json_array_size(out)
	    : json_is_object(out)  ? json_array_size(json_object_get(out, "steps"))
	                           : 0;
	json_decref(out);
	return (us);
}

static void
sb_queries(weft_store *s, const sb_opts *o)
{
	int64_t  now = weft_clock_wall_ms();
	uint64_t max = 0;
	char     run[32], last_run[32], after[24];
	json_t  *runs = NULL;

	// The newest run, and one from the middle of the store.
	weft_runs_filter rf = { .limit = 1 };
	if (weft_store_list_runs(s, &rf, &runs) != WEFT_OK ||
	    json_array_size(runs) == 0 ||
	    weft_store_max_event_id(s, &max) != WEFT_OK) {
		fprintf(stderr, "weft-store-bench: the store has no runs\n");
		exit(1);
	}
	snprintf(last_run, sizeof(last_run), "%s",
	    json_string_value(json_object_get(json_array_get(runs, 0), "id")));
	json_decref(runs);
	// The run halfway through the fill (ids count up from 01SB0...0).
	snprintf(run, sizeof(run), "01SB%022llu",
	    strtoull(last_run + 4, NULL, 10) / 2);
	snprintf(after, sizeof(after), "%" PRIu64, max > 500 ? max - 500 : 0);

	sb_query q[] = {
		{ "runs (newest 100)", SB_RUNS, .rf = { 0 } },
		{ "runs --status failed", SB_RUNS, .rf = { .status = "failed" } },
		{ "runs --definition sb --limit 1000", SB_RUNS,
		    .rf = { .definition = "sb", .limit = 1000 } },
		{ "runs --since 1h", SB_RUNS, .rf = { .since_ms = now - 3600000 } },
		{ "runs --before RUN (page 2)", SB_RUNS, .rf = { .before = run } },
		{ "status RUN", SB_STATUS, .rf = { 0 } },
		{ "events --run RUN", SB_EVENTS, .ef = { .run_id = run } },
		{ "events --run RUN --step s5", SB_EVENTS,
		    .ef = { .run_id = run, .step_id = "s5" } },
		{ "events (first 1000)", SB_EVENTS, .ef = { 0 } },
		{ "events --after ID (the tail)", SB_EVENTS,
		    .ef = { .after = max > 500 ? max - 500 : 0 } },
		{ "events --type step_failed", SB_EVENTS,
		    .ef = { .ntypes = 1 }, .types = { "step_failed" } },
		{ "events --type run_failed --since 1h", SB_EVENTS,
		    .ef = { .ntypes = 1, .since_ms = now - 3600000 },
		    .types = { "run_failed" } },
		{ "events --since 1h", SB_EVENTS,
		    .ef = { .since_ms = now - 3600000 } },
		{ "events --since 2h --until 1h", SB_EVENTS,
		    .ef = { .since_ms = now - 7200000, .until_ms = now - 3600000 } },
		{ "events --step s5", SB_EVENTS, .ef = { .step_id = "s5" } },
		{ "events --node w2", SB_EVENTS, .ef = { .node = "w2" } },
		{ "events --node gone (no match)", SB_EVENTS,
		    .ef = { .node = "gone" } },
		{ "events --text quota", SB_EVENTS, .ef = { .text = "quota" } },
		{ "runs by status (metrics)", SB_BY_STATUS, .rf = { 0 } },
		{ "unfinished runs (recovery)", SB_UNFINISHED, .rf = { 0 } },
	};
	printf("queries on %" PRIu64 " events, median of %zu (ms):\n", max,
	    o->repeat);
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		int64_t t[64];
		size_t  rows = 0, n = o->repeat < 64 ? o->repeat : 64;
		if (q[i].ef.ntypes > 0) {
			q[i].ef.types = q[i].types;
		}
		for (size_t k = 0; k < n; k++) {
			t[k] = sb_time(s, &q[i], run, &rows);
		}
		qsort(t, n, sizeof(t[0]), sb_cmp_i64);
		printf("  %-40s %9.2f ms  (%zu rows)\n", q[i].what,
		    (double) t[n / 2] / 1000.0, rows);
	}
}

static void
sb_usage(const char *me)
{
	fprintf(stderr,
	    "usage: %s (--db URL | --pg) [--events N] [--batch N] "
	    "[--steps N] [--inflight N] [--repeat N] [--queries-only] "
	    "[--sql SQL]\n",
	    me);
	exit(2);
}

static size_t
sb_num(const char *me, const char *flag, const char *v)
{
	char         *end;
	unsigned long n = strtoul(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n == 0 || n > 100000000ul) {
		fprintf(stderr, "%s: %s wants a number from 1 to 100000000, "
		                "not \"%s\"\n", me, flag, v);
		exit(2);
	}
	return ((size_t) n);
}

int
main(int argc, char **argv)
{
	sb_opts     o = { .events = 1000000, .batch = 2000, .steps = 100,
		    .repeat = 5, .inflight = 8 };
	weft_pg     pg;
	weft_store *s;
	char        err[512];

	weft_log_init("store-bench", WEFT_LOG_WARN);
	memset(&pg, 0, sizeof(pg));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool        v = i + 1 < argc;
		if (strcmp(a, "--db") == 0 && v) {
			o.db = argv[++i];
		} else if (strcmp(a, "--pg") == 0) {
			o.pg = true;
		} else if (strcmp(a, "--events") == 0 && v) {
			o.events = sb_num(argv[0], a, argv[++i]);
		} else if (strcmp(a, "--batch") == 0 && v) {
			o.batch = sb_num(argv[0], a, argv[++i]);
		} else if (strcmp(a, "--steps") == 0 && v) {
			o.steps = sb_num(argv[0], a, argv[++i]);
		} else if (strcmp(a, "--inflight") == 0 && v) {
			o.inflight = sb_num(argv[0], a, argv[++i]);
		} else if (strcmp(a, "--repeat") == 0 && v) {
			o.repeat = sb_num(argv[0], a, argv[++i]);
		} else if (strcmp(a, "--sql") == 0 && v) {
			o.sql = argv[++i];
		} else if (strcmp(a, "--queries-only") == 0) {
			o.queries_only = true;
		} else {
			sb_usage(argv[0]);
		}
	}
	if ((o.db == NULL) == !o.pg) {
		sb_usage(argv[0]);
	}
	if (o.pg) {
		if (weft_pg_start(&pg) != 0) {
			return (1);
		}
		o.db = weft_pg_url(&pg);
	}
	if (weft_store_open(&s, o.db, NULL, false, err, sizeof(err)) !=
	    WEFT_OK) {
		fprintf(stderr, "weft-store-bench: open %s: %s\n", o.db, err);
		weft_pg_stop(&pg);
		return (1);
	}
	// --sql: a schema experiment (an index dropped or added) before the
	// fill, e.g. --sql "DROP INDEX events_node".
	if (o.sql != NULL && s->ops->script(s, o.sql) != WEFT_OK) {
		fprintf(stderr, "weft-store-bench: --sql: %s\n", s->error);
		return (1);
	}
	if (!o.queries_only) {
		sb_fill_store(s, &o);
	}
	if (strcmp(s->ops->name, "postgres") == 0) {
		// What autovacuum would have done by now on a store this size.
		s->ops->script(s, "ANALYZE");
	}
	sb_queries(s, &o);
	weft_store_close(s);
	weft_pg_stop(&pg);
	return (0);
}
