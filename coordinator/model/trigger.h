// trigger: the pure trigger-rule evaluator: from how a step's dependencies
// stand, whether it runs, is skipped, is upstream_failed, or must wait.
//
// Airflow's semantics (docs/definitions.md, "Trigger rules"): a function of
// counts only, so the table test covers every rule and every mix of
// dependency states, and the run model decides in O(1) once it has counted.
#ifndef WEFT_TRIGGER_H
#define WEFT_TRIGGER_H

#include <stdbool.h>
#include <stdint.h>

#include "def.h"
#include "step.h"

// What a rule says about a pending step.
enum weft_trigger_verdict {
	WEFT_TRIGGER_WAIT,            // not decided: a dependency that has
	                              // not ended could still change it
	WEFT_TRIGGER_RUN,             // the step runs (its `when` permitting)
	WEFT_TRIGGER_SKIP,            // the step ends skipped
	WEFT_TRIGGER_UPSTREAM_FAILED, // the step ends upstream_failed
};

// How the dependencies of one step stand. A cancelled dependency counts as
// failed (only a retried run can show one to a trigger).
typedef struct weft_trigger_counts {
	uint32_t succeeded;
	uint32_t failed;
	uint32_t upstream_failed;
	uint32_t skipped;
	uint32_t pending; // not ended yet, whatever their state
} weft_trigger_counts;

// weft_trigger_eval applies rule to c. A step with no dependency runs
// whatever its rule. A verdict other than WEFT_TRIGGER_WAIT is final: no
// way the pending dependencies end can change it, so the step is decided
// as early as that (one_success fires at the first success). Pure.
enum weft_trigger_verdict weft_trigger_eval(
    enum weft_trigger rule, const weft_trigger_counts *c);

// weft_trigger_count adds one dependency in state st to c.
void weft_trigger_count(weft_trigger_counts *c, enum weft_step_state st);

// weft_trigger_decisive reports whether a dependency ending in state st can
// decide rule while other dependencies have not ended: exactly when
// weft_trigger_eval of that one end plus pending ones is not WAIT. The
// run model uses it to look at a waiting step only when the look decides.
bool weft_trigger_decisive(enum weft_trigger rule, enum weft_step_state st);

// weft_trigger_name / weft_trigger_verdict_name: lowercase names; static.
const char *weft_trigger_name(enum weft_trigger rule);
const char *weft_trigger_verdict_name(enum weft_trigger_verdict v);

#endif
