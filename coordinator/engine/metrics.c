// metrics: lock-free histograms and the commit latency window.
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

static const double step_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
	0.5, 1, 2.5, 5, 10, 30, 60, 300 };
static const double commit_bounds[] = { 0.0005, 0.001, 0.002, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1 };
static const double batch_bounds[] = { 1, 2, 5, 10, 25, 50, 100, 250, 500,
	1000, 2500, 5000, 10000, 50000 };

static void
hist_init(weft_hist *h, const double *b, int n)
{
	memset(h, 0, sizeof(*h));
	h->bounds  = b;
	h->nbounds = n;
}

void
weft_metrics_init(weft_metrics *m)
{
	memset(m, 0, sizeof(*m));
	hist_init(&m->step_seconds, step_bounds,
	    (int) (sizeof(step_bounds) / sizeof(step_bounds[0])));
	hist_init(&m->commit_seconds, commit_bounds,
	    (int) (sizeof(commit_bounds) / sizeof(commit_bounds[0])));
	hist_init(&m->batch_events, batch_bounds,
	    (int) (sizeof(batch_bounds) / sizeof(batch_bounds[0])));
}

void
weft_hist_observe(weft_hist *h, double v)
{
	int i = 0;
	while (i < h->nbounds && v > h->bounds[i]) {
		i++;
	}
	atomic_fetch_add(&h->buckets[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_micro, (uint64_t) (v * 1e6));
}

void
weft_hist_write(FILE *f, const char *name, const char *help,
    const weft_hist *h)
{
	uint64_t cum = 0;

	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int i = 0; i < h->nbounds; i++) {
		cum += atomic_load(&h->buckets[i]);
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
		    (unsigned long long) cum);
	}
	cum += atomic_load(&h->buckets[h->nbounds]);
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long) cum);
	fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name,
	    (double) atomic_load(&h->sum_micro) / 1e6, name,
	    (unsigned long long) atomic_load(&h->count));
}

void
weft_metrics_commit(weft_metrics *m, size_t n, int64_t us)
{
	weft_hist_observe(&m->commit_seconds, (double) us / 1e6);
	weft_hist_observe(&m->batch_events, (double) n);
	m->lat_us[m->nlat % WEFT_LAT_WINDOW] = (uint32_t) (us > 0 ? us : 0);
	m->nlat++;
	atomic_fetch_add(&m->commit_us_total, (uint64_t) (us > 0 ? us : 0));
	// Readers on other threads see percentiles a quarter second old at
	// most; sorting the window on every commit would cost more.
	int64_t now = weft_clock_mono_ms();
	if (now - m->pct_at >= 250 || m->nlat < 64) {
		m->pct_at = now;
		atomic_store(&m->p50_us, weft_metrics_latency_pct(m, 50));
		atomic_store(&m->p99_us, weft_metrics_latency_pct(m, 99));
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	return (x < y ? -1 : x > y);
}

uint64_t
weft_metrics_latency_pct(const weft_metrics *m, double p)
{
	size_t    n = m->nlat < WEFT_LAT_WINDOW ? m->nlat : WEFT_LAT_WINDOW;
	uint32_t *v;
	uint64_t  r;

	if (n == 0) {
		return (0);
	}
	v = malloc(n * sizeof(*v));
	memcpy(v, m->lat_us, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_u32);
	r = v[(size_t) ((p / 100.0) * (double) (n - 1) + 0.5)];
	free(v);
	return (r);
}
