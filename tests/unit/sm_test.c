// sm_test: table-driven tests of the pure step and run state machines:
// every (state, input) pair, the illegal ones included.
#include <criterion/criterion.h>

#include "run.h"
#include "step.h"

#define X -1 // illegal

// Expected next step state per (state, input) when the retry policy still
// allows another attempt, and when it does not. Columns follow
// WEFT_STEP_INPUT_MAP: deps_met, deps_unmet, dispatch, accepted, rejected,
// result_ok, result_fail, lost, timeout, retry_due, cancel, retry, expand,
// released, deps_failed, rerun.
#define P WEFT_STEP_PENDING
#define R WEFT_STEP_READY
#define D WEFT_STEP_DISPATCHED
#define U WEFT_STEP_RUNNING
#define W WEFT_STEP_RETRY_WAIT
#define S WEFT_STEP_SUCCEEDED
#define F WEFT_STEP_FAILED
#define K WEFT_STEP_SKIPPED
#define C WEFT_STEP_CANCELLED
#define A WEFT_STEP_UPSTREAM_FAILED

static const int step_with_retry[WEFT_STEP_NSTATES][WEFT_STEP_NINPUTS] = {
	/* pending    */ { R, K, X, X, X, X, X, X, X, X, C, X, X, X, A, X },
	/* ready      */ { X, X, D, X, X, X, F, X, W, X, C, X, U, X, X, X },
	/* dispatched */ { X, X, X, U, R, S, W, W, W, X, C, X, X, R, X, X },
	/* running    */ { X, X, X, X, X, S, W, W, W, X, C, X, X, R, X, X },
	/* retry_wait */ { X, X, X, X, X, X, X, X, X, R, C, X, X, X, X, X },
	/* succeeded  */ { X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, P },
	/* failed     */ { X, X, X, X, X, X, X, X, X, X, X, P, X, X, X, P },
	/* skipped    */ { X, X, X, X, X, X, X, X, X, X, X, P, X, X, X, P },
	/* cancelled  */ { X, X, X, X, X, X, X, X, X, X, X, P, X, X, X, P },
	/* upstream_f */ { X, X, X, X, X, X, X, X, X, X, X, P, X, X, X, P },
};

static const int step_no_retry[WEFT_STEP_NSTATES][WEFT_STEP_NINPUTS] = {
	/* pending    */ { R, K, X, X, X, X, X, X, X, X, C, X, X, X, A, X },
	/* ready      */ { X, X, D, X, X, X, F, X, F, X, C, X, U, X, X, X },
	/* dispatched */ { X, X, X, U, R, S, F, F, F, X, C, X, X, R, X, X },
	/* running    */ { X, X, X, X, X, S, F, F, F, X, C, X, X, R, X, X },
	/* retry_wait */ { X, X, X, X, X, X, X, X, X, R, C, X, X, X, X, X },
	/* succeeded  */ { X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, P },
	/* failed     */ { X, X, X, X, X, X, X, X, X, X, X, P, X, X, X, P },
	/* skipped    */ { X, X, X, X, X, X, X, X, X, X, X, P, X, X, X, P },
	/* cancelled  */ { X, X, X, X, X, X, X, X, X, X, X, P, X, X, X, P },
	/* upstream_f */ { X, X, X, X, X, X, X, X, X, X, X, P, X, X, X, P },
};

static void
check_step_table(const int table[WEFT_STEP_NSTATES][WEFT_STEP_NINPUTS],
    bool can_retry)
{
	for (int s = 0; s < WEFT_STEP_NSTATES; s++) {
		for (int in = 0; in < WEFT_STEP_NINPUTS; in++) {
			enum weft_step_state to   = (enum weft_step_state) 99;
			weft_err             rv   = weft_step_next(
                            (enum weft_step_state) s, (enum weft_step_input) in,
                            can_retry, &to);
			const char          *name = weft_step_state_name(s);
			const char          *inn  = weft_step_input_name(in);
			if (table[s][in] == X) {
				cr_expect_eq(rv, WEFT_ESTATE,
				    "%s + %s (retry=%d) should be illegal", name,
				    inn, can_retry);
				cr_expect_eq((int) to, 99,
				    "%s + %s: illegal pair changed the output",
				    name, inn);
			} else {
				cr_expect_eq(rv, WEFT_OK, "%s + %s should be legal",
				    name, inn);
				cr_expect_eq((int) to, table[s][in],
				    "%s + %s (retry=%d): got %s, want %s", name, inn,
				    can_retry, weft_step_state_name(to),
				    weft_step_state_name(table[s][in]));
			}
		}
	}
}

Test(step, every_pair_with_retry_budget)
{
	check_step_table(step_with_retry, true);
}

Test(step, every_pair_without_retry_budget)
{
	check_step_table(step_no_retry, false);
}

Test(step, out_of_range_is_invalid)
{
	enum weft_step_state to;
	cr_expect_eq(weft_step_next(WEFT_STEP_NSTATES, WEFT_STEP_IN_CANCEL,
	                 false, &to),
	    WEFT_EINVAL);
	cr_expect_eq(weft_step_next(WEFT_STEP_PENDING, WEFT_STEP_NINPUTS, false,
	                 &to),
	    WEFT_EINVAL);
}

Test(step, names_round_trip)
{
	for (int s = 0; s < WEFT_STEP_NSTATES; s++) {
		enum weft_step_state back;
		cr_expect(weft_step_state_parse(weft_step_state_name(s), &back));
		cr_expect_eq((int) back, s);
	}
	enum weft_step_state back;
	cr_expect_not(weft_step_state_parse("exploded", &back));
}

#undef P
#undef R
#undef D
#undef U
#undef W
#undef S
#undef F
#undef K
#undef C
#undef A

// Run machine. Columns follow WEFT_RUN_INPUT_MAP: start, pause, resume,
// done_ok, done_failed, cancel, timeout, retry, schedule, retry_from.
#define Q WEFT_RUN_QUEUED
#define D WEFT_RUN_SCHEDULED
#define N WEFT_RUN_RUNNING
#define Z WEFT_RUN_PAUSED
#define S WEFT_RUN_SUCCEEDED
#define F WEFT_RUN_FAILED
#define C WEFT_RUN_CANCELLED
#define T WEFT_RUN_TIMED_OUT

static const int run_table[WEFT_RUN_NSTATES][WEFT_RUN_NINPUTS] = {
	/* queued    */ { N, X, X, X, X, C, X, X, D, X },
	/* scheduled */ { N, X, X, X, X, C, X, X, X, X },
	/* running   */ { X, Z, X, S, F, C, T, X, X, X },
	/* paused    */ { X, X, N, S, F, C, T, X, X, X },
	/* succeeded */ { X, X, X, X, X, X, X, X, X, N },
	/* failed    */ { X, X, X, X, X, X, X, N, X, N },
	/* cancelled */ { X, X, X, X, X, X, X, N, X, N },
	/* timed_out */ { X, X, X, X, X, X, X, N, X, N },
};

Test(run, every_pair)
{
	for (int s = 0; s < WEFT_RUN_NSTATES; s++) {
		for (int in = 0; in < WEFT_RUN_NINPUTS; in++) {
			enum weft_run_state to = (enum weft_run_state) 99;
			weft_err            rv = weft_run_next(
                            (enum weft_run_state) s, (enum weft_run_input) in, &to);
			if (run_table[s][in] == X) {
				cr_expect_eq(rv, WEFT_ESTATE, "%s + %s should be illegal",
				    weft_run_state_name(s), weft_run_input_name(in));
				cr_expect_eq((int) to, 99);
			} else {
				cr_expect_eq(rv, WEFT_OK, "%s + %s should be legal",
				    weft_run_state_name(s), weft_run_input_name(in));
				cr_expect_eq((int) to, run_table[s][in],
				    "%s + %s: got %s", weft_run_state_name(s),
				    weft_run_input_name(in), weft_run_state_name(to));
			}
		}
	}
}

Test(run, terminal_states_are_last)
{
	for (int s = 0; s < WEFT_RUN_NSTATES; s++) {
		cr_expect_eq(weft_run_terminal(s), s >= WEFT_RUN_SUCCEEDED);
	}
}
