// step: transitions of the step state machine, one function per state.
#include "step.h"

#include <string.h>

static const char *step_state_names[] = {
#define WEFT_STEP_STATE_STR(name, str) str,
	WEFT_STEP_STATE_MAP(WEFT_STEP_STATE_STR)
#undef WEFT_STEP_STATE_STR
};

static const char *step_input_names[] = {
#define WEFT_STEP_INPUT_STR(name, str) str,
	WEFT_STEP_INPUT_MAP(WEFT_STEP_INPUT_STR)
#undef WEFT_STEP_INPUT_STR
};

// An attempt that ends badly goes to retry_wait while the policy allows,
// else it has failed for good.
static enum weft_step_state
step_bad_end(bool can_retry)
{
	return (can_retry ? WEFT_STEP_RETRY_WAIT : WEFT_STEP_FAILED);
}

static weft_err
step_pending(enum weft_step_input in, enum weft_step_state *to)
{
	switch (in) {
	case WEFT_STEP_IN_DEPS_MET:
		*to = WEFT_STEP_READY;
		return (WEFT_OK);
	case WEFT_STEP_IN_DEPS_UNMET:
		*to = WEFT_STEP_SKIPPED;
		return (WEFT_OK);
	case WEFT_STEP_IN_DEPS_FAILED:
		*to = WEFT_STEP_UPSTREAM_FAILED;
		return (WEFT_OK);
	default:
		return (WEFT_ESTATE);
	}
}

static weft_err
step_ready(enum weft_step_input in, bool can_retry, enum weft_step_state *to)
{
	switch (in) {
	case WEFT_STEP_IN_DISPATCH:
		*to = WEFT_STEP_DISPATCHED;
		return (WEFT_OK);
	case WEFT_STEP_IN_RESULT_FAIL:
		// The step could not even be prepared (its input does not
		// render): it fails without a worker. No retry: the input
		// will not render better next time.
		*to = WEFT_STEP_FAILED;
		return (WEFT_OK);
	case WEFT_STEP_IN_TIMEOUT:
		// Waited for a worker longer than its schedule_timeout_ms:
		// an attempt that never started, charged like one that timed
		// out, so the retry policy decides.
		*to = step_bad_end(can_retry);
		return (WEFT_OK);
	case WEFT_STEP_IN_EXPAND:
		// A map step runs as its items; it ends when they all have.
		*to = WEFT_STEP_RUNNING;
		return (WEFT_OK);
	default:
		return (WEFT_ESTATE);
	}
}

// dispatched and running share their endings: a result may overtake the
// worker's "accepted" reply, so both states take results.
static weft_err
step_in_flight(enum weft_step_state from, enum weft_step_input in,
    bool can_retry, enum weft_step_state *to)
{
	switch (in) {
	case WEFT_STEP_IN_ACCEPTED:
		if (from != WEFT_STEP_DISPATCHED) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_STEP_RUNNING;
		return (WEFT_OK);
	case WEFT_STEP_IN_REJECTED:
		if (from != WEFT_STEP_DISPATCHED) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_STEP_READY;
		return (WEFT_OK);
	case WEFT_STEP_IN_RELEASED:
		// A draining worker hands back an attempt it never started,
		// whether or not it had said yes: ready again, no failure.
		*to = WEFT_STEP_READY;
		return (WEFT_OK);
	case WEFT_STEP_IN_RESULT_OK:
		*to = WEFT_STEP_SUCCEEDED;
		return (WEFT_OK);
	case WEFT_STEP_IN_RESULT_FAIL:
	case WEFT_STEP_IN_LOST:
	case WEFT_STEP_IN_TIMEOUT:
		*to = step_bad_end(can_retry);
		return (WEFT_OK);
	default:
		return (WEFT_ESTATE);
	}
}

static weft_err
step_retry_wait(enum weft_step_input in, enum weft_step_state *to)
{
	if (in != WEFT_STEP_IN_RETRY_DUE) {
		return (WEFT_ESTATE);
	}
	*to = WEFT_STEP_READY;
	return (WEFT_OK);
}

// Ended steps take only an operator's retry, and only when they did not
// succeed: a success is final.
static weft_err
step_ended(enum weft_step_state from, enum weft_step_input in,
    enum weft_step_state *to)
{
	if (in == WEFT_STEP_IN_RERUN) {
		// A retry from a step re-runs it and its downstream, whatever
		// their end, a success included.
		*to = WEFT_STEP_PENDING;
		return (WEFT_OK);
	}
	if (in != WEFT_STEP_IN_RETRY || from == WEFT_STEP_SUCCEEDED) {
		return (WEFT_ESTATE);
	}
	*to = WEFT_STEP_PENDING;
	return (WEFT_OK);
}

weft_err
weft_step_next(enum weft_step_state from, enum weft_step_input in,
    bool can_retry, enum weft_step_state *to)
{
	if ((unsigned) from >= WEFT_STEP_NSTATES ||
	    (unsigned) in >= WEFT_STEP_NINPUTS) {
		return (WEFT_EINVAL);
	}
	if (in == WEFT_STEP_IN_CANCEL) {
		if (weft_step_terminal(from)) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_STEP_CANCELLED;
		return (WEFT_OK);
	}
	switch (from) {
	case WEFT_STEP_PENDING:
		return (step_pending(in, to));
	case WEFT_STEP_READY:
		return (step_ready(in, can_retry, to));
	case WEFT_STEP_DISPATCHED:
	case WEFT_STEP_RUNNING:
		return (step_in_flight(from, in, can_retry, to));
	case WEFT_STEP_RETRY_WAIT:
		return (step_retry_wait(in, to));
	default:
		return (step_ended(from, in, to));
	}
}

bool
weft_step_terminal(enum weft_step_state s)
{
	return (s >= WEFT_STEP_SUCCEEDED);
}

const char *
weft_step_state_name(enum weft_step_state s)
{
	return ((unsigned) s < WEFT_STEP_NSTATES ? step_state_names[s] : "?");
}

const char *
weft_step_input_name(enum weft_step_input in)
{
	return ((unsigned) in < WEFT_STEP_NINPUTS ? step_input_names[in] : "?");
}

bool
weft_step_state_parse(const char *name, enum weft_step_state *out)
{
	for (int i = 0; i < WEFT_STEP_NSTATES; i++) {
		if (strcmp(name, step_state_names[i]) == 0) {
			*out = (enum weft_step_state) i;
			return (true);
		}
	}
	return (false);
}
