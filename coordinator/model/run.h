// run: one workflow run: its state machine and the bookkeeping of its steps.
//
// Everything here is pure: functions take the run, an input and `now`, change
// the run, and append events and effects to a weft_out. No I/O, no clock, no
// logging. The engine turns the output into store writes, then messages.
#ifndef WEFT_RUN_H
#define WEFT_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "def.h"
#include "err.h"
#include "event.h"
#include "id.h"
#include "step.h"

// Run states; terminal states last (weft_run_terminal relies on it).
#define WEFT_RUN_STATE_MAP(X)                                                \
	X(QUEUED, "queued")       /* accepted, waiting to start */           \
	X(SCHEDULED, "scheduled") /* waits for its start_at (a timer) */     \
	X(RUNNING, "running")     /* steps are being scheduled */            \
	X(PAUSED, "paused")       /* nothing new dispatched; in-flight ends */ \
	X(SUCCEEDED, "succeeded") /* terminal */                             \
	X(FAILED, "failed")       /* terminal: a step failed for good */     \
	X(CANCELLED, "cancelled") /* terminal */                             \
	X(TIMED_OUT, "timed_out") /* terminal: the run's timeout expired */

enum weft_run_state {
#define WEFT_RUN_STATE_ENUM(name, str) WEFT_RUN_##name,
	WEFT_RUN_STATE_MAP(WEFT_RUN_STATE_ENUM)
#undef WEFT_RUN_STATE_ENUM
	WEFT_RUN_NSTATES
};

#define WEFT_RUN_INPUT_MAP(X)                                        \
	X(START, "start")             /* begin scheduling */         \
	X(PAUSE, "pause")             /* operator pause */           \
	X(RESUME, "resume")           /* operator resume */          \
	X(DONE_OK, "done_ok")         /* every step ended, none failed */ \
	X(DONE_FAILED, "done_failed") /* every step ended, some failed */ \
	X(CANCEL, "cancel")           /* operator cancel */          \
	X(TIMEOUT, "timeout")         /* run deadline expired */     \
	X(RETRY, "retry")             /* operator retry of an ended run */ \
	X(SCHEDULE, "schedule")       /* delayed start: wait for start_at */ \
	X(RETRY_FROM, "retry_from")   /* operator retry from a step, any end */

enum weft_run_input {
#define WEFT_RUN_INPUT_ENUM(name, str) WEFT_RUN_IN_##name,
	WEFT_RUN_INPUT_MAP(WEFT_RUN_INPUT_ENUM)
#undef WEFT_RUN_INPUT_ENUM
	WEFT_RUN_NINPUTS
};

// weft_run_next computes the run state after `in`; WEFT_ESTATE when illegal.
weft_err weft_run_next(
    enum weft_run_state from, enum weft_run_input in, enum weft_run_state *to);

bool        weft_run_terminal(enum weft_run_state s);
const char *weft_run_state_name(enum weft_run_state s);
const char *weft_run_input_name(enum weft_run_input in);
bool        weft_run_state_parse(const char *name, enum weft_run_state *out);

// A unit of work: a step, or one item of a map step ("fetch[3]").
typedef struct weft_ref {
	long step; // index in the definition
	long item; // index in the map step's list, -1 for the step itself
} weft_ref;

#define WEFT_REF(i) ((weft_ref) { (long) (i), -1 })

// Runtime state of one step of a run, or of one item of a map step (the
// same fields serve both; only a step has waiting and items).
typedef struct weft_step_rt {
	enum weft_step_state state;
	uint32_t             attempt;    // current attempt, 1-based; 0 before
	uint32_t             waiting;    // dependencies not yet ended
	uint32_t             lost;       // attempts lost with their worker
	uint32_t             failures;   // attempts that failed or timed out
	json_t              *output;     // when succeeded (owned)
	char                *error;      // when failed (owned)
	int                  exit_code;  // when failed: the failing attempt's
	                                 // exit code, 0 for none (recovery
	                                 // reads it from step_failed)
	int64_t              started_ms; // wall ms of the current attempt
	int64_t              due_ms;     // retry_wait: when ready again (wall)
	char                 node[64];   // worker holding the attempt, or ""
	bool                 queued;     // on the engine's ready queue
	int64_t              sched_due_ms; // engine: wall ms its schedule
	                                   // timeout is armed for, 0 none;
	                                   // cleared when it leaves ready
	bool                 unschedulable; // step_unschedulable written,
	                                    // step_schedulable not yet
	uint64_t             reconcile_from; // engine: the first survey round
	                                     // whose answer must list the
	                                     // attempt (surveyed after its
	                                     // worker accepted it); 0 any,
	                                     // UINT64_MAX not accepted yet
	// Map steps, once expanded: one unit per element of the list. The
	// step itself is then running until every item has ended.
	struct weft_step_rt *items;      // nitems entries (owned)
	json_t              *list;       // the expanded list (owned)
	uint32_t             nitems;
	uint32_t             items_next;   // first item not yet made ready
	uint32_t             items_ended;  // items in a terminal state
	uint32_t             items_failed; // items ended failed
	uint32_t             items_active; // ready, in flight or retry_wait
	uint32_t             items_attempts; // highest item attempt so far:
	                                     // a re-expansion counts on from it
	uint32_t             items_low;  // every item below it has ended: what
	                                 // may be in flight is in [items_low,
	                                 // items_next) (weft_run_items_live)
	// The last step_progress recorded (weft_run_progress): which
	// attempt, a hash of the value, when (wall ms); 0: none yet.
	uint32_t             progress_attempt;
	uint64_t             progress_hash;
	int64_t              progress_ms;
	// An "expand" step, once its expansion is spliced in: it stays
	// running, holding no worker, until every step of it has ended
	// (its output meanwhile: what the worker returned).
	uint32_t             exp_total;  // steps of its expansion, 0 none
	uint32_t             exp_ended;  // of which in a terminal state
	uint32_t             exp_failed; // of which failed
} weft_step_rt;

typedef struct weft_run {
	char                id[WEFT_ID_LEN + 1];
	const weft_def     *def;       // borrowed from the engine's cache, or
	                               // def_own once an expansion is in
	const weft_def     *def_base;  // the definition it started from
	                               // (borrowed: what the engine caches)
	weft_def           *def_own;   // def with expansions spliced in
	                               // (owned), NULL when none
	enum weft_run_state state;
	json_t             *input;     // run input (owned)
	json_t             *params;    // bound params (owned)
	uint64_t            seq;       // last per-run event sequence used
	weft_step_rt       *steps;     // def->nsteps entries (owned)
	size_t              nended;    // steps in a terminal state
	size_t              nfailed;   // steps ended failed
	int64_t             created_ms;
	int64_t             deadline_ms; // wall ms when the run times out, 0 none
	bool                secrets;   // input or params hold secrets (secret.h)
	json_t             *secret_values; // strings to scrub from recorded
	                                   // text (owned), NULL when none
	// Engine bookkeeping; run.c never reads these.
	int                 refs;  // ready-queue entries and timers on it
	uint32_t            nqueued; // of which ready-queue entries
	bool                reaping; // queued for freeing this iteration
	uint64_t            pin_gen; // the last commit batch that holds a
	                             // reference on it (engine.c)
	bool                secrets_lost; // its sealed secrets would not open:
	                                  // nothing more is dispatched
	char               *wire_input;  // input and params as JSON text for
	char               *wire_params; // assignment messages, made once
	                                 // (sched.c); freed with the run
	// Sub-workflows (engine/subwf.c): the parent run and unit that
	// started this run ("" when none) and the children its workflow
	// units started ({unit name: child run id}, owned, NULL none).
	char                parent[WEFT_ID_LEN + 1];
	weft_ref            parent_unit;
	uint32_t            parent_attempt;
	uint32_t            depth;    // ancestors: 0 for a run nobody started
	json_t             *children;
	int64_t             start_at_ms; // delayed start: wall ms it waits
	                                 // for while scheduled, 0 none
	// Scheduling (engine/admit.c): the priority its units are ordered
	// by, its concurrency key (owned, NULL none), and whether it holds
	// a place under the concurrency limits.
	int32_t             priority;
	char               *limit_key;
	bool                admitted;
	struct learn_def   *learned; // engine/learn.c: its definition
	                             // version's learned durations
} weft_run;

// One event produced by a transition, before the engine numbers it.
typedef struct weft_out_event {
	enum weft_event_type type; // weft_event_name(type): the stored name
	weft_run            *run;  // NULL for cluster events
	long                 step; // step index, -1 for run events
	long                 item; // map item index, -1 for none
	uint32_t             attempt;
	char                 node[64]; // the worker, copied: units move on
	                               // before commit
	json_t              *data; // taken (owned by the output); NULL: {}
} weft_out_event;

// Effects besides events, applied after the commit.
enum weft_effect_kind {
	WEFT_EFFECT_ENQUEUE,      // put step on the ready queue
	WEFT_EFFECT_RETRY_TIMER,  // at at_ms (wall): retry_due for attempt
	WEFT_EFFECT_STEP_TIMEOUT, // at at_ms (wall): timeout for attempt
	WEFT_EFFECT_RUN_TIMEOUT,  // at at_ms (wall): the run's deadline
	WEFT_EFFECT_ABORT,        // tell `node` to abort the attempt
	WEFT_EFFECT_RUN_ENDED,    // the run reached a terminal state
	WEFT_EFFECT_RELEASE,      // the attempt no longer holds a slot on node
	WEFT_EFFECT_HOLD_TIMER,   // at at_ms (wall): a delay or sleep_until
	                          // step's attempt ends (weft_run_hold_fire)
	WEFT_EFFECT_START_TIMER,  // at at_ms (wall): a scheduled run starts
	                          // (weft_run_start)
};

// Lost attempts are retried this many times whatever the retry policy says:
// losing a worker is not the step's fault.
#define WEFT_RUN_MAX_LOST 3

typedef struct weft_effect {
	enum weft_effect_kind kind;
	weft_run             *run;
	long                  step;
	long                  item;    // map item, -1 for the step itself
	uint32_t              attempt;
	int64_t               at_ms;
	char                  node[64];
} weft_effect;

// The output of a batch of transitions: events then effects, in order.
typedef struct weft_out {
	weft_out_event *events;
	size_t          nevents, cap_events;
	weft_effect    *effects;
	size_t          neffects, cap_effects;
} weft_out;

void weft_out_init(weft_out *o);
void weft_out_reset(weft_out *o); // frees event data, keeps capacity
void weft_out_fini(weft_out *o);

// weft_out_event_add appends an event of type (data taken; NULL means {},
// and costs nothing) and returns it (valid until the next add).
weft_out_event *weft_out_event_add(weft_out *o, enum weft_event_type type,
    weft_run *run, long step, uint32_t attempt, const char *node,
    json_t *data);

// weft_run_alloc makes a queued run of def (borrowed; must outlive the run)
// with input and params (both taken). Emits run_queued.
weft_run *weft_run_alloc(const char *id, const weft_def *def, json_t *input,
    json_t *params, int64_t now, weft_out *o);

// weft_run_free frees the run and what it owns (NULL is fine).
void weft_run_free(weft_run *r);

// weft_run_start moves a queued run to running and resolves its roots.
weft_err weft_run_start(weft_run *r, int64_t now, weft_out *o);

// weft_run_schedule delays queued run r's start until at_ms (wall):
// queued -> scheduled with run_scheduled {"start_at_ms"} and a
// START_TIMER effect at at_ms; the timer then calls weft_run_start
// (scheduled -> running). WEFT_ESTATE when r is not queued.
weft_err weft_run_schedule(weft_run *r, int64_t at_ms, weft_out *o);

// weft_run_schedule_rearm gives restored scheduled run r (start_at_ms
// set) its START_TIMER again, after a restart; a time already past
// fires at once.
void weft_run_schedule_rearm(weft_run *r, weft_out *o);

// weft_run_unit returns the runtime state of unit u, NULL if u is not a
// unit of r (an item beyond the list, or of a step not expanded).
weft_step_rt *weft_run_unit(weft_run *r, weft_ref u);

// weft_run_dispatched records that unit u's next attempt went to node.
weft_err weft_run_dispatched(weft_run *r, weft_ref u, const char *node,
    int64_t now, weft_out *o);

// weft_run_accepted / weft_run_rejected: the worker's answer for attempt.
weft_err weft_run_accepted(weft_run *r, weft_ref u, uint32_t attempt,
    weft_out *o);
weft_err weft_run_rejected(weft_run *r, weft_ref u, uint32_t attempt,
    const char *reason, weft_out *o);

// The ending of an attempt, from a worker's result.
typedef struct weft_result {
	uint32_t    attempt;
	bool        ok;
	json_t     *output;      // borrowed; when ok
	const char *error;       // when not ok
	int         exit_code;
	const char *stderr_tail; // may be ""
	const char *node;        // who reported it
	int64_t     started_ms, finished_ms;
} weft_result;

// weft_run_result applies a result. A result for an attempt that is not the
// current one, or for a step that already ended, is recorded as
// result_ignored (a duplicate of the applied result is dropped silently)
// and returns WEFT_ESTATE.
weft_err weft_run_result(weft_run *r, weft_ref u, const weft_result *res,
    int64_t now, weft_out *o);

// weft_run_lost: the node holding unit u's attempt is gone.
weft_err weft_run_lost(weft_run *r, weft_ref u, int64_t now, weft_out *o);

// weft_run_released: node, draining, hands back unit u's attempt, which
// it never started. The unit is ready again (step_released), at once and
// with no backoff; neither a failure nor a loss, so no retry budget is
// spent. WEFT_ESTATE when u is not in flight on node in that attempt (a
// stale or repeated goodbye, or a node that does not hold it).
weft_err weft_run_released(weft_run *r, weft_ref u, uint32_t attempt,
    const char *node, weft_out *o);

// weft_run_timeout: unit u's attempt ran past its timeout.
weft_err weft_run_timeout(
    weft_run *r, weft_ref u, uint32_t attempt, int64_t now, weft_out *o);

// weft_run_heartbeat_timeout: unit u's attempt `attempt`, in flight on
// node, has been silent for silent_ms (its worker's measure: ms since the
// step last heartbeated, or since it started), at least the step's
// heartbeat_timeout_ms. Emits step_timed_out {"phase": "heartbeat",
// "heartbeat_timeout_ms", "silent_ms"}, an ABORT effect to node, then the
// retry policy decides as for any timeout. WEFT_ESTATE (nothing changes)
// when the attempt is not current or not in flight on node, when the step
// has no heartbeat timeout or when silent_ms is below it.
weft_err weft_run_heartbeat_timeout(weft_run *r, weft_ref u, uint32_t attempt,
    const char *node, int64_t silent_ms, int64_t now, weft_out *o);

// Size limits (docs/operations.md, "Size limits"). They keep every
// message under the wire's 16 MiB (WEFT_WIRE_MAX): a run's input and
// params travel once per assignment message beside the attempts' own
// documents, and a result carries one output.
//
// A run's input and params, as JSON text together: refused at request time.
#define WEFT_RUN_INPUT_MAX ((size_t) 4 << 20)
// One attempt's input document without the run's input and params (its
// `with`, its dependencies' outputs, its item): over it the step fails at
// dispatch, on its first attempt, naming the limit.
#define WEFT_RUN_STEP_INPUT_MAX ((size_t) 8 << 20)
// A step's or map item's output, as JSON text: --max-output's default,
// and its ceiling. A map step's combined output is not bound by it.
#define WEFT_RUN_MAX_OUTPUT_DEFAULT ((uint64_t) 4 << 20)
#define WEFT_RUN_MAX_OUTPUT_CEIL ((uint64_t) 12 << 20)

// Most items of one map step ready or in flight at once when it has no
// max_parallel: the rest are made ready as items end. It bounds the
// events of one commit (a cancel's step_cancelled) and so how long a
// request waits; an explicit max_parallel overrides it.
#define WEFT_RUN_ITEMS_WINDOW 1024u

// The least time between two step_progress events of one unit: progress
// arrives with every survey answer, the event log keeps a sample of it.
#define WEFT_RUN_PROGRESS_MS 2000

// weft_run_progress records the latest progress (borrowed JSON value) of
// unit u's attempt `attempt`, reported by node: a step_progress event
// {"progress": value} when the value differs from the last one recorded for
// the attempt and WEFT_RUN_PROGRESS_MS have passed since that one.
// WEFT_EEXIST when held back (unchanged, or too soon: the next report
// carries it again), WEFT_ESTATE when the attempt is not current and in
// flight on node.
weft_err weft_run_progress(weft_run *r, weft_ref u, uint32_t attempt,
    const char *node, const json_t *progress, int64_t now, weft_out *o);

// weft_run_schedule_timeout: ready unit u (at `attempt`, the count of
// attempts made so far) waited schedule_timeout_ms for a worker:
// step_timed_out {"phase": "schedule"}, then its retry policy decides
// (retry_wait, or failed). WEFT_ESTATE when u is no longer ready at that
// attempt or the run is not running (a paused run's steps do not time out
// waiting; the engine re-arms on resume). The engine checks that the timer
// is the one armed for the current ready period (sched_due_ms).
weft_err weft_run_schedule_timeout(
    weft_run *r, weft_ref u, uint32_t attempt, int64_t now, weft_out *o);

// weft_run_unschedulable writes step_unschedulable for ready unit u (data
// taken: why) once, until weft_run_schedulable writes step_schedulable.
// WEFT_ESTATE (data freed) when u is not ready or was reported already;
// weft_run_schedulable: WEFT_ESTATE when u was not reported.
weft_err weft_run_unschedulable(weft_run *r, weft_ref u, json_t *data,
    weft_out *o);
weft_err weft_run_schedulable(weft_run *r, weft_ref u, json_t *data,
    weft_out *o);

// weft_run_retry_due: unit u's backoff for `attempt` expired.
weft_err weft_run_retry_due(
    weft_run *r, weft_ref u, uint32_t attempt, weft_out *o);

// weft_run_fail_step fails ready unit u without a worker (bad input).
weft_err weft_run_fail_step(
    weft_run *r, weft_ref u, const char *error, int64_t now, weft_out *o);

// weft_run_cancel, weft_run_pause, weft_run_resume, weft_run_expire: the
// run-level inputs; WEFT_ESTATE when the run's state does not take them.
weft_err weft_run_cancel(weft_run *r, const char *reason, weft_out *o);
weft_err weft_run_pause(weft_run *r, weft_out *o);
weft_err weft_run_resume(weft_run *r, weft_out *o);
// weft_run_expire takes the deadline the timer was armed for (a retried
// run has a new one; the old timer then changes nothing).
weft_err weft_run_expire(weft_run *r, int64_t deadline, weft_out *o);

// weft_run_retry restarts an ended, unsuccessful run: failed, cancelled
// and skipped steps go back to pending and are resolved again; the run's
// timeout, if any, counts again from now. Emits run_retried with
// {"steps": [the reset step ids]}, which the store projects to pending.
weft_err weft_run_retry(weft_run *r, int64_t now, weft_out *o);

// weft_run_retry_from restarts an ended run (succeeded too) from step
// `from` (a definition index): that step and every step downstream of it
// go back to pending and run again with new attempt numbers; every other
// step keeps its state, output and attempts (a failed one stays failed,
// so the run fails again). Emits run_retried with {"from": STEP, "steps":
// [the reset step ids, in definition order]}. WEFT_ESTATE when the run
// has not ended, WEFT_EINVAL when from is out of range.
weft_err weft_run_retry_from(weft_run *r, long from, int64_t now,
    weft_out *o);

// weft_run_restore_step sets unit u as the store last recorded it, for
// recovery after a coordinator restart (output borrowed). Restore every
// step before any item: an item's list is computed from its step's
// dependencies. Returns false when u does not exist.
bool weft_run_restore_step(weft_run *r, weft_ref u, enum weft_step_state st,
    uint32_t attempt, const char *node, json_t *output, const char *error);

// weft_run_restore_done finishes a restore: recounts dependencies, queues
// ready steps, makes retry_wait steps ready, resolves pending steps whose
// dependencies ended, and ends the run if nothing is left. Attempts in
// flight stay in flight: their results, or their worker's loss, end them.
void weft_run_restore_done(weft_run *r, weft_out *o);

// weft_run_step_input builds the input document of unit u: {input, params,
// steps: {dep: {status, output[, error]}}, with: rendered}; a map item's
// is {input, params, item, index, with}: no `steps` (its `with` is rendered
// against them). NULL with err set when `with` does not render.
// New reference.
json_t *weft_run_step_input(
    const weft_run *r, weft_ref u, char *err, size_t errlen);

// weft_run_big_fn may replace the text of a dependency's output (an
// array, object or string; text is len bytes, malloc'd, and taken):
// returns what to write in its place (malloc'd; text itself to keep it).
typedef char *(*weft_run_big_fn)(void *arg, char *text, size_t len);

// weft_run_step_input_text writes the input document of unit u as
// weft_run_step_input builds it, without its input and params (they
// travel once per message), straight as JSON text (malloc'd), where the
// document would cost a json_pack per dependency and a dump of the whole
// (a join after 10,000 steps: ~25 ms for 450 KB). Each dependency's output
// passes through big (NULL: none) first. Only for a unit with nothing to
// render: returns NULL for a map item or a step with `with`; build the
// document then.
char *weft_run_step_input_text(
    const weft_run *r, weft_ref u, weft_run_big_fn big, void *arg);

// weft_run_items_live gives the range [*from, *to) of map step i's items
// that may not have ended: the others need no look (a scan of what is in
// flight costs the window, not the list).
void weft_run_items_live(
    const weft_run *r, long i, uint32_t *from, uint32_t *to);

// weft_ref_name writes the unit's name ("load", or "load[3]" for an item)
// into buf (len bytes) and returns buf.
char *weft_ref_name(const weft_run *r, weft_ref u, char *buf, size_t len);

// weft_ref_parse finds the unit a name denotes, using find to map a step
// id to its index (-1 if none). False when the name is not a unit's.
bool weft_ref_parse(const char *name, long (*find)(const void *, const char *),
    const void *arg, weft_ref *out);

// weft_run_output returns the run output: sink outputs by step id (new ref).
json_t *weft_run_output(const weft_run *r);

// ---- steps the coordinator holds: wait, delay, sleep_until (hold.h) ----
//
// They never reach a worker: where a worker step is enqueued, the engine
// starts them (weft_run_hold_start), and they run, holding no slot, until
// a signal (weft_run_signal), their timer (weft_run_hold_fire), their
// timeout (weft_run_timeout, as for any step) or a cancel ends them.

// weft_run_hold_start starts ready unit u of a hold step: ready ->
// running (attempt + 1, no node) with step_started {"hold": "signal",
// "signal"} or {"hold": "timer", "until_ms"}, plus "timeout_at_ms" when
// the step has a timeout (a STEP_TIMEOUT effect); a timer step gets a
// HOLD_TIMER effect at its deadline (weft_hold_deadline from its rendered
// `with`; one that does not render fails the step, naming why).
// WEFT_ESTATE when u is not ready, not a hold step or the run is not
// running (resume enqueues it again).
weft_err weft_run_hold_start(weft_run *r, weft_ref u, int64_t now, weft_out *o);

// weft_run_hold_fire: the timer of timer unit u's attempt, armed for
// at_ms, expired: the step succeeds with output {"at_ms": at_ms}.
// WEFT_ESTATE (nothing changes) for a stale timer.
weft_err weft_run_hold_fire(weft_run *r, weft_ref u, uint32_t attempt,
    int64_t at_ms, weft_out *o);

// weft_run_signal delivers signal `name` with data (borrowed; it becomes
// the output) to every unit of r waiting for it (a running wait step or
// map item whose with.signal is name): step_signaled {"signal", "data",
// "reject"}, then step_succeeded, or with reject step_failed for good (no
// retry: a rejection is a decision) with the error `signal "NAME"
// rejected` and data.reason when it is a string. *delivered gets how many
// units took it. WEFT_ESTATE when the run has ended; WEFT_ENOENT when no
// unit waits for name now (nothing changes: a signal is not kept for
// later).
weft_err weft_run_signal(weft_run *r, const char *name, const json_t *data,
    bool reject, weft_out *o, size_t *delivered);

// weft_run_hold_waits reports whether some step of r's definition is a
// wait step for signal name (whether or not it waits now).
bool weft_run_hold_waits(const weft_run *r, const char *name, long *step);

// weft_run_hold_rearm re-arms, after a restart, the timers of restored
// unit u of a hold step in flight, from its last step_started data
// (borrowed; NULL when none was found): the HOLD_TIMER at until_ms and the
// STEP_TIMEOUT at timeout_at_ms. A deadline already past fires at once.
void weft_run_hold_rearm(weft_run *r, weft_ref u, const json_t *started,
    weft_out *o);

// ---- sub-workflows: "workflow" steps (hold.h, engine/subwf.c) ----
//
// A workflow unit is a hold unit: weft_run_hold_start starts it
// (step_started {"hold": "child"}); the engine then creates the child run
// and records it here, and ends the unit when the child ends.

// weft_run_child_started records that running workflow unit u's current
// attempt started child run child_id (of definition name at version):
// child_started {"child_run", "definition", "version", "attempt"}.
// WEFT_ESTATE when u is not a running workflow unit.
weft_err weft_run_child_started(weft_run *r, weft_ref u, const char *child_id,
    const char *name, int64_t version, weft_out *o);

// weft_run_child_ended: child run child_id of workflow unit u's attempt
// ended in state `status` (a terminal run state name): child_ended
// {"child_run", "status"}, then on "succeeded" the unit succeeds with
// output (borrowed: the child's output, unchanged); otherwise its attempt
// fails with an error naming the child run, its status and error (child
// error, borrowed, may be NULL), and the retry policy decides (a retry
// starts a new child). WEFT_ESTATE (nothing changes) when the attempt is
// not current or u is not running: a child of an attempt that ended
// already (cancelled, timed out).
weft_err weft_run_child_ended(weft_run *r, weft_ref u, uint32_t attempt,
    const char *child_id, const char *status, const json_t *output,
    const char *child_error, int64_t now, weft_out *o);

// ---- dynamic expansion: "expand" steps (expand.h) ----
//
// weft_run_result on an expand step's successful attempt checks its output
// as an expansion: a bad one fails the attempt with the check's message (the
// retry policy decides); a good one is spliced in as "<step>.<id>" steps
// (r->def becomes r->def_own), the attempt's slot is released, the step
// stays running with step_expanded {"steps" (in full: ids and depends_on as
// spliced), "output", "attempt", "depth", "duration_ms"}, and the new steps
// are resolved. Once they have all ended the step succeeds with output
// {local id: output} of the expansion's leaves, or fails naming the first
// failed step (under "status_from": "leaves", when a leaf did not succeed
// or skip). A run retry discards the expansion of every expand step that
// starts over.

// weft_run_restore_expansion splices, on recovery, the expansion of step
// x_id recorded by its last step_expanded event (data borrowed) before the
// steps' rows are restored. False (nothing changes) when x_id is not a step
// of r now or data does not splice.
bool weft_run_restore_expansion(weft_run *r, const char *x_id,
    const json_t *data);

// weft_run_first_error gives the error of r's first failed step, for a
// parent's message (NULL when no step failed: cancelled, timed out).
const char *weft_run_first_error(const weft_run *r);

#endif
