// trigger: trigger rules as Airflow defines them, on counts of dependency
// states (trigger.h).
//
// Airflow decides some rules before every upstream has ended (a failure
// under all_success, a success under one_success). It also decides
// all_success as skipped at the first skip, so that a later failure does
// not matter: its answer then depends on the order the upstreams end in.
// weft decides only what no later end can change, so the answer is
// Airflow's answer for the final states, whatever the order.
#include "trigger.h"

static const char *const trigger_names[] = {
	[WEFT_TRIGGER_ALL_SUCCESS]                 = "all_success",
	[WEFT_TRIGGER_ALL_DONE]                    = "all_done",
	[WEFT_TRIGGER_ONE_SUCCESS]                 = "one_success",
	[WEFT_TRIGGER_NONE_FAILED]                 = "none_failed",
	[WEFT_TRIGGER_ALL_FAILED]                  = "all_failed",
	[WEFT_TRIGGER_ONE_FAILED]                  = "one_failed",
	[WEFT_TRIGGER_ONE_DONE]                    = "one_done",
	[WEFT_TRIGGER_NONE_FAILED_MIN_ONE_SUCCESS] = "none_failed_min_one_success",
	[WEFT_TRIGGER_NONE_SKIPPED]                = "none_skipped",
	[WEFT_TRIGGER_ALL_SKIPPED]                 = "all_skipped",
};

static const char *const trigger_verdict_names[] = {
	[WEFT_TRIGGER_WAIT]            = "wait",
	[WEFT_TRIGGER_RUN]             = "run",
	[WEFT_TRIGGER_SKIP]            = "skip",
	[WEFT_TRIGGER_UPSTREAM_FAILED] = "upstream_failed",
};

// trigger_decide: `no` when bad (the rule can no longer hold), else wait
// while something is pending, else `yes`.
static enum weft_trigger_verdict
trigger_decide(bool bad, enum weft_trigger_verdict no, uint32_t pending)
{
	if (bad) {
		return (no);
	}
	return (pending > 0 ? WEFT_TRIGGER_WAIT : WEFT_TRIGGER_RUN);
}

// trigger_one: the one_* rules run at the first qualifying end, else wait
// for every dependency, then end `no`.
static enum weft_trigger_verdict
trigger_one(uint32_t qualifying, enum weft_trigger_verdict no, uint32_t pending)
{
	if (qualifying > 0) {
		return (WEFT_TRIGGER_RUN);
	}
	return (pending > 0 ? WEFT_TRIGGER_WAIT : no);
}

enum weft_trigger_verdict
weft_trigger_eval(enum weft_trigger rule, const weft_trigger_counts *c)
{
	uint32_t n   = c->succeeded + c->failed + c->upstream_failed +
	    c->skipped + c->pending;
	uint32_t bad = c->failed + c->upstream_failed; // failures Airflow sees

	if (n == 0) {
		return (WEFT_TRIGGER_RUN); // a root: nothing to wait for
	}
	switch (rule) {
	case WEFT_TRIGGER_ALL_DONE:
		return (trigger_decide(false, WEFT_TRIGGER_SKIP, c->pending));
	case WEFT_TRIGGER_ONE_SUCCESS:
		// Nothing succeeded: skipped when everything was, else
		// upstream_failed.
		return (trigger_one(c->succeeded,
		    c->skipped == n ? WEFT_TRIGGER_SKIP
		                    : WEFT_TRIGGER_UPSTREAM_FAILED,
		    c->pending));
	case WEFT_TRIGGER_ONE_FAILED:
		return (trigger_one(bad, WEFT_TRIGGER_SKIP, c->pending));
	case WEFT_TRIGGER_ONE_DONE:
		// Airflow counts success and failed here, not upstream_failed.
		return (trigger_one(c->succeeded + c->failed, WEFT_TRIGGER_SKIP,
		    c->pending));
	case WEFT_TRIGGER_NONE_FAILED:
		return (trigger_decide(
		    bad > 0, WEFT_TRIGGER_UPSTREAM_FAILED, c->pending));
	case WEFT_TRIGGER_NONE_FAILED_MIN_ONE_SUCCESS:
		if (bad > 0) {
			return (WEFT_TRIGGER_UPSTREAM_FAILED);
		}
		return (trigger_decide(c->pending == 0 && c->succeeded == 0,
		    WEFT_TRIGGER_SKIP, c->pending));
	case WEFT_TRIGGER_NONE_SKIPPED:
		return (trigger_decide(
		    c->skipped > 0, WEFT_TRIGGER_SKIP, c->pending));
	case WEFT_TRIGGER_ALL_SKIPPED:
		return (trigger_decide(c->succeeded + bad > 0, WEFT_TRIGGER_SKIP,
		    c->pending));
	case WEFT_TRIGGER_ALL_FAILED:
		return (trigger_decide(c->succeeded + c->skipped > 0,
		    WEFT_TRIGGER_SKIP, c->pending));
	default: // all_success
		if (bad > 0) {
			return (WEFT_TRIGGER_UPSTREAM_FAILED);
		}
		// A skip decides only once nothing is pending: a later
		// failure would make it upstream_failed (see the top).
		return (trigger_decide(c->pending == 0 && c->skipped > 0,
		    WEFT_TRIGGER_SKIP, c->pending));
	}
}

void
weft_trigger_count(weft_trigger_counts *c, enum weft_step_state st)
{
	switch (st) {
	case WEFT_STEP_SUCCEEDED:
		c->succeeded++;
		break;
	case WEFT_STEP_FAILED:
	case WEFT_STEP_CANCELLED:
		c->failed++;
		break;
	case WEFT_STEP_UPSTREAM_FAILED:
		c->upstream_failed++;
		break;
	case WEFT_STEP_SKIPPED:
		c->skipped++;
		break;
	default:
		c->pending++;
		break;
	}
}

bool
weft_trigger_decisive(enum weft_trigger rule, enum weft_step_state st)
{
	weft_trigger_counts c = { .pending = 1 };

	if (!weft_step_terminal(st)) {
		return (false);
	}
	weft_trigger_count(&c, st);
	return (weft_trigger_eval(rule, &c) != WEFT_TRIGGER_WAIT);
}

const char *
weft_trigger_name(enum weft_trigger rule)
{
	return ((unsigned) rule < WEFT_TRIGGER_NRULES ? trigger_names[rule]
	                                              : "?");
}

const char *
weft_trigger_verdict_name(enum weft_trigger_verdict v)
{
	return ((unsigned) v <= WEFT_TRIGGER_UPSTREAM_FAILED
	        ? trigger_verdict_names[v]
	        : "?");
}
