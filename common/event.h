// event: the one list of audit event types and what each one means.
//
// The run model emits them, the store writes their names and projects them
// onto runs and steps, the engine publishes them, the HTTP API hands the
// list to the dashboard (GET /api/v1/meta). All of that is generated from
// WEFT_EVENT_TYPES, so the layers cannot drift apart.
#ifndef WEFT_EVENT_H
#define WEFT_EVENT_H

#include <stdbool.h>

// One line per type:
//   X(SUFFIX, name, scope, terminal, step status, run status)
// - SUFFIX gives WEFT_EV_<SUFFIX>; name is what the store's `type` column,
//   the wire and the API carry (never change one: stored logs keep it);
// - scope: RUN (a run's own event), STEP (about one step or map item of a
//   run), NODE (a cluster event, on the node:<name> topic, no run);
// - terminal: the event ends its step (STEP) or its run (RUN): at most one
//   such event per (run, step, attempt). Exactly the events whose status
//   below is terminal in coordinator/model (step.h, run.h): event_test
//   checks it;
// - step status: the status the store's steps projection takes, or NULL
//   when the event leaves the step row alone;
// - run status: the status the store's runs projection takes, or NULL.
// The order is docs/events.md's; nothing relies on it.
#define WEFT_EVENT_TYPES(X)                                                   \
	X(RUN_QUEUED, "run_queued", RUN, false, NULL, "queued")               \
	X(RUN_STARTED, "run_started", RUN, false, NULL, "running")            \
	X(RUN_PAUSED, "run_paused", RUN, false, NULL, "paused")               \
	X(RUN_RESUMED, "run_resumed", RUN, false, NULL, "running")            \
	X(RUN_RETRIED, "run_retried", RUN, false, NULL, "running")            \
	X(RUN_SUCCEEDED, "run_succeeded", RUN, true, NULL, "succeeded")       \
	X(RUN_FAILED, "run_failed", RUN, true, NULL, "failed")                \
	X(RUN_CANCELLED, "run_cancelled", RUN, true, NULL, "cancelled")       \
	X(RUN_TIMED_OUT, "run_timed_out", RUN, true, NULL, "timed_out")       \
	X(STEP_READY, "step_ready", STEP, false, "ready", NULL)               \
	X(STEP_DISPATCHED, "step_dispatched", STEP, false, "dispatched", NULL) \
	X(STEP_STARTED, "step_started", STEP, false, "running", NULL)         \
	X(STEP_SUCCEEDED, "step_succeeded", STEP, true, "succeeded", NULL)    \
	X(STEP_FAILED, "step_failed", STEP, true, "failed", NULL)             \
	X(STEP_RETRY_SCHEDULED, "step_retry_scheduled", STEP, false,          \
	    "retry_wait", NULL)                                               \
	X(STEP_TIMED_OUT, "step_timed_out", STEP, false, NULL, NULL)          \
	X(STEP_LOST, "step_lost", STEP, false, NULL, NULL)                    \
	X(STEP_SKIPPED, "step_skipped", STEP, true, "skipped", NULL)          \
	X(STEP_CANCELLED, "step_cancelled", STEP, true, "cancelled", NULL)    \
	X(STEP_EXPANDED, "step_expanded", STEP, false, "running", NULL)       \
	X(RESULT_IGNORED, "result_ignored", STEP, false, NULL, NULL)          \
	X(WORKER_JOINED, "worker_joined", NODE, false, NULL, NULL)            \
	X(WORKER_LOST, "worker_lost", NODE, false, NULL, NULL)                \
	X(DEFINITION_REGISTERED, "definition_registered", NODE, false, NULL,  \
	    NULL)                                                             \
	X(NODE_CONFLICT, "node_conflict", NODE, false, NULL, NULL)            \
	X(STEP_PROGRESS, "step_progress", STEP, false, NULL, NULL)            \
	X(RUNS_DELETED, "runs_deleted", NODE, false, NULL, NULL)              \
	X(STEP_UNSCHEDULABLE, "step_unschedulable", STEP, false, NULL, NULL)  \
	X(STEP_SCHEDULABLE, "step_schedulable", STEP, false, NULL, NULL)  \
	X(STEP_RELEASED, "step_released", STEP, false, "ready", NULL)         \
	X(WORKER_DRAINING, "worker_draining", NODE, false, NULL, NULL)        \
	X(WORKER_LEFT, "worker_left", NODE, false, NULL, NULL)                \
	X(STEP_SIGNALED, "step_signaled", STEP, false, NULL, NULL)            \
	X(STEP_UPSTREAM_FAILED, "step_upstream_failed", STEP, true,          \
	    "upstream_failed", NULL)                             \
	X(CHILD_STARTED, "child_started", STEP, false, NULL, NULL)            \
	X(CHILD_ENDED, "child_ended", STEP, false, NULL, NULL)                \
	X(RUN_SCHEDULED, "run_scheduled", RUN, false, NULL, "scheduled")      \
	X(SCHEDULE_FIRED, "schedule_fired", NODE, false, NULL, NULL)          \
	X(SCHEDULE_CREATED, "schedule_created", NODE, false, NULL, NULL)      \
	X(SCHEDULE_PAUSED, "schedule_paused", NODE, false, NULL, NULL)        \
	X(SCHEDULE_RESUMED, "schedule_resumed", NODE, false, NULL, NULL)      \
	X(SCHEDULE_DELETED, "schedule_deleted", NODE, false, NULL, NULL)      \
	X(SCHEDULE_SKIPPED, "schedule_skipped", NODE, false, NULL, NULL)

enum weft_event_type {
#define WEFT_EVENT_ENUM(sfx, name, scope, term, step_st, run_st) WEFT_EV_##sfx,
	WEFT_EVENT_TYPES(WEFT_EVENT_ENUM)
#undef WEFT_EVENT_ENUM
	WEFT_EV_COUNT
};

enum weft_event_scope {
	WEFT_EV_SCOPE_RUN,  // run_id set, no step
	WEFT_EV_SCOPE_STEP, // run_id and step set
	WEFT_EV_SCOPE_NODE, // cluster event: no run
};

// weft_event_name returns the stored name of t ("step_ready"); static
// storage. Any thread. An out-of-range t is a bug: it asserts.
const char *weft_event_name(enum weft_event_type t);

// weft_event_from_name finds the type called name (borrowed; NULL is
// refused) and stores it in *out. False, leaving *out alone, if unknown.
bool weft_event_from_name(const char *name, enum weft_event_type *out);

// weft_event_scope returns t's scope; weft_event_scope_name the scope's
// name ("run", "step", "node"; static storage).
enum weft_event_scope weft_event_scope(enum weft_event_type t);
const char           *weft_event_scope_name(enum weft_event_scope s);

// weft_event_terminal reports whether t ends its step (STEP scope) or its
// run (RUN scope).
bool weft_event_terminal(enum weft_event_type t);

// weft_event_step_status returns the step status the store projects t to
// ("retry_wait"), NULL when t does not change the step row; static.
const char *weft_event_step_status(enum weft_event_type t);

// weft_event_run_status returns the run status the store projects t to
// ("running"), NULL when t does not change the run row; static.
const char *weft_event_run_status(enum weft_event_type t);

#endif
