// readyq: a binary heap of ready units (readyq.h).
#include <stdlib.h>

#include "alloc.h"
#include "readyq.h"

int64_t
weft_readyq_key(int32_t priority, int64_t ready_ms, int64_t aging_ms)
{
	int64_t t;

	if (aging_ms <= 0) {
		return ((int64_t) priority);
	}
	// floor division: a clock before the epoch is not expected, but a
	// test's clock may start at 0.
	t = ready_ms >= 0 ? ready_ms / aging_ms
	                  : -((-ready_ms + aging_ms - 1) / aging_ms);
	return ((int64_t) priority - t);
}

// readyq_before tells whether a goes out before b.
static bool
readyq_before(const weft_readyq_ent *a, const weft_readyq_ent *b)
{
	if (a->key != b->key) {
		return (a->key > b->key);
	}
	if (a->rank != b->rank) {
		return (a->rank > b->rank);
	}
	return (a->seq < b->seq);
}

static void
readyq_up(weft_readyq *q, size_t i)
{
	weft_readyq_ent ent = q->ents[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!readyq_before(&ent, &q->ents[p])) {
			break;
		}
		q->ents[i] = q->ents[p];
		i          = p;
	}
	q->ents[i] = ent;
}

static void
readyq_down(weft_readyq *q, size_t i)
{
	weft_readyq_ent ent = q->ents[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= q->count) {
			break;
		}
		if (c + 1 < q->count && readyq_before(&q->ents[c + 1], &q->ents[c])) {
			c++;
		}
		if (!readyq_before(&q->ents[c], &ent)) {
			break;
		}
		q->ents[i] = q->ents[c];
		i          = c;
	}
	q->ents[i] = ent;
}

void
weft_readyq_push(weft_readyq *q, int64_t key, int64_t rank, weft_run *run,
    weft_ref unit)
{
	if (q->count == q->cap) {
		q->cap  = q->cap ? q->cap * 2 : 1024;
		q->ents = weft_xrealloc(q->ents, q->cap * sizeof(*q->ents));
	}
	q->ents[q->count] = (weft_readyq_ent) { .key = key, .rank = rank,
		.seq = q->seq++, .run = run, .unit = unit };
	readyq_up(q, q->count++);
}

bool
weft_readyq_pop(weft_readyq *q, weft_readyq_ent *out)
{
	if (q->count == 0) {
		return (false);
	}
	*out = q->ents[0];
	if (--q->count > 0) {
		q->ents[0] = q->ents[q->count];
		readyq_down(q, 0);
	}
	return (true);
}

size_t
weft_readyq_drop(weft_readyq *q,
    bool (*drop)(const weft_readyq_ent *, void *), void *arg)
{
	size_t n = 0, count = q->count;

	for (size_t k = 0; k < count; k++) {
		if (!drop(&q->ents[k], arg)) {
			q->ents[n++] = q->ents[k];
		}
	}
	q->count = n;
	// Bottom-up heapify: O(n).
	for (size_t i = n / 2; i-- > 0;) {
		readyq_down(q, i);
	}
	return (count - n);
}

void
weft_readyq_fini(weft_readyq *q)
{
	free(q->ents);
	q->ents  = NULL;
	q->count = q->cap = 0;
}
