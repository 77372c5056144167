// hold: the step types the coordinator runs itself, holding no worker
// slot: `wait` (ends when a signal is delivered to its run), `delay` and
// `sleep_until` (durable timers: the deadline is in the step's
// step_started event, and recovery arms it again).
//
// Pure: the definition checks, and the deadline of a timer step from its
// rendered `with`. The transitions are in run.c (weft_run_hold_*).
#ifndef WEFT_HOLD_H
#define WEFT_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

enum weft_hold {
	WEFT_HOLD_NONE,   // a worker runs it
	WEFT_HOLD_SIGNAL, // "wait": until a signal (or its timeout)
	WEFT_HOLD_TIMER,  // "delay", "sleep_until": until a wall time
	WEFT_HOLD_CHILD,  // "workflow": until its child run ends (subwf)
};

// The longest signal name, and the characters a name may use.
#define WEFT_HOLD_NAME_MAX 128
#define WEFT_HOLD_NAME_CHARS "_.-"

// weft_hold_kind says who runs a step of type (borrowed): the
// coordinator (SIGNAL, TIMER) or a worker (NONE). Any thread.
enum weft_hold weft_hold_kind(const char *type);

// weft_hold_name_ok reports whether name (borrowed, may be NULL) is a valid
// signal name: 1-WEFT_HOLD_NAME_MAX of A-Z a-z 0-9 _ . -.
bool weft_hold_name_ok(const char *name);

// weft_hold_check validates the `with` (borrowed, may be NULL) of a step of
// type at define time: wait {"signal": NAME, "timeout_ms"?: N}, delay
// {"ms": N | "${...}"}, sleep_until {"at": RFC3339 | epoch ms | "${...}"};
// nothing else. *timeout_ms gets a wait's timeout_ms (unchanged when it
// has none). WEFT_EDEF with a message (what field, why) in err.
weft_err weft_hold_check(const char *type, const json_t *with,
    uint32_t *timeout_ms, char *err, size_t errlen);

// weft_hold_check_child validates the `with` (borrowed, may be NULL) of a
// "workflow" step at define time: {"name": NAME, "version"?: N >= 1,
// "input"?: {...}, "params"?: {...}}; the name is literal (the registry
// is asked for it at define time), input and params may hold templates.
// WEFT_EDEF with a message (what field, why) in err.
weft_err weft_hold_check_child(const json_t *with, char *err, size_t errlen);

// weft_hold_deadline computes when a timer step of type ends, from its
// rendered `with` (borrowed) and now (wall ms): now + ms for delay, at for
// sleep_until. WEFT_EINVAL with a message in err when a value rendered
// from a template is not one (a delay of "abc", a time that is not).
weft_err weft_hold_deadline(const char *type, const json_t *with,
    int64_t now, int64_t *at_ms, char *err, size_t errlen);

#endif
