// readyq: the ready units of one step type, in dispatch order. A binary
// max-heap on (key desc, rank desc, seq asc): the highest effective
// priority first, then the longest expected remaining path (critical path
// first; 0 for all under --order fifo), then the oldest. Push and pop are
// O(log n); dropping entries (a run ended, a unit left ready without a
// worker) is one O(n) pass, for rare events.
//
// Pure: no clock, no engine. The engine (sched.c) owns one per step type.
#ifndef WEFT_READYQ_H
#define WEFT_READYQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "run.h"

typedef struct weft_readyq_ent {
	int64_t   key;  // effective priority (weft_readyq_key): higher first
	int64_t   rank; // expected remaining path in ms: longer first
	uint64_t  seq;  // push order: older first
	weft_run *run;  // the caller's (sched.c holds a reference)
	weft_ref  unit;
} weft_readyq_ent;

typedef struct weft_readyq {
	weft_readyq_ent *ents; // heap order (owned)
	size_t           count, cap;
	uint64_t         seq;  // pushes so far
} weft_readyq;

// weft_readyq_key gives the heap key of a unit of priority made ready at
// ready_ms (ms on any clock that does not go back). aging_ms 0: the
// priority itself. aging_ms > 0: one more priority per aging_ms waited,
// as priority - floor(ready_ms / aging_ms): the difference between two
// entries is then the same at any later time, so the heap never needs
// re-keying (units made ready in the same aging_ms window with the same
// priority tie, and rank then seq decide).
int64_t weft_readyq_key(int32_t priority, int64_t ready_ms, int64_t aging_ms);

// weft_readyq_push adds an entry (run borrowed: the caller keeps it alive
// while queued).
void weft_readyq_push(weft_readyq *q, int64_t key, int64_t rank,
    weft_run *run, weft_ref unit);

// weft_readyq_pop removes the first entry into *out; false when empty.
bool weft_readyq_pop(weft_readyq *q, weft_readyq_ent *out);

// weft_readyq_drop calls drop(ent, arg) once for every entry and removes
// those it returns true for (it may let go of their run then); the rest
// keep their order. Returns how many were removed.
size_t weft_readyq_drop(weft_readyq *q,
    bool (*drop)(const weft_readyq_ent *, void *), void *arg);

// weft_readyq_fini frees the entries' array (not what they point to).
void weft_readyq_fini(weft_readyq *q);

#endif
