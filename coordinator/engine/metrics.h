// metrics: counters and histograms the coordinator exports on /metrics
// (Prometheus text format), plus a window of recent commit latencies for
// exact percentiles in `weft info`.
#ifndef WEFT_METRICS_H
#define WEFT_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define WEFT_HIST_MAX 16

// A histogram with fixed upper bounds; observations from any thread.
typedef struct weft_hist {
	const double    *bounds;  // ascending upper bounds (static)
	int              nbounds; // <= WEFT_HIST_MAX
	_Atomic uint64_t buckets[WEFT_HIST_MAX + 1]; // last one: +Inf
	_Atomic uint64_t count;
	_Atomic uint64_t sum_micro; // sum of observations x 1e6
} weft_hist;

#define WEFT_LAT_WINDOW 4096

typedef struct weft_metrics {
	weft_hist step_seconds;   // step attempt durations
	weft_hist commit_seconds; // store commit latency
	weft_hist batch_events;   // events per committed batch
	_Atomic uint64_t ready_depth;   // steps on the ready queues
	_Atomic uint64_t workers_alive;
	_Atomic uint64_t runs_in_memory; // runs the engine holds (live or
	                                 // ending this iteration)
	_Atomic uint64_t defs_cached;    // compiled definitions cached
	_Atomic uint64_t commit_us_total; // sum of commit latencies
	_Atomic uint64_t p50_us, p99_us;  // of the window, refreshed 4 times/s
	// Recent commit latencies in us (the thread that commits only).
	uint32_t lat_us[WEFT_LAT_WINDOW];
	uint64_t nlat; // total observed; the window holds the last ones
	int64_t  pct_at; // mono ms of the last percentile refresh
} weft_metrics;

// weft_metrics_init sets the bucket bounds of every histogram.
void weft_metrics_init(weft_metrics *m);

// weft_hist_observe adds one observation v (in the histogram's unit).
void weft_hist_observe(weft_hist *h, double v);

// weft_hist_write prints h in Prometheus text format under name.
void weft_hist_write(FILE *f, const char *name, const char *help,
    const weft_hist *h);

// weft_metrics_commit records one commit of n events taking us
// microseconds (the thread that commits: the store thread).
void weft_metrics_commit(weft_metrics *m, size_t n, int64_t us);

// weft_metrics_latency_pct returns the p-th percentile (0..100) of the
// recent commit latencies in us, 0 when none (engine thread).
uint64_t weft_metrics_latency_pct(const weft_metrics *m, double p);

#endif
