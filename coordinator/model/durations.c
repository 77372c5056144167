// durations: learned step durations and critical paths (durations.h).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "durations.h"

void
weft_dur_add(weft_dur *d, int64_t ms)
{
	if (ms < 0) {
		ms = 0;
	}
	d->count++;
	d->sum_ms += ms;
	d->win[d->next] = ms > INT32_MAX ? INT32_MAX : (int32_t) ms;
	d->next         = (d->next + 1) % WEFT_DUR_WINDOW;
	if (d->n < WEFT_DUR_WINDOW) {
		d->n++;
	}
}

static int
dur_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
	return ((x > y) - (x < y));
}

int64_t
weft_dur_quantile(const weft_dur *d, double q)
{
	int64_t s[WEFT_DUR_WINDOW];
	size_t  k;

	if (d->n == 0) {
		return (-1);
	}
	for (uint32_t i = 0; i < d->n; i++) {
		s[i] = d->win[i];
	}
	qsort(s, d->n, sizeof(s[0]), dur_cmp);
	// Nearest rank: the smallest value with at least q of them at or
	// below it.
	k = (size_t) (q * (double) d->n + 0.999999);
	if (k < 1) {
		k = 1;
	}
	if (k > d->n) {
		k = d->n;
	}
	return (s[k - 1]);
}

int64_t
weft_dur_mean(const weft_dur *d)
{
	return (d->count == 0 ? -1 : d->sum_ms / (int64_t) d->count);
}

json_t *
weft_dur_json(const weft_dur *d)
{
	return (json_pack("{s:I, s:I, s:I, s:I}", "count", (json_int_t) d->count,
	    "mean_ms", (json_int_t) weft_dur_mean(d), "p50_ms",
	    (json_int_t) weft_dur_quantile(d, 0.5), "p95_ms",
	    (json_int_t) weft_dur_quantile(d, 0.95)));
}

// Written with sprintf, not built as a jansson array and dumped: every
// step that succeeds makes its row dirty, and on W1 (10,000 steps) the
// array, its integers and the dump were a share of the engine thread.
char *
weft_dur_samples_text(const weft_dur *d)
{
	// "[" + each sample (at most 11 characters and a comma) + "]".
	char  *text  = weft_xalloc(2 + (size_t) WEFT_DUR_WINDOW * 12 + 1);
	size_t first = d->n < WEFT_DUR_WINDOW ? 0 : d->next;
	size_t o     = 0;

	text[o++] = '[';
	for (size_t k = 0; k < d->n; k++) {
		o += (size_t) sprintf(text + o, "%s%" PRId32, k > 0 ? "," : "",
		    d->win[(first + k) % WEFT_DUR_WINDOW]);
	}
	text[o++] = ']';
	text[o]   = '\0';
	return (text);
}

bool
weft_dur_load(weft_dur *d, uint64_t count, int64_t sum_ms, const char *samples)
{
	json_t *a = samples != NULL ? json_loads(samples, 0, NULL) : NULL;
	json_t *v;
	size_t  k, n;

	memset(d, 0, sizeof(*d));
	if (!json_is_array(a)) {
		json_decref(a);
		return (false);
	}
	n = json_array_size(a);
	// The newest WEFT_DUR_WINDOW, should the window have shrunk.
	json_array_foreach (a, k, v) {
		if (!json_is_integer(v)) {
			json_decref(a);
			memset(d, 0, sizeof(*d));
			return (false);
		}
		if (n - k <= WEFT_DUR_WINDOW) {
			weft_dur_add(d, json_integer_value(v));
		}
	}
	json_decref(a);
	d->count  = count > d->count ? count : d->count;
	d->sum_ms = count > 0 ? sum_ms : d->sum_ms;
	return (true);
}

int64_t
weft_dur_paths(const weft_def *def, const int64_t *cost, const bool *ended,
    int64_t *path, bool *unknown)
{
	size_t    n     = def->nsteps;
	uint32_t *left  = weft_xalloc((n + 1) * sizeof(*left));
	uint32_t *order = weft_xalloc((n + 1) * sizeof(*order));
	size_t    head = 0, tail = 0;
	int64_t   best = 0;

	if (unknown != NULL) {
		*unknown = false;
	}
	// Kahn's order from the sinks back: a step is done once every
	// dependent is.
	for (size_t i = 0; i < n; i++) {
		left[i] = (uint32_t) def->steps[i].nouts;
		if (left[i] == 0) {
			order[tail++] = (uint32_t) i;
		}
	}
	while (head < tail) {
		uint32_t             i  = order[head++];
		const weft_def_step *st = &def->steps[i];
		int64_t              after = 0;
		for (size_t k = 0; k < st->nouts; k++) {
			if (path[st->outs[k]] > after) {
				after = path[st->outs[k]];
			}
		}
		if (ended != NULL && ended[i]) {
			path[i] = 0;
		} else {
			if (cost[i] < 0 && unknown != NULL) {
				*unknown = true;
			}
			path[i] = (cost[i] > 0 ? cost[i] : 0) + after;
			best    = path[i] > best ? path[i] : best;
		}
		for (size_t k = 0; k < st->ndeps; k++) {
			if (--left[st->deps[k]] == 0) {
				order[tail++] = st->deps[k];
			}
		}
	}
	free(left);
	free(order);
	return (best);
}
