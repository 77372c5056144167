// durations: what weft learned of how long each step of a definition
// version takes, and the expected remaining critical path of a run.
//
// A step's statistics: count and mean over every success ever recorded,
// and p50 and p95 over a sliding window of the last WEFT_DUR_WINDOW
// durations (a bounded reservoir: exact quantiles of recent history,
// so a step that got slower shows it within WEFT_DUR_WINDOW runs).
// Expected durations are the window's p50: one slow outlier does not
// move it, where it would move the mean.
//
// Pure: the engine (engine/learn.c) feeds it step_succeeded durations,
// persists it and asks for paths.
#ifndef WEFT_DURATIONS_H
#define WEFT_DURATIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "def.h"

#define WEFT_DUR_WINDOW 64

typedef struct weft_dur {
	uint64_t count;   // durations ever added
	int64_t  sum_ms;  // their sum (for the mean)
	uint32_t n;       // in the window (<= WEFT_DUR_WINDOW)
	uint32_t next;    // where the next one goes (ring)
	int32_t  win[WEFT_DUR_WINDOW]; // ms, at most INT32_MAX (24.8 days):
	                               // ~280 bytes per step with history
} weft_dur;

// weft_dur_add records one duration (ms; negative counts as 0, more than
// INT32_MAX as INT32_MAX in the window).
void weft_dur_add(weft_dur *d, int64_t ms);

// weft_dur_quantile gives the q-quantile (0..1, nearest rank) of the
// window, -1 when empty. weft_dur_mean: -1 when nothing was added.
int64_t weft_dur_quantile(const weft_dur *d, double q);
int64_t weft_dur_mean(const weft_dur *d);

// weft_dur_json returns {"count", "mean_ms", "p50_ms", "p95_ms"} (new ref).
json_t *weft_dur_json(const weft_dur *d);

// weft_dur_samples_text returns the window oldest first as a JSON array
// (malloc'd), for the store; weft_dur_load rebuilds d from count, sum and
// such a text. False (d zeroed) when the text is not an array of integers.
char *weft_dur_samples_text(const weft_dur *d);
bool  weft_dur_load(weft_dur *d, uint64_t count, int64_t sum_ms,
     const char *samples);

// weft_dur_paths computes, for every step i of def, the longest expected
// path from i to the end: path[i] = cost[i] + the largest path of its
// dependents that have not ended. cost[i] is the expected remaining ms of
// step i (< 0: unknown), ended[i] (NULL: none ended) marks steps done,
// whose path is 0. Unknown costs count as 0 in path, and *unknown (when
// not NULL) says whether any step not ended had one. Returns the longest
// path over every step not ended: the run's expected remaining time.
// O(steps + dependencies); path has def->nsteps entries.
int64_t weft_dur_paths(const weft_def *def, const int64_t *cost,
    const bool *ended, int64_t *path, bool *unknown);

#endif
