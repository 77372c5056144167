// step: the pure state machine of one step of a run.
//
// (state, input, can_retry) -> next state, or WEFT_ESTATE for an illegal pair.
// No I/O, no clock, no allocation: the engine decides what the transition
// means (events, effects); this only says whether it may happen.
#ifndef WEFT_STEP_H
#define WEFT_STEP_H

#include <stdbool.h>

#include "err.h"

// States in order; terminal states come last and weft_step_terminal relies
// on that order.
#define WEFT_STEP_STATE_MAP(X)                                              \
	X(PENDING, "pending")       /* waiting for its dependencies */      \
	X(READY, "ready")           /* waiting for a worker with a slot */  \
	X(DISPATCHED, "dispatched") /* sent, waiting for the worker's yes */ \
	X(RUNNING, "running")       /* accepted, waiting for the result */  \
	X(RETRY_WAIT, "retry_wait") /* waiting for the backoff to expire */ \
	X(SUCCEEDED, "succeeded")   /* terminal */                          \
	X(FAILED, "failed")         /* terminal */                          \
	X(SKIPPED, "skipped")       /* terminal: trigger or when said no */ \
	X(CANCELLED, "cancelled")   /* terminal */                          \
	X(UPSTREAM_FAILED, "upstream_failed") /* terminal: upstream failed */

enum weft_step_state {
#define WEFT_STEP_STATE_ENUM(name, str) WEFT_STEP_##name,
	WEFT_STEP_STATE_MAP(WEFT_STEP_STATE_ENUM)
#undef WEFT_STEP_STATE_ENUM
	WEFT_STEP_NSTATES
};

#define WEFT_STEP_INPUT_MAP(X)                                          \
	X(DEPS_MET, "deps_met")       /* dependencies done, rule says run */ \
	X(DEPS_UNMET, "deps_unmet")   /* dependencies done, rule says skip */ \
	X(DISPATCH, "dispatch")       /* handed to a worker */               \
	X(ACCEPTED, "accepted")       /* worker said yes */                  \
	X(REJECTED, "rejected")       /* worker said no, or unreachable */   \
	X(RESULT_OK, "result_ok")     /* the attempt succeeded */            \
	X(RESULT_FAIL, "result_fail") /* the attempt failed */               \
	X(LOST, "lost")               /* the worker holding it is gone */    \
	X(TIMEOUT, "timeout")         /* the attempt ran out of time */      \
	X(RETRY_DUE, "retry_due")     /* backoff expired */                  \
	X(CANCEL, "cancel")           /* the run is cancelled */             \
	X(RETRY, "retry")             /* operator retry of an ended step */ \
	X(EXPAND, "expand")           /* a map step became its items */    \
	X(RELEASED, "released")       /* a draining worker handed it back */ \
	X(DEPS_FAILED, "deps_failed") /* rule says upstream_failed */ \
	X(RERUN, "rerun")             /* retry from a step: any end, again */

enum weft_step_input {
#define WEFT_STEP_INPUT_ENUM(name, str) WEFT_STEP_IN_##name,
	WEFT_STEP_INPUT_MAP(WEFT_STEP_INPUT_ENUM)
#undef WEFT_STEP_INPUT_ENUM
	WEFT_STEP_NINPUTS
};

// weft_step_next computes the state after input `in` in state `from`.
// can_retry says whether the retry policy allows another attempt (used by
// RESULT_FAIL, LOST and TIMEOUT). Returns WEFT_ESTATE, leaving *to alone,
// when the pair is illegal: stale and duplicate messages are normal.
weft_err weft_step_next(enum weft_step_state from, enum weft_step_input in,
    bool can_retry, enum weft_step_state *to);

// weft_step_terminal reports whether s is a terminal state.
bool weft_step_terminal(enum weft_step_state s);

// weft_step_state_name / weft_step_input_name: lowercase names; static.
const char *weft_step_state_name(enum weft_step_state s);
const char *weft_step_input_name(enum weft_step_input in);

// weft_step_state_parse maps a name back to a state; false if unknown.
bool weft_step_state_parse(const char *name, enum weft_step_state *out);

#endif
