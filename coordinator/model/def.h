// def: workflow definitions: parse JSON, validate, and compile the DAG
// (dependency indices, dependents, sinks) the engine schedules from.
#ifndef WEFT_DEF_H
#define WEFT_DEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "hold.h"

// Largest definition text accepted, and most steps in one definition.
#define WEFT_DEF_MAX_BYTES (8u * 1024u * 1024u)
#define WEFT_DEF_MAX_STEPS 100000u
// "max_depth": its default and its ceiling (expansions in expansions).
#define WEFT_DEF_MAX_DEPTH 5u
#define WEFT_DEF_MAX_DEPTH_CEIL 16u

enum weft_trigger {
	WEFT_TRIGGER_ALL_SUCCESS, // every dependency succeeded (default)
	WEFT_TRIGGER_ALL_DONE,    // every dependency ended, whatever the end
	WEFT_TRIGGER_ONE_SUCCESS, // at least one dependency succeeded
	WEFT_TRIGGER_NONE_FAILED, // no dependency failed (skipped is fine)
	WEFT_TRIGGER_ALL_FAILED,  // every dependency failed
	// Airflow's other rules (docs/definitions.md, "Trigger rules").
	WEFT_TRIGGER_ONE_FAILED,  // at least one failed (or upstream_failed)
	WEFT_TRIGGER_ONE_DONE,    // at least one succeeded or failed
	WEFT_TRIGGER_NONE_FAILED_MIN_ONE_SUCCESS, // none failed, one succeeded
	WEFT_TRIGGER_NONE_SKIPPED, // every dependency ended, none skipped
	WEFT_TRIGGER_ALL_SKIPPED,  // every dependency skipped
	WEFT_TRIGGER_NRULES
};

// How a run's outcome is decided once every step has ended ("status_from").
enum weft_status_from {
	WEFT_STATUS_FROM_ALL,    // failed when any step failed (default)
	WEFT_STATUS_FROM_LEAVES, // succeeded when every leaf succeeded or was
	                         // skipped, whatever failed on the way
};

enum weft_backoff {
	WEFT_BACKOFF_FIXED,
	WEFT_BACKOFF_LINEAR,
	WEFT_BACKOFF_EXPONENTIAL,
};

typedef struct weft_retry {
	uint32_t          max_attempts; // >= 1; 1 means no retry
	enum weft_backoff backoff;
	uint32_t          initial_ms;   // delay before attempt 2
	uint32_t          max_ms;       // cap on any delay
	bool              jitter;       // +-20% random spread when true
} weft_retry;

typedef struct weft_def_step {
	char             *id;
	char             *type;
	json_t           *with;      // template object (owned), NULL if absent
	uint32_t         *deps;      // indices of dependencies (owned)
	size_t            ndeps;
	uint32_t         *outs;      // indices of dependents (owned)
	size_t            nouts;
	weft_retry        retry;
	uint32_t          timeout_ms; // start-to-close, 0 = none
	enum weft_trigger trigger;
	char             *when;      // condition source, NULL if absent
	struct weft_expr *when_expr; // compiled condition, NULL if absent
	char             *map;       // fan-out: path of an array, NULL if none
	uint32_t          max_parallel; // map items in flight at once, 0 = all
	json_t           *map_list;  // "map" given as a literal array (owned),
	                             // NULL when map is a path
	uint32_t          map_tolerate; // map items that may fail for good
	                                // with the step still succeeding
	bool              when_item; // `when` reads item or index: it is
	                             // evaluated per map item, not per step
	uint32_t          heartbeat_timeout_ms; // longest a running attempt
	                                        // may go without a heartbeat,
	                                        // 0 = none
	uint32_t          schedule_timeout_ms; // most ms ready without a
	                                       // worker taking it, 0 = none
	enum weft_hold    hold;      // run by the coordinator (wait, delay,
	                             // sleep_until: hold.h), or NONE
	char             *depends;   // "depends" source, NULL if absent: then
	                             // deps are the steps it names, and it
	                             // decides instead of trigger
	struct weft_depends *depends_expr; // compiled, NULL if absent
	bool              expand;    // "expand": its output is {"steps": [...]},
	                             // spliced into the run (expand.h)
	long              parent;    // the step whose expansion this is
	                             // (index), -1 for a definition's own step
	bool              has_priority; // "priority" given: its units are
	int32_t           priority;     // ordered by it, not the run's
} weft_def_step;

typedef struct weft_def {
	char          *name;
	int64_t        version;    // >= 1; default 1
	char          *description; // NULL if absent
	json_t        *params;     // parameter spec object (owned), never NULL
	json_t        *json;       // the definition document (owned)
	uint32_t       timeout_ms; // whole run, 0 = none
	int64_t        retain_ms;  // "retain": keep ended runs this long, ms;
	                           // 0 = the coordinator's --retain
	uint32_t       schedule_timeout_ms; // default of the steps', 0 = none
	bool           fail_fast;  // the first step failed for good ends the
	                           // run: the rest are cancelled
	enum weft_status_from status_from;
	uint32_t       max_depth;  // "max_depth": deepest expansion nesting
	                           // (expand.h); default WEFT_DEF_MAX_DEPTH
	bool           spliced;    // a run's definition with expansions
	                           // spliced in (weft_def_parse_spliced)
	weft_def_step *steps;      // in definition order (owned)
	size_t         nsteps;
	uint32_t      *sinks;      // steps nothing depends on (owned)
	size_t         nsinks;
	uint32_t      *roots;      // steps with no dependencies (owned)
	size_t         nroots;
	json_t        *index;      // step id -> index in steps (owned)
	struct def_pattern *patterns; // each param's compiled "pattern"
	size_t         npatterns;     // (owned; def.c)
	// Scheduling (sched): its runs' default priority, most of its runs
	// running at once (0 = no limit), and the per-key limit: at most
	// concurrency_limit running runs per rendered concurrency_key (a
	// template string, owned; NULL = none).
	int32_t        priority;
	uint32_t       max_concurrent_runs;
	json_t        *concurrency_key;
	uint32_t       concurrency_limit;
} weft_def;

// weft_def_parse parses and validates text (len bytes, borrowed). On success
// *out is a new definition to free with weft_def_free. On failure returns
// WEFT_EDEF (or WEFT_ETOOBIG) and writes a message that says where into err
// (errlen bytes), e.g. "steps[3] (id \"load\"): unknown dependency \"x\"" or
// "cycle: a -> b -> c -> a".
weft_err weft_def_parse(
    weft_def **out, const char *text, size_t len, char *err, size_t errlen);

// weft_def_parse_spliced parses root (borrowed; copied), a run's definition
// with expansions spliced in (expand.c builds it): step ids may hold '.'
// ("plan.design": the step design of plan's expansion), references are not
// checked again (each expansion was checked in its own namespace when it
// was spliced) and only the definition's own steps are sinks. Errors as
// weft_def_parse.
weft_err weft_def_parse_spliced(
    weft_def **out, const json_t *root, char *err, size_t errlen);

// weft_def_free frees def and everything it owns (NULL is fine).
void weft_def_free(weft_def *def);

// weft_def_type_name names the JSON type of v (borrowed) the way
// definitions spell types ("object", "int", ...); static storage.
const char *weft_def_type_name(const json_t *v);

// weft_def_find returns the index of the step with this id, or -1.
long weft_def_find(const weft_def *def, const char *id);

// weft_def_bind_params checks given (borrowed; NULL = {}) against the
// parameter spec: unknown names, wrong types and missing required params are
// errors (WEFT_EINVAL, message in err). On success *out is a new object with
// defaults filled in.
weft_err weft_def_bind_params(const weft_def *def, json_t *given,
    json_t **out, char *err, size_t errlen);

// weft_retry_delay_ms returns the backoff before attempt `next` (>= 2) under
// policy r, without jitter; pure.
uint32_t weft_retry_delay_ms(const weft_retry *r, uint32_t next);

#endif
