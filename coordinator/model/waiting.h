// waiting: why a step that has not ended is not done yet, as a
// `waiting_for` object ({"reason": CODE, "message": TEXT, ...}).
//
// Pure: the query thread gathers the facts (the step's row, the run's
// state, the engine's snapshot of workers and ready queues) and this
// turns them into the answer `weft status`, the API and the dashboard show.
#ifndef WEFT_WAITING_H
#define WEFT_WAITING_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "step.h"

// The reason codes, in the order they are decided (docs/definitions.md).
#define WEFT_WAIT_DEPENDENCIES "dependencies"  // pending: its dependencies
#define WEFT_WAIT_PAUSED "paused"              // ready, the run is paused
#define WEFT_WAIT_NO_WORKER "no_worker"        // no live worker has the type
#define WEFT_WAIT_WORKERS_FULL "workers_full"  // capable workers are full
#define WEFT_WAIT_DISPATCHING "dispatching"    // a capable worker has room
#define WEFT_WAIT_RETRY_BACKOFF "retry_backoff" // retry_wait: until T
#define WEFT_WAIT_ACCEPT "accept"              // dispatched: worker's yes
#define WEFT_WAIT_RUNNING "running"            // running on a worker
#define WEFT_WAIT_ITEMS "items"                // a map step: its items
#define WEFT_WAIT_SIGNAL "signal"              // a wait step: its signal
#define WEFT_WAIT_TIMER "timer"                // delay/sleep_until: a time
#define WEFT_WAIT_CHILD "child"                // workflow: its child run
#define WEFT_WAIT_EXPANSION "expansion"        // expand: its spliced steps
#define WEFT_WAIT_TYPE_LIMIT "type_limit"      // ready: --limit TYPE=N full
// A queued run's own waiting_for (model/admission.h): "max_running_runs",
// "max_concurrent_runs", "concurrency_key".

// What is known about one step (all pointers borrowed).
typedef struct weft_wait_facts {
	enum weft_step_state state;
	bool        run_paused;
	bool        is_map;        // a map step (running = its items)
	const char *type;          // the step's type
	json_t     *deps;          // pending: ids of dependencies not ended
	const char *node;          // dispatched/running: the worker, or NULL
	// The engine's view of the type (ready steps); type_known false when
	// the snapshot has nothing on it: then no live worker advertises it.
	bool        type_known;
	bool        advertised;    // a live worker advertises the type
	int64_t     unadvertised_since_ms; // wall ms, 0 unknown
	bool        unschedulable; // unadvertised for --unschedulable-after
	uint32_t    queued;        // ready steps of the type in the queue
	uint32_t    free_slots;    // free slots of live advertisers
	uint32_t    workers;       // live advertisers
	int64_t     retry_until_ms;  // retry_wait: ready again at, 0 unknown
	int64_t     schedule_at_ms;  // ready: schedule timeout armed at, 0 none
	json_t     *items;         // map step: {"total", "done", ...} or NULL
	// A step the coordinator holds (hold.h), from its definition and
	// its step_started event: the signal a wait step waits for (NULL
	// for none), whether it is a timer step, and when its timer and its
	// timeout expire (wall ms, 0 unknown or none).
	const char *hold_signal;
	bool        hold_timer;
	int64_t     hold_until_ms;
	int64_t     hold_timeout_at_ms;
	const char *hold_child;    // a workflow step: its child run, or NULL
	json_t     *expansion;     // an expand step whose expansion runs:
	                           // {"total", "done", ...}, else NULL
	uint32_t    type_limit;    // --limit for the type, 0 none (sched)
	uint32_t    type_running;  // attempts of the type running
} weft_wait_facts;

// weft_waiting_for returns the waiting_for object of a step with facts f
// (borrowed), or NULL for a step that has ended. New reference. Any thread.
json_t *weft_waiting_for(const weft_wait_facts *f);

#endif
