// store_pg_bench: the store's write path alone, on the W1 event stream.
//
// W1 is one run: a root, 10,000 noop steps depending on it, and a join.
// Its ~40,000 events (ready, dispatched, started, succeeded per step) are
// cut into batches of --batch events and appended one batch per
// transaction, as the engine's group commit does. Prints events/s and the
// p50/p99 commit latency. Not a test: run by hand, e.g.
//   store_pg_bench --db postgres://... --batch 512
//   store_pg_bench --pg --batch 512   (starts a throwaway server)
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "pg.h"
#include "store.h"

#define W1_STEPS 10002

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
	return (x < y ? -1 : x > y);
}

// w1_events builds the event stream of one W1 run starting at event id 1.
static weft_event *
w1_events(size_t *n, char ***texts)
{
	static const enum weft_event_type types[] = { WEFT_EV_STEP_READY,
		WEFT_EV_STEP_DISPATCHED, WEFT_EV_STEP_STARTED,
		WEFT_EV_STEP_SUCCEEDED };
	size_t      cap = 4 + W1_STEPS * 4, k = 0;
	weft_event *evs = weft_xalloc(cap * sizeof(*evs));
	char      **ids = weft_xalloc(W1_STEPS * sizeof(*ids));
	char      **tx  = weft_xalloc(cap * sizeof(*tx));
	char        id[32];

	for (int i = 0; i < W1_STEPS; i++) {
		snprintf(id, sizeof(id), i == 0 ? "root" : "s%d", i);
		ids[i] = weft_xstrdup(id);
	}
	json_t *q = json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "w1",
	    "version", 1, "input", "params", "steps", W1_STEPS);
	evs[k++] = (weft_event) { .type = WEFT_EV_RUN_QUEUED, .data = q };
	evs[k++] = (weft_event) { .type = WEFT_EV_RUN_STARTED, .data = json_object() };
	// Steps go through their lives in waves of 512, as results come back.
	for (int w = 0; w < W1_STEPS; w += 512) {
		for (int t = 0; t < 4; t++) {
			for (int i = w; i < w + 512 && i < W1_STEPS; i++) {
				json_t *d = t == 3 ? json_pack("{s:{s:s}}",
				                         "output", "ok", "yes")
				                   : json_object();
				evs[k++] = (weft_event) { .type = types[t],
					.step_id = ids[i], .attempt = 1,
					.node = t > 0 ? "w1" : NULL, .data = d };
			}
		}
	}
	evs[k++] = (weft_event) { .type = WEFT_EV_RUN_SUCCEEDED,
		.data = json_object() };
	for (size_t i = 0; i < k; i++) {
		evs[i].id        = i + 1;
		evs[i].run_id    = "R-w1";
		evs[i].seq       = i + 1;
		evs[i].ts_ms     = weft_clock_wall_ms();
		tx[i]            = json_dumps(evs[i].data, JSON_COMPACT);
		evs[i].data_text = tx[i];
	}
	*n     = k;
	*texts = tx;
	return (evs);
}

// server_cpu_ms returns the CPU time the server process behind s used so
// far (PostgreSQL on this machine only), or -1.
static double
server_cpu_ms(weft_store *s)
{
	uint64_t pid = 0;
	char     path[64], buf[1024];
	FILE    *f;
	unsigned long ut = 0, st = 0;

	if (strcmp(s->ops->name, "postgres") != 0 ||
	    s->ops->query(s, "SELECT pg_backend_pid()", NULL, 0,
	        weft_store_u64_row, &pid) != WEFT_OK) {
		return (-1);
	}
	snprintf(path, sizeof(path), "/proc/%" PRIu64 "/stat", pid);
	if ((f = fopen(path, "r")) == NULL) {
		return (-1);
	}
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *p = strrchr(buf, ')');
		// Fields after the command: state is 3rd; utime 14th, stime 15th.
		if (p != NULL &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
		                  "%lu %lu", &ut, &st) != 2) {
			ut = st = 0;
		}
	}
	fclose(f);
	return ((double) (ut + st) * 1000.0 / (double) sysconf(_SC_CLK_TCK));
}

static double
client_cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
	    (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0);
}

int
main(int argc, char **argv)
{
	const char *db    = NULL;
	size_t      batch = 512;
	bool        ownpg = false;
	weft_pg     pg;
	weft_store *s;
	char        err[512];
	size_t      n;
	char      **texts;

	weft_log_init("bench", WEFT_LOG_WARN);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
			db = argv[++i];
		} else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
			batch = (size_t) strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--pg") == 0) {
			ownpg = true;
		} else {
			fprintf(stderr, "usage: %s [--db URL | --pg] "
			                "[--batch N]\n", argv[0]);
			return (2);
		}
	}
	if (ownpg) {
		if (weft_pg_start(&pg) != 0) {
			return (1);
		}
		db = weft_pg_url(&pg);
	}
	if (db == NULL || batch == 0) {
		fprintf(stderr, "need --db URL or --pg, and --batch > 0\n");
		return (2);
	}
	if (weft_store_open(&s, db, NULL, false, err, sizeof(err)) != WEFT_OK) {
		fprintf(stderr, "open: %s\n", err);
		return (1);
	}
	weft_event *evs   = w1_events(&n, &texts);
	size_t      nb    = (n + batch - 1) / batch;
	int64_t    *lat   = weft_xalloc(nb * sizeof(*lat));
	double      scpu0 = server_cpu_ms(s), ccpu0 = client_cpu_ms();
	int64_t     start = weft_clock_mono_us();
	for (size_t b = 0; b < nb; b++) {
		size_t  off = b * batch;
		size_t  m   = n - off < batch ? n - off : batch;
		int64_t t0  = weft_clock_mono_us();
		if (weft_store_append(s, evs + off, m) != WEFT_OK) {
			fprintf(stderr, "append: %s\n", s->error);
			return (1);
		}
		lat[b] = weft_clock_mono_us() - t0;
	}
	int64_t total = weft_clock_mono_us() - start;
	double  ccpu  = client_cpu_ms() - ccpu0;
	double  scpu  = server_cpu_ms(s) - scpu0;
	qsort(lat, nb, sizeof(*lat), cmp_i64);
	printf("backend=%s events=%zu batch=%zu batches=%zu wall_ms=%.1f "
	       "events_per_s=%.0f commit_p50_ms=%.2f commit_p99_ms=%.2f "
	       "client_cpu_ms=%.0f server_cpu_ms=%.0f\n",
	    s->ops->name, n, batch, nb, (double) total / 1000.0,
	    (double) n * 1e6 / (double) total, (double) lat[nb / 2] / 1000.0,
	    (double) lat[(nb * 99) / 100] / 1000.0, ccpu, scpu);
	weft_store_close(s);
	for (size_t i = 0; i < n; i++) {
		free(texts[i]);
		json_decref(evs[i].data);
	}
	free(texts);
	free(evs);
	free(lat);
	if (ownpg) {
		weft_pg_stop(&pg);
	}
	return (0);
}
