// event_test: the event type list (common/event.h) is consistent: names
// unique and found again, unknown names refused, and every projection and
// terminal flag agrees with the run and step machines of coordinator/model.
#include <criterion/criterion.h>
#include <string.h>

#include "event.h"
#include "run.h"
#include "step.h"

#define EACH_TYPE(t)                                                  \
	for (enum weft_event_type t = (enum weft_event_type) 0;      \
	     t < WEFT_EV_COUNT; t = (enum weft_event_type) (t + 1))

TestSuite(event, .timeout = 10);

Test(event, names_unique_and_found_again)
{
	EACH_TYPE(t)
	{
		const char          *name = weft_event_name(t);
		enum weft_event_type back = WEFT_EV_COUNT;

		cr_assert_not_null(name, "type %d has no name", (int) t);
		cr_expect_gt(strlen(name), 0, "type %d", (int) t);
		cr_expect(weft_event_from_name(name, &back), "%s not found", name);
		cr_expect_eq(back, t, "%s found as %d, want %d", name, (int) back,
		    (int) t);
		for (enum weft_event_type u = t + 1; u < WEFT_EV_COUNT; u++) {
			cr_expect_str_neq(name, weft_event_name(u),
			    "types %d and %d share a name", (int) t, (int) u);
		}
	}
}

Test(event, unknown_names_refused)
{
	static const char *bad[] = { "", "step", "step_", "run_done",
		"STEP_READY", "step_ready ", " step_ready", "step_readyy",
		"worker", "unknown" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum weft_event_type out = WEFT_EV_COUNT;
		cr_expect_not(weft_event_from_name(bad[i], &out), "\"%s\"", bad[i]);
		cr_expect_eq(out, WEFT_EV_COUNT, "\"%s\" changed *out", bad[i]);
	}
	enum weft_event_type out = WEFT_EV_COUNT;
	cr_expect_not(weft_event_from_name(NULL, &out));
	cr_expect_eq(out, WEFT_EV_COUNT);
}

// The name's prefix says the scope; the API and the dashboard group by it.
// child_started and child_ended (names the issue gave) are about a
// workflow step, its child run: step scope.
Test(event, scope_matches_name)
{
	EACH_TYPE(t)
	{
		const char *name = weft_event_name(t);
		const char *want = strncmp(name, "run_", 4) == 0 ? "run"
		    : strncmp(name, "step_", 5) == 0 ||
		        strncmp(name, "result_", 7) == 0 ||
		        strncmp(name, "child_", 6) == 0
		    ? "step"
		    : "node";
		cr_expect_str_eq(weft_event_scope_name(weft_event_scope(t)),
		    want, "%s", name);
	}
}

// One scope's projection as the machine in coordinator/model sees it: the
// status accessor, and whether a status names a terminal state (false in
// *known when it names no state at all).
typedef struct projection {
	enum weft_event_scope scope;
	const char *(*status)(enum weft_event_type t);
	const char *(*other)(enum weft_event_type t); // must stay NULL
	bool (*final)(const char *st, bool *known);
	bool        required; // every event of the scope has a status
	int         nstates;
	const char *(*state_name)(int s);
} projection;

static bool
step_final(const char *st, bool *known)
{
	enum weft_step_state s;
	*known = weft_step_state_parse(st, &s);
	return (*known && weft_step_terminal(s));
}

static bool
run_final(const char *st, bool *known)
{
	enum weft_run_state s;
	*known = weft_run_state_parse(st, &s);
	return (*known && weft_run_terminal(s));
}

static const char *
step_state_name(int s)
{
	return (weft_step_state_name((enum weft_step_state) s));
}

static const char *
run_state_name(int s)
{
	return (weft_run_state_name((enum weft_run_state) s));
}

static const projection projections[] = {
	{ WEFT_EV_SCOPE_STEP, weft_event_step_status, weft_event_run_status,
	    step_final, false, WEFT_STEP_NSTATES, step_state_name },
	{ WEFT_EV_SCOPE_RUN, weft_event_run_status, weft_event_step_status,
	    run_final, true, WEFT_RUN_NSTATES, run_state_name },
};

// An event's status is a state of its scope's machine, terminal exactly
// when the event ends its step or run; an ending always has one, and an
// event never sets the other scope's status.
Test(event, projections_agree_with_the_machines)
{
	for (size_t k = 0; k < sizeof(projections) / sizeof(projections[0]);
	     k++) {
		const projection *p = &projections[k];
		EACH_TYPE(t)
		{
			const char *name = weft_event_name(t);
			const char *st   = p->status(t);
			bool        known;

			if (weft_event_scope(t) != p->scope) {
				cr_expect_null(st, "%s: status of another scope",
				    name);
				continue;
			}
			cr_expect_null(p->other(t), "%s", name);
			if (p->required || weft_event_terminal(t)) {
				cr_expect_not_null(st, "%s: no status", name);
			}
			if (st == NULL) {
				continue;
			}
			bool final = p->final(st, &known);
			cr_expect(known, "%s: \"%s\" is no state", name, st);
			cr_expect_eq(final, weft_event_terminal(t),
			    "%s: status %s terminal=%d, event terminal=%d", name,
			    st, final, weft_event_terminal(t));
		}
	}
}

// Every terminal state is reached by some ending event: clients that
// learn "is this status final" from the list (the CLI, the dashboard)
// miss none.
Test(event, every_terminal_state_has_an_ending_event)
{
	for (size_t k = 0; k < sizeof(projections) / sizeof(projections[0]);
	     k++) {
		const projection *p = &projections[k];
		for (int s = 0; s < p->nstates; s++) {
			const char *name = p->state_name(s);
			bool        seen = false, known;
			EACH_TYPE(t)
			{
				const char *st = p->status(t);
				seen |= weft_event_terminal(t) && st != NULL &&
				    strcmp(st, name) == 0;
			}
			cr_expect_eq(seen, p->final(name, &known), "state %s",
			    name);
		}
	}
}

// Cluster events touch neither runs nor steps and end nothing.
Test(event, node_events_project_nothing)
{
	size_t n = 0;

	EACH_TYPE(t)
	{
		if (weft_event_scope(t) == WEFT_EV_SCOPE_NODE) {
			n++;
			cr_expect_not(weft_event_terminal(t), "%s",
			    weft_event_name(t));
		}
	}
	cr_expect_gt(n, 0);
}
