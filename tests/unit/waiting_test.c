// waiting_test: the waiting_for reason of a step, from a table of facts:
// every step state, and for ready steps every case of the engine's view.
#include <criterion/criterion.h>
#include <string.h>

#include "waiting.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

struct wait_row {
	const char     *name;
	weft_wait_facts f;
	const char     *deps;        // JSON array for f.deps, or NULL
	const char     *want_reason; // NULL: no waiting_for
	const char     *want_text;   // a part of the message
	const char     *want_field;  // a field that must be there, or NULL
};

static const struct wait_row wait_rows[] = {
	{ "pending names unfinished deps",
	    { .state = WEFT_STEP_PENDING, .type = "t" }, "[\"a\",\"b\"]",
	    "dependencies", "waiting for a, b", "dependencies" },
	{ "pending of a paused run still names deps",
	    { .state = WEFT_STEP_PENDING, .type = "t", .run_paused = true },
	    "[\"a\"]", "dependencies", "waiting for a", "dependencies" },
	{ "ready, type unknown to the engine",
	    { .state = WEFT_STEP_READY, .type = "gpu" }, NULL, "no_worker",
	    "no live worker advertises step type \"gpu\"", "type" },
	{ "ready, type not advertised (since)",
	    { .state = WEFT_STEP_READY, .type = "gpu", .type_known = true,
	        .unadvertised_since_ms = 5000 },
	    NULL, "no_worker", "no live worker", "since_ms" },
	{ "ready, unadvertised long enough: unschedulable",
	    { .state = WEFT_STEP_READY, .type = "gpu", .type_known = true,
	        .unadvertised_since_ms = 5000, .unschedulable = true },
	    NULL, "no_worker", "no live worker", "unschedulable" },
	{ "ready, advertisers full",
	    { .state = WEFT_STEP_READY, .type = "t", .type_known = true,
	        .advertised = true, .queued = 7, .workers = 2 },
	    NULL, "workers_full", "is full (7 ready ahead, 2 workers)",
	    "queued" },
	{ "ready, room: being dispatched",
	    { .state = WEFT_STEP_READY, .type = "t", .type_known = true,
	        .advertised = true, .free_slots = 3, .workers = 1 },
	    NULL, "dispatching", "has a free slot", NULL },
	{ "ready in a paused run: paused wins",
	    { .state = WEFT_STEP_READY, .type = "gpu", .run_paused = true },
	    NULL, "paused", "the run is paused", NULL },
	{ "ready with a schedule timeout armed",
	    { .state = WEFT_STEP_READY, .type = "gpu",
	        .schedule_at_ms = 1795000000000 },
	    NULL, "no_worker", "schedule timeout at 2026-11-18T",
	    "schedule_timeout_at_ms" },
	{ "retry_wait with its time",
	    { .state = WEFT_STEP_RETRY_WAIT, .type = "t",
	        .retry_until_ms = 1795000000000 },
	    NULL, "retry_backoff", "retry backoff until 2026-11-18T",
	    "until_ms" },
	{ "retry_wait, time unknown",
	    { .state = WEFT_STEP_RETRY_WAIT, .type = "t" }, NULL,
	    "retry_backoff", "waiting out the retry backoff", NULL },
	{ "dispatched: the worker's yes",
	    { .state = WEFT_STEP_DISPATCHED, .type = "t", .node = "w1" }, NULL,
	    "accept", "sent to worker w1", "node" },
	{ "running on a worker",
	    { .state = WEFT_STEP_RUNNING, .type = "t", .node = "w1" }, NULL,
	    "running", "running on worker w1", "node" },
	{ "map step running: its items",
	    { .state = WEFT_STEP_RUNNING, .type = "t", .is_map = true }, NULL,
	    "items", "waiting for its items", NULL },
	{ "succeeded: nothing", { .state = WEFT_STEP_SUCCEEDED }, NULL, NULL,
	    NULL, NULL },
	{ "failed: nothing", { .state = WEFT_STEP_FAILED }, NULL, NULL, NULL,
	    NULL },
	{ "skipped: nothing", { .state = WEFT_STEP_SKIPPED }, NULL, NULL, NULL,
	    NULL },
	{ "cancelled: nothing", { .state = WEFT_STEP_CANCELLED }, NULL, NULL,
	    NULL, NULL },
	{ "upstream_failed: nothing", { .state = WEFT_STEP_UPSTREAM_FAILED },
	    NULL, NULL, NULL, NULL },
};

Test(waiting, reason_table, .timeout = T_TIMEOUT)
{
	bool seen[WEFT_STEP_NSTATES] = { false };

	for (size_t k = 0; k < sizeof(wait_rows) / sizeof(wait_rows[0]); k++) {
		const struct wait_row *row = &wait_rows[k];
		weft_wait_facts        f   = row->f;
		json_t                *o;
		f.deps = row->deps ? json_loads(row->deps, 0, NULL) : NULL;
		seen[f.state] = true;
		o = weft_waiting_for(&f);
		if (row->want_reason == NULL) {
			cr_expect_null(o, "%s: ended steps wait for nothing",
			    row->name);
		} else {
			const char *msg = json_string_value(
			    json_object_get(o, "message"));
			cr_assert_not_null(o, "%s: no waiting_for", row->name);
			cr_expect_str_eq(json_string_value(
			                     json_object_get(o, "reason")),
			    row->want_reason, "%s", row->name);
			cr_expect(msg != NULL && strstr(msg, row->want_text) != NULL,
			    "%s: message \"%s\" lacks \"%s\"", row->name, msg,
			    row->want_text);
			if (row->want_field != NULL) {
				cr_expect_not_null(
				    json_object_get(o, row->want_field),
				    "%s: no field %s", row->name, row->want_field);
			}
		}
		json_decref(o);
		json_decref(f.deps);
	}
	for (int s = 0; s < WEFT_STEP_NSTATES; s++) {
		cr_expect(seen[s], "no row for state %s", weft_step_state_name(s));
	}
}

// An expand step whose expansion runs waits for it (its program ended: no
// worker holds it), and says how far it is.
Test(waiting, expanded_step_waits_for_its_expansion, .timeout = T_TIMEOUT)
{
	weft_wait_facts f = { .state = WEFT_STEP_RUNNING, .type = "exec",
		.node = "" };
	json_t *o;

	f.expansion = json_pack("{s:i, s:i}", "total", 5, "done", 3);
	o = weft_waiting_for(&f);
	cr_assert_str_eq(json_string_value(json_object_get(o, "reason")),
	    "expansion");
	cr_assert_str_eq(json_string_value(json_object_get(o, "message")),
	    "waiting for its expansion: 3 of 5 steps ended");
	json_decref(o);
	json_decref(f.expansion);
}
