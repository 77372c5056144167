// admission: which concurrency limit holds a queued run back, and the
// parsing of the coordinator's scheduling flags (--limit TYPE=N,
// --order). Pure; the engine (engine/admit.c) keeps the counts.
//
// A run is admitted (queued -> running) when each limit that applies to it
// has room: the coordinator's --max-running-runs, its definition's
// max_concurrent_runs and its concurrency key's limit. Runs waiting are
// admitted by priority (higher first), then age.
#ifndef WEFT_ADMISSION_H
#define WEFT_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

// Checked in this order: the first full one is the reason reported.
enum weft_limit_kind {
	WEFT_LIMIT_NONE,
	WEFT_LIMIT_RUNS, // --max-running-runs
	WEFT_LIMIT_DEF,  // the definition's max_concurrent_runs
	WEFT_LIMIT_KEY,  // the definition's concurrency key
};

// One limit's use: running now, and the limit (0 = none).
typedef struct weft_limit_use {
	uint32_t running;
	uint32_t limit;
} weft_limit_use;

// weft_limit_admit returns the first limit among runs, def and key (any
// may be NULL: does not apply) that is full, or WEFT_LIMIT_NONE.
enum weft_limit_kind weft_limit_admit(const weft_limit_use *runs,
    const weft_limit_use *def, const weft_limit_use *key);

// weft_limit_reason names kind as a waiting_for reason: "max_running_runs",
// "max_concurrent_runs" or "concurrency_key" ("" for none).
const char *weft_limit_reason(enum weft_limit_kind kind);

// weft_limit_waiting_for returns the waiting_for object of a queued run
// held back by kind ({"reason", "message", "running", "limit"[, "key"]});
// key (borrowed) is the run's concurrency key or NULL. New reference.
json_t *weft_limit_waiting_for(enum weft_limit_kind kind,
    const weft_limit_use *use, const char *key);

// weft_limit_parse_type parses a --limit argument "TYPE=N" (N >= 1): the
// type into type (typelen bytes), N into *n. False with err set (naming
// the argument) when malformed.
bool weft_limit_parse_type(const char *arg, char *type, size_t typelen,
    uint32_t *n, char *err, size_t errlen);

// weft_order_parse parses --order: "fifo" (*critical false) or
// "critical-path" (true). False with err set otherwise.
bool weft_order_parse(const char *arg, bool *critical, char *err,
    size_t errlen);

#endif
