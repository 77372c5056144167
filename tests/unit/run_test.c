// run_test: the pure run model: dependency resolution, data passing,
// failures and their propagation, retries, stale results, losses, cancel,
// and, from tables, trigger rules and retry backoff at the run level.
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "def.h"
#include "jsonx.h"
#include "run.h"
#include "tdef.h"
#include "trigger.h"
#include "trun.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

static long
idx(const weft_def *d, const char *id)
{
	long i = weft_def_find(d, id);
	cr_assert(i >= 0, "no step %s", id);
	return (i);
}

// count_events counts events of a type in the output.
static int
count_events(const weft_out *o, enum weft_event_type type)
{
	int n = 0;
	for (size_t k = 0; k < o->nevents; k++) {
		n += o->events[k].type == type;
	}
	return (n);
}

static bool
has_effect(const weft_out *o, enum weft_effect_kind kind, long step)
{
	for (size_t k = 0; k < o->neffects; k++) {
		if (o->effects[k].kind == kind && o->effects[k].step == step) {
			return (true);
		}
	}
	return (false);
}

// finish dispatches, accepts and completes step i with output (taken).
static void
finish(weft_run *r, long i, json_t *output, weft_out *o)
{
	cr_assert_eq(weft_run_dispatched(r, WEFT_REF(i), "w1", 1000, o), WEFT_OK);
	cr_assert_eq(weft_run_accepted(r, WEFT_REF(i), r->steps[i].attempt, o), WEFT_OK);
	weft_result res = { .attempt = r->steps[i].attempt, .ok = true,
		.output = output, .node = "w1" };
	cr_assert_eq(weft_run_result(r, WEFT_REF(i), &res, 1001, o), WEFT_OK);
	json_decref(output); // the run keeps its own reference
}

static void
fail(weft_run *r, long i, const char *error, weft_out *o)
{
	cr_assert_eq(weft_run_dispatched(r, WEFT_REF(i), "w1", 1000, o), WEFT_OK);
	weft_result res = { .attempt = r->steps[i].attempt, .ok = false,
		.error = error, .node = "w1" };
	cr_assert_eq(weft_run_result(r, WEFT_REF(i), &res, 1001, o), WEFT_OK);
}

static const char *diamond =
    "{\"name\":\"d\",\"params\":{\"n\":{\"type\":\"int\",\"default\":2}},"
    "\"steps\":[{\"id\":\"a\",\"type\":\"echo\",\"with\":{\"x\":\"${params.n}\"}},"
    "{\"id\":\"b\",\"type\":\"echo\",\"depends_on\":[\"a\"]},"
    "{\"id\":\"c\",\"type\":\"echo\",\"depends_on\":[\"a\"]},"
    "{\"id\":\"d\",\"type\":\"echo\",\"depends_on\":[\"b\",\"c\"],"
    "\"with\":{\"fromb\":\"${steps.b.output.v}\"}}]}";

Test(run, diamond_passes_data_and_succeeds)
{
	weft_def *def = weft_t_def(diamond);
	weft_out  o;
	json_t   *params;
	char      err[256];

	weft_out_init(&o);
	cr_assert_eq(weft_def_bind_params(def, NULL, &params, err, sizeof(err)),
	    WEFT_OK);
	weft_run *r = weft_run_alloc("R1", def, json_pack("{s:i}", "k", 7),
	    params, 0, &o);
	cr_assert_eq(weft_run_start(r, 0, &o), WEFT_OK);
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "a")));
	cr_expect_not(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "b")));

	// a's rendered input carries the param with its type.
	json_t *in = weft_run_step_input(r, WEFT_REF(idx(def, "a")), err, sizeof(err));
	cr_assert_not_null(in, "%s", err);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(in, "with"), "x")),
	    2);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(in, "input"), "k")),
	    7);
	json_decref(in);

	finish(r, idx(def, "a"), json_pack("{s:i}", "v", 1), &o);
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "b")));
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "c")));
	finish(r, idx(def, "b"), json_pack("{s:s}", "v", "from-b"), &o);
	cr_expect_not(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "d")),
	    "d must wait for c");
	finish(r, idx(def, "c"), json_null(), &o);
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "d")));

	in = weft_run_step_input(r, WEFT_REF(idx(def, "d")), err, sizeof(err));
	cr_assert_not_null(in);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(in, "with"), "fromb")),
	    "from-b");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_object_get(in, "steps"), "b"),
	                     "status")),
	    "succeeded");
	json_decref(in);
	finish(r, idx(def, "d"), json_pack("{s:b}", "done", 1), &o);
	cr_expect_eq(r->state, WEFT_RUN_SUCCEEDED);
	cr_expect_eq(count_events(&o, WEFT_EV_RUN_SUCCEEDED), 1);
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_SUCCEEDED), 4);
	json_t *out = weft_run_output(r);
	cr_expect(json_is_true(json_object_get(json_object_get(out, "d"), "done")));
	json_decref(out);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, failure_makes_dependents_upstream_failed_and_fails_run)
{
	weft_def *def = weft_t_def(diamond);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R2", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	finish(r, idx(def, "a"), json_null(), &o);
	fail(r, idx(def, "b"), "boom", &o);
	cr_expect_eq(r->steps[idx(def, "b")].state, WEFT_STEP_FAILED);
	cr_expect_eq(r->state, WEFT_RUN_RUNNING, "c still runs");
	finish(r, idx(def, "c"), json_null(), &o);
	cr_expect_eq(r->steps[idx(def, "d")].state, WEFT_STEP_UPSTREAM_FAILED);
	cr_expect_str_eq(r->steps[idx(def, "d")].error, "upstream failed: b");
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	cr_expect_eq(count_events(&o, WEFT_EV_RUN_FAILED), 1);
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_SKIPPED), 0);
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_UPSTREAM_FAILED), 1);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, trigger_all_done_runs_after_failure)
{
	weft_def *def = weft_t_def(
	    "{\"name\":\"t\",\"steps\":[{\"id\":\"a\",\"type\":\"fail\"},"
	    "{\"id\":\"cleanup\",\"type\":\"noop\",\"depends_on\":[\"a\"],"
	    "\"trigger\":\"all_done\"},{\"id\":\"next\",\"type\":\"noop\","
	    "\"depends_on\":[\"a\"]}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R3", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	fail(r, idx(def, "a"), "nope", &o);
	cr_expect_eq(r->steps[idx(def, "cleanup")].state, WEFT_STEP_READY);
	cr_expect_eq(r->steps[idx(def, "next")].state, WEFT_STEP_UPSTREAM_FAILED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, when_false_skips)
{
	weft_def *def = weft_t_def(
	    "{\"name\":\"w\",\"steps\":[{\"id\":\"a\",\"type\":\"echo\"},"
	    "{\"id\":\"b\",\"type\":\"noop\",\"depends_on\":[\"a\"],"
	    "\"when\":\"steps.a.output.n > 5\"},{\"id\":\"c\",\"type\":\"noop\","
	    "\"depends_on\":[\"a\"],\"when\":\"steps.a.output.n < 5\"}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R4", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	finish(r, idx(def, "a"), json_pack("{s:i}", "n", 3), &o);
	cr_expect_eq(r->steps[idx(def, "b")].state, WEFT_STEP_SKIPPED);
	cr_expect_eq(r->steps[idx(def, "c")].state, WEFT_STEP_READY);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, retry_then_success_and_stale_result_ignored)
{
	weft_def *def = weft_t_def(
	    "{\"name\":\"r\",\"steps\":[{\"id\":\"a\",\"type\":\"fail\","
	    "\"retry\":{\"max_attempts\":3,\"backoff\":\"fixed\","
	    "\"initial_ms\":100}}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R5", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	fail(r, 0, "first", &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_RETRY_WAIT);
	cr_expect(has_effect(&o, WEFT_EFFECT_RETRY_TIMER, 0));
	cr_expect_eq(r->steps[0].due_ms, 1101);
	cr_expect_eq(weft_run_retry_due(r, WEFT_REF(0), 1, &o), WEFT_OK);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_READY);
	cr_expect_eq(weft_run_retry_due(r, WEFT_REF(0), 1, &o), WEFT_ESTATE,
	    "a repeated timer changes nothing");
	cr_assert_eq(weft_run_dispatched(r, WEFT_REF(0), "w2", 2000, &o), WEFT_OK);
	cr_expect_eq(r->steps[0].attempt, 2);

	// A late result of attempt 1 is recorded as ignored, not applied.
	weft_result late = { .attempt = 1, .ok = true, .node = "w1" };
	size_t      before = o.nevents;
	cr_expect_eq(weft_run_result(r, WEFT_REF(0), &late, 2001, &o), WEFT_ESTATE);
	cr_expect_eq(o.nevents, before + 1);
	cr_expect_eq(o.events[before].type, WEFT_EV_RESULT_IGNORED);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_DISPATCHED);

	weft_result ok = { .attempt = 2, .ok = true, .node = "w2" };
	cr_expect_eq(weft_run_result(r, WEFT_REF(0), &ok, 2002, &o), WEFT_OK);
	cr_expect_eq(r->state, WEFT_RUN_SUCCEEDED);
	// The same result again (a re-send before our ack) is dropped
	// silently: at most one terminal event per attempt.
	before = o.nevents;
	cr_expect_eq(weft_run_result(r, WEFT_REF(0), &ok, 2003, &o), WEFT_ESTATE);
	cr_expect_eq(o.nevents, before);
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_SUCCEEDED), 1);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// A result may overtake its worker's "accepted" reply: the attempt ran,
// so the log still has its step_started, just before how it ended, and
// the late yes changes nothing. For a success and for a failure.
Test(run, result_before_accept_still_logs_the_start)
{
	weft_def *def = weft_t_def(
	    "{\"name\":\"o\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"},"
	    "{\"id\":\"b\",\"type\":\"fail\"}]}");
	static const struct {
		const char          *step;
		bool                 ok;
		enum weft_event_type end;
	} rows[] = {
		{ "a", true, WEFT_EV_STEP_SUCCEEDED },
		{ "b", false, WEFT_EV_STEP_FAILED },
	};
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("O1", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		long        i   = idx(def, rows[k].step);
		weft_result res = { .attempt = 1, .ok = rows[k].ok,
			.error = rows[k].ok ? NULL : "no", .node = "w1" };
		cr_assert_eq(weft_run_dispatched(r, WEFT_REF(i), "w1", 10, &o),
		    WEFT_OK);
		size_t before = o.nevents;
		cr_assert_eq(weft_run_result(r, WEFT_REF(i), &res, 11, &o), WEFT_OK);
		cr_assert_gt(o.nevents, before + 1, "%s", rows[k].step);
		cr_expect_eq(o.events[before].type, WEFT_EV_STEP_STARTED, "%s: %s",
		    rows[k].step, weft_event_name(o.events[before].type));
		cr_expect_str_eq(o.events[before].node, "w1");
		cr_expect_eq(o.events[before + 1].type, rows[k].end, "%s: %s",
		    rows[k].step, weft_event_name(o.events[before + 1].type));
		before = o.nevents;
		cr_expect_eq(weft_run_accepted(r, WEFT_REF(i), 1, &o), WEFT_ESTATE,
		    "%s: the late yes applied", rows[k].step);
		cr_expect_eq(o.nevents, before);
	}
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_STARTED), 2);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, retries_exhausted_fail)
{
	weft_def *def = weft_t_def(
	    "{\"name\":\"r\",\"steps\":[{\"id\":\"a\",\"type\":\"fail\","
	    "\"retry\":{\"max_attempts\":2,\"initial_ms\":10}}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R6", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	fail(r, 0, "one", &o);
	weft_run_retry_due(r, WEFT_REF(0), 1, &o);
	fail(r, 0, "two", &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_FAILED);
	cr_expect_str_eq(r->steps[0].error, "two");
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, lost_attempt_is_retried_and_releases_slot)
{
	weft_def *def = weft_t_def(
	    "{\"name\":\"l\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\"}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R7", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, WEFT_REF(0), "w1", 10, &o);
	weft_run_accepted(r, WEFT_REF(0), 1, &o);
	cr_expect_eq(weft_run_lost(r, WEFT_REF(0), 20, &o), WEFT_OK);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_RETRY_WAIT,
	    "a loss is retried even without a retry policy");
	cr_expect(has_effect(&o, WEFT_EFFECT_RELEASE, 0));
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_LOST), 1);
	cr_expect_eq(weft_run_lost(r, WEFT_REF(0), 21, &o), WEFT_ESTATE,
	    "nothing in flight to lose");
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, cancel_aborts_in_flight_and_cancels_rest)
{
	weft_def *def = weft_t_def(diamond);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R8", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, WEFT_REF(idx(def, "a")), "w1", 10, &o);
	cr_expect_eq(weft_run_cancel(r, "test", &o), WEFT_OK);
	cr_expect_eq(r->state, WEFT_RUN_CANCELLED);
	cr_expect(has_effect(&o, WEFT_EFFECT_ABORT, idx(def, "a")));
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_CANCELLED), 4);
	cr_expect_eq(weft_run_cancel(r, "again", &o), WEFT_ESTATE);
	// The run can be retried, and starts where it stopped.
	cr_expect_eq(weft_run_retry(r, 0, &o), WEFT_OK);
	cr_expect_eq(r->state, WEFT_RUN_RUNNING);
	cr_expect_eq(r->steps[idx(def, "a")].state, WEFT_STEP_READY);
	cr_expect_eq(r->steps[idx(def, "d")].state, WEFT_STEP_PENDING);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, pause_holds_new_work_until_resume)
{
	weft_def *def = weft_t_def(diamond);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R9", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, WEFT_REF(idx(def, "a")), "w1", 10, &o);
	cr_expect_eq(weft_run_pause(r, &o), WEFT_OK);
	weft_out_reset(&o);
	weft_result ok = { .attempt = 1, .ok = true, .node = "w1" };
	weft_run_result(r, WEFT_REF(idx(def, "a")), &ok, 20, &o);
	cr_expect_eq(r->steps[idx(def, "b")].state, WEFT_STEP_READY);
	cr_expect_eq(weft_run_dispatched(r, WEFT_REF(idx(def, "b")), "w1", 21, &o),
	    WEFT_ESTATE, "a paused run dispatches nothing");
	weft_out_reset(&o);
	cr_expect_eq(weft_run_resume(r, &o), WEFT_OK);
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "b")));
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "c")));
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, unrenderable_input_fails_step)
{
	weft_def *def = weft_t_def(
	    "{\"name\":\"u\",\"steps\":[{\"id\":\"a\",\"type\":\"echo\","
	    "\"with\":{\"x\":\"${input.missing}\"}}]}");
	weft_out o;
	char     err[256];

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R10", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	cr_expect_null(weft_run_step_input(r, WEFT_REF(0), err, sizeof(err)));
	cr_expect(strstr(err, "input.missing") != NULL, "%s", err);
	cr_expect_eq(weft_run_fail_step(r, WEFT_REF(0), err, 5, &o), WEFT_OK);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, long_chain_of_skips_does_not_recurse)
{
	// 20,000 steps in a chain; the first fails and every other one is
	// upstream_failed through the worklist, not the C stack.
	size_t n   = 20000;
	size_t cap = n * 80 + 100;
	char  *buf = malloc(cap);
	size_t len = (size_t) snprintf(buf, cap,
            "{\"name\":\"c\",\"steps\":[{\"id\":\"s0\",\"type\":\"noop\"}");
	for (size_t i = 1; i < n; i++) {
		len += (size_t) snprintf(buf + len, cap - len,
		    ",{\"id\":\"s%zu\",\"type\":\"noop\",\"depends_on\":[\"s%zu\"]}",
		    i, i - 1);
	}
	snprintf(buf + len, cap - len, "]}");
	weft_def *def = weft_t_def(buf);
	free(buf);
	weft_out o;
	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R11", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	fail(r, 0, "x", &o);
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_UPSTREAM_FAILED), (int) n - 1);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

static int
count_effects(const weft_out *o, enum weft_effect_kind kind, long step)
{
	int n = 0;
	for (size_t k = 0; k < o->neffects; k++) {
		n += o->effects[k].kind == kind && o->effects[k].step == step &&
		    o->effects[k].item >= 0;
	}
	return (n);
}

static void
item_finish(weft_run *r, long i, long k, bool ok, weft_out *o)
{
	weft_ref u = { i, k };
	cr_assert_eq(weft_run_dispatched(r, u, "w1", 10, o), WEFT_OK);
	json_t     *out = json_pack("{s:i}", "k", (int) k);
	weft_result res = { .attempt = weft_run_unit(r, u)->attempt, .ok = ok,
		.output = out, .error = "bad item", .node = "w1" };
	cr_assert_eq(weft_run_result(r, u, &res, 11, o), WEFT_OK);
	json_decref(out);
}

static const char *mapdef =
    "{\"name\":\"m\",\"steps\":[{\"id\":\"m\",\"type\":\"echo\","
    "\"map\":\"input.xs\",\"max_parallel\":2,\"with\":{\"x\":\"${item}\","
    "\"i\":\"${index}\"}},{\"id\":\"after\",\"type\":\"noop\","
    "\"depends_on\":[\"m\"]}]}";

Test(run, map_fans_out_with_max_parallel_and_collects_in_order)
{
	weft_def *def = weft_t_def(mapdef);
	weft_out  o;
	char      err[128];

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("M1", def,
	    json_pack("{s:[s,s,s]}", "xs", "a", "b", "c"), NULL, 0, &o);
	weft_run_start(r, 0, &o);
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_EXPANDED), 1);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_RUNNING);
	cr_expect_eq(r->steps[0].nitems, 3);
	cr_expect_eq(count_effects(&o, WEFT_EFFECT_ENQUEUE, 0), 2,
	    "max_parallel 2: two items ready");
	// An item's input carries its element and position.
	json_t *in = weft_run_step_input(r, (weft_ref) { 0, 1 }, err, sizeof(err));
	cr_assert_not_null(in, "%s", err);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(in, "with"), "x")),
	    "b");
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(in, "with"), "i")),
	    1);
	json_decref(in);
	item_finish(r, 0, 1, true, &o);
	cr_expect_eq(count_effects(&o, WEFT_EFFECT_ENQUEUE, 0), 3,
	    "one ended, the third starts");
	item_finish(r, 0, 0, true, &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_RUNNING);
	item_finish(r, 0, 2, true, &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_SUCCEEDED);
	json_t *out = r->steps[0].output;
	cr_assert_eq(json_array_size(out), 3);
	for (int k = 0; k < 3; k++) {
		cr_expect_eq(json_integer_value(json_object_get(
		                 json_array_get(out, (size_t) k), "k")),
		    k, "outputs in list order");
	}
	cr_expect_eq(r->steps[1].state, WEFT_STEP_READY);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, map_item_failure_fails_step_after_all_items)
{
	weft_def *def = weft_t_def(mapdef);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("M2", def,
	    json_pack("{s:[i,i,i]}", "xs", 1, 2, 3), NULL, 0, &o);
	weft_run_start(r, 0, &o);
	item_finish(r, 0, 0, false, &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_RUNNING, "others still run");
	item_finish(r, 0, 1, true, &o);
	item_finish(r, 0, 2, true, &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_FAILED);
	cr_expect(strstr(r->steps[0].error, "1 of 3 items failed; item 0") != NULL,
	    "%s", r->steps[0].error);
	cr_expect_eq(r->steps[1].state, WEFT_STEP_UPSTREAM_FAILED);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, map_over_non_array_fails_and_empty_succeeds)
{
	weft_def *def = weft_t_def(mapdef);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("M3", def, json_pack("{s:s}", "xs", "no"),
	    NULL, 0, &o);
	weft_run_start(r, 0, &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_FAILED);
	cr_expect(strstr(r->steps[0].error, "input.xs") != NULL, "%s",
	    r->steps[0].error);
	weft_run_free(r);
	weft_out_reset(&o);
	r = weft_run_alloc("M4", def, json_pack("{s:[]}", "xs"), NULL, 0, &o);
	weft_run_start(r, 0, &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_SUCCEEDED);
	cr_expect_eq(json_array_size(r->steps[0].output), 0);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, map_items_are_lost_retried_and_cancelled)
{
	weft_def *def = weft_t_def(mapdef);
	weft_out  o;
	weft_ref  u0 = { 0, 0 }, u1 = { 0, 1 };

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("M5", def,
	    json_pack("{s:[i,i]}", "xs", 1, 2), NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, u0, "w1", 5, &o);
	weft_run_dispatched(r, u1, "w2", 5, &o);
	cr_expect_eq(weft_run_lost(r, u0, 6, &o), WEFT_OK);
	cr_expect_eq(weft_run_unit(r, u0)->state, WEFT_STEP_RETRY_WAIT);
	weft_out_reset(&o);
	cr_expect_eq(weft_run_cancel(r, "stop", &o), WEFT_OK);
	cr_expect_eq(count_effects(&o, WEFT_EFFECT_ABORT, 0), 1,
	    "the in-flight item is aborted");
	cr_expect_eq(weft_run_unit(r, u1)->state, WEFT_STEP_CANCELLED);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_CANCELLED);
	// The aggregate is not a unit a worker runs.
	weft_result bogus = { .attempt = 1, .ok = true };
	cr_expect_eq(weft_run_result(r, WEFT_REF(0), &bogus, 7, &o), WEFT_EINVAL);
	cr_expect_null(weft_run_unit(r, (weft_ref) { 0, 9 }));
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, events_keep_the_node_they_name)
{
	weft_def *def = weft_t_def(
	    "{\"name\":\"n\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\"}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("N1", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, WEFT_REF(0), "wA", 1, &o);
	weft_run_lost(r, WEFT_REF(0), 2, &o);
	weft_run_retry_due(r, WEFT_REF(0), 1, &o);
	weft_run_dispatched(r, WEFT_REF(0), "wB", 3, &o);
	// All in one batch: the loss still names wA, the new attempt wB.
	for (size_t k = 0; k < o.nevents; k++) {
		if (o.events[k].type == WEFT_EV_STEP_LOST ||
		    o.events[k].type == WEFT_EV_STEP_RETRY_SCHEDULED) {
			cr_expect_str_eq(o.events[k].node, "wA", "%s",
			    weft_event_name(o.events[k].type));
		}
	}
	cr_expect_str_eq(o.events[o.nevents - 1].node, "wB");
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, unit_names_parse_and_bound)
{
	weft_def *def = weft_t_def(mapdef);
	weft_out  o;
	weft_ref  u;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("B1", def, json_pack("{s:[i]}", "xs", 1),
	    NULL, 0, &o);
	weft_run_start(r, 0, &o);
	cr_expect_not_null(weft_run_unit(r, (weft_ref) { 0, 0 }));
	cr_expect_null(weft_run_unit(r, (weft_ref) { 0, 1 }));
	cr_expect_null(weft_run_unit(r, (weft_ref) { 0, 4294967296L }),
	    "an index that wraps to 0 in 32 bits is still out of range");
	cr_expect_null(weft_run_unit(r, (weft_ref) { 5, -1 }));
	cr_expect_not(weft_ref_parse("m[4294967296]", NULL, NULL, &u));
	cr_expect_not(weft_ref_parse("m[x]", NULL, NULL, &u));
	cr_expect_not(weft_ref_parse("m[-1]", NULL, NULL, &u));
	// A result without an attempt number is nobody's.
	weft_result res = { .attempt = 0, .ok = true };
	cr_expect_eq(weft_run_result(r, (weft_ref) { 0, 0 }, &res, 1, &o),
	    WEFT_EINVAL);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// ---- trigger rules and retry backoff at the run level, from tables ----

// find_step_event returns the first event of a type about step i, or NULL.
static const weft_out_event *
find_step_event(const weft_out *o, enum weft_event_type type, long i)
{
	for (size_t k = 0; k < o->nevents; k++) {
		if (o->events[k].type == type &&
		    o->events[k].step == i) {
			return (&o->events[k]);
		}
	}
	return (NULL);
}

// find_effect returns the first effect of a kind about step i, or NULL.
static const weft_effect *
find_effect(const weft_out *o, enum weft_effect_kind kind, long i)
{
	for (size_t k = 0; k < o->neffects; k++) {
		if (o->effects[k].kind == kind && o->effects[k].step == i) {
			return (&o->effects[k]);
		}
	}
	return (NULL);
}

// count_kind counts the effects of a kind, whatever they are about.
static int
count_kind(const weft_out *o, enum weft_effect_kind kind)
{
	int n = 0;
	for (size_t k = 0; k < o->neffects; k++) {
		n += o->effects[k].kind == kind;
	}
	return (n);
}

// How a dependency of the step under test ends.
enum dep_end {
	DEP_OK,   // succeeded
	DEP_FAIL, // failed for good (no retry policy)
	DEP_SKIP, // skipped: its `when` is false
	DEP_UPF,  // upstream_failed: its own dependency x<k> failed
};

// The dependency outcomes every trigger rule meets: how the dependencies
// of step "t" end (no dependency: "t" is a root).
static const struct trigger_deps {
	const char  *name;
	size_t       ndeps;
	enum dep_end ends[2];
} trigger_deps[] = {
	{ "no dependency", 0, { DEP_OK, DEP_OK } },
	{ "all succeeded", 2, { DEP_OK, DEP_OK } },
	{ "all failed", 2, { DEP_FAIL, DEP_FAIL } },
	{ "all skipped", 2, { DEP_SKIP, DEP_SKIP } },
	{ "all upstream_failed", 2, { DEP_UPF, DEP_UPF } },
	{ "succeeded+failed", 2, { DEP_OK, DEP_FAIL } },
	{ "succeeded+skipped", 2, { DEP_OK, DEP_SKIP } },
	{ "succeeded+upstream_failed", 2, { DEP_OK, DEP_UPF } },
	{ "failed+skipped", 2, { DEP_FAIL, DEP_SKIP } },
	{ "failed+upstream_failed", 2, { DEP_FAIL, DEP_UPF } },
	{ "skipped+upstream_failed", 2, { DEP_SKIP, DEP_UPF } },
};

#define TRIGGER_NDEPS (sizeof(trigger_deps) / sizeof(trigger_deps[0]))

enum trigger_want { SKIPS, RUNS, UPFAILS };

// Every trigger rule of the definition language (docs/definitions.md,
// "Trigger rules"; def.h) and what step "t" ends as after each row of
// trigger_deps, in that order (ok succeeded, F failed, K skipped, A
// upstream_failed): Airflow's answers. A root has nothing to wait for: it
// runs whatever its rule.
#define RU RUNS
#define SK SKIPS
#define UF UPFAILS
static const struct trigger_row {
	const char       *trigger; // NULL: no "trigger" field
	enum weft_trigger parsed;
	enum trigger_want want[TRIGGER_NDEPS];
} trigger_rows[] = {
	// clang-format off
	//                                   none ok,ok F,F K,K A,A ok,F ok,K ok,A F,K F,A K,A
	{ NULL, WEFT_TRIGGER_ALL_SUCCESS,    { RU, RU,  UF, SK, UF, UF,  SK,  UF,  UF, UF, UF } },
	{ "all_success", WEFT_TRIGGER_ALL_SUCCESS,
	                                     { RU, RU,  UF, SK, UF, UF,  SK,  UF,  UF, UF, UF } },
	{ "all_done", WEFT_TRIGGER_ALL_DONE, { RU, RU,  RU, RU, RU, RU,  RU,  RU,  RU, RU, RU } },
	{ "one_success", WEFT_TRIGGER_ONE_SUCCESS,
	                                     { RU, RU,  UF, SK, UF, RU,  RU,  RU,  UF, UF, UF } },
	{ "none_failed", WEFT_TRIGGER_NONE_FAILED,
	                                     { RU, RU,  UF, RU, UF, UF,  RU,  UF,  UF, UF, UF } },
	{ "all_failed", WEFT_TRIGGER_ALL_FAILED,
	                                     { RU, SK,  RU, SK, RU, SK,  SK,  SK,  SK, RU, SK } },
	{ "one_failed", WEFT_TRIGGER_ONE_FAILED,
	                                     { RU, SK,  RU, SK, RU, RU,  SK,  RU,  RU, RU, RU } },
	{ "one_done", WEFT_TRIGGER_ONE_DONE, { RU, RU,  RU, SK, SK, RU,  RU,  RU,  RU, RU, SK } },
	{ "none_failed_min_one_success", WEFT_TRIGGER_NONE_FAILED_MIN_ONE_SUCCESS,
	                                     { RU, RU,  UF, SK, UF, UF,  RU,  UF,  UF, UF, UF } },
	{ "none_skipped", WEFT_TRIGGER_NONE_SKIPPED,
	                                     { RU, RU,  RU, SK, RU, RU,  SK,  RU,  SK, RU, SK } },
	{ "all_skipped", WEFT_TRIGGER_ALL_SKIPPED,
	                                     { RU, SK,  SK, RU, SK, SK,  SK,  SK,  SK, SK, SK } },
	// clang-format on
};
#undef RU
#undef SK
#undef UF

// trigger_def writes the definition of a trigger case: dependencies d0,
// d1 as the deps row says (an upstream_failed one behind its own x<k>),
// then "t" under the row's rule.
static weft_def *
trigger_def(const struct trigger_row *row, const struct trigger_deps *deps)
{
	char   text[1024];
	size_t len = 0;

	len += (size_t) snprintf(text + len, sizeof(text) - len,
	    "{'name':'tr','steps':[");
	for (size_t k = 0; k < deps->ndeps; k++) {
		if (deps->ends[k] == DEP_UPF) {
			len += (size_t) snprintf(text + len, sizeof(text) - len,
			    "{'id':'x%zu','type':'noop'},", k);
		}
		len += (size_t) snprintf(text + len, sizeof(text) - len,
		    "{'id':'d%zu','type':'noop'%s", k,
		    deps->ends[k] == DEP_SKIP ? ",'when':'false'" : "");
		if (deps->ends[k] == DEP_UPF) {
			len += (size_t) snprintf(text + len, sizeof(text) - len,
			    ",'depends_on':['x%zu']", k);
		}
		len += (size_t) snprintf(text + len, sizeof(text) - len, "},");
	}
	len += (size_t) snprintf(
	    text + len, sizeof(text) - len, "{'id':'t','type':'noop'");
	if (deps->ndeps > 0) {
		len += (size_t) snprintf(text + len, sizeof(text) - len,
		    ",'depends_on':['d0'%s]", deps->ndeps > 1 ? ",'d1'" : "");
	}
	if (row->trigger != NULL) {
		len += (size_t) snprintf(text + len, sizeof(text) - len,
		    ",'trigger':'%s'", row->trigger);
	}
	snprintf(text + len, sizeof(text) - len, "}]}");
	return (weft_t_def_sq(text));
}

// trigger_early_check: t is still pending exactly while the pure evaluator
// says its dependencies as they stand cannot decide it (one_success fires
// at the first success, all_success fails at the first failure).
static void
trigger_early_check(weft_run *r, const weft_def *def, long t,
    const char *name, const char *when)
{
	weft_trigger_counts c = { 0 };

	for (size_t k = 0; k < def->steps[t].ndeps; k++) {
		weft_trigger_count(&c, r->steps[def->steps[t].deps[k]].state);
	}
	bool wait = weft_trigger_eval(def->steps[t].trigger, &c) ==
	    WEFT_TRIGGER_WAIT;
	cr_expect_eq(r->steps[t].state == WEFT_STEP_PENDING, wait,
	    "%s, %s: t is %s, the rule says %s", name, when,
	    weft_step_state_name(r->steps[t].state),
	    wait ? "wait" : "decided");
}

// trigger_case runs one cell of the table: the dependencies end (those a
// worker ends in the given order), t is decided as early as its rule
// allows and no earlier, ends as the row says, and the run ends as its
// steps say.
static void
trigger_case(const struct trigger_row *row, size_t di, bool reverse)
{
	const struct trigger_deps *deps = &trigger_deps[di];
	weft_def                  *def  = trigger_def(row, deps);
	long                       t    = idx(def, "t");
	size_t                     order[2]; // deps a worker ends
	size_t                     n = 0, nfailed = 0;
	char                       name[128], dep[8];
	weft_out                   o;

	snprintf(name, sizeof(name), "trigger %s, %s%s",
	    row->trigger != NULL ? row->trigger : "(default)", deps->name,
	    reverse ? " (reversed)" : "");
	cr_assert_eq(def->steps[t].trigger, row->parsed, "%s: parsed as %d",
	    name, (int) def->steps[t].trigger);
	weft_out_init(&o);
	weft_run *r = weft_run_alloc("TR", def, NULL, NULL, 0, &o);
	cr_assert_eq(weft_run_start(r, 0, &o), WEFT_OK);

	// Skipped dependencies end at start; the others end one by one.
	for (size_t k = 0; k < deps->ndeps; k++) {
		if (deps->ends[k] != DEP_SKIP) {
			order[n++] = k;
		}
		nfailed += deps->ends[k] == DEP_FAIL || deps->ends[k] == DEP_UPF;
	}
	trigger_early_check(r, def, t, name, "at start");
	for (size_t k = 0; k < n; k++) {
		size_t j = order[reverse ? n - 1 - k : k];
		snprintf(dep, sizeof(dep), "d%zu", j);
		if (deps->ends[j] == DEP_OK) {
			finish(r, idx(def, dep), json_null(), &o);
		} else if (deps->ends[j] == DEP_FAIL) {
			fail(r, idx(def, dep), "dependency failed", &o);
		} else {
			dep[0] = 'x';
			fail(r, idx(def, dep), "its dependency failed", &o);
			dep[0] = 'd';
			cr_expect_eq(r->steps[idx(def, dep)].state,
			    WEFT_STEP_UPSTREAM_FAILED, "%s: %s is %s", name, dep,
			    weft_step_state_name(r->steps[idx(def, dep)].state));
		}
		trigger_early_check(r, def, t, name, dep);
	}

	enum weft_step_state st = r->steps[t].state;
	if (row->want[di] == RUNS) {
		cr_expect_eq(st, WEFT_STEP_READY, "%s: t must run, is %s", name,
		    weft_step_state_name(st));
		cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, t),
		    "%s: t not queued", name);
		cr_expect_not_null(find_step_event(&o, WEFT_EV_STEP_READY, t),
		    "%s: no step_ready for t", name);
		cr_expect_eq(r->state, WEFT_RUN_RUNNING,
		    "%s: the run must wait for t, is %s", name,
		    weft_run_state_name(r->state));
		if (st == WEFT_STEP_READY) {
			finish(r, t, json_null(), &o); // dispatched, succeeded
		}
	} else if (row->want[di] == UPFAILS) {
		const weft_out_event *e =
		    find_step_event(&o, WEFT_EV_STEP_UPSTREAM_FAILED, t);
		cr_expect_eq(st, WEFT_STEP_UPSTREAM_FAILED,
		    "%s: t must be upstream_failed, is %s", name,
		    weft_step_state_name(st));
		cr_expect_not(has_effect(&o, WEFT_EFFECT_ENQUEUE, t),
		    "%s: t queued", name);
		cr_expect(e != NULL && json_array_size(json_object_get(
		                           e->data, "upstream")) > 0,
		    "%s: no step_upstream_failed naming the upstream", name);
	} else {
		const weft_out_event *e =
		    find_step_event(&o, WEFT_EV_STEP_SKIPPED, t);
		cr_expect_eq(st, WEFT_STEP_SKIPPED,
		    "%s: t must be skipped, is %s", name,
		    weft_step_state_name(st));
		cr_expect_not(has_effect(&o, WEFT_EFFECT_ENQUEUE, t),
		    "%s: t queued", name);
		cr_expect(e != NULL &&
		        strcmp(json_string_value(json_object_get(
		                   e->data, "reason")),
		            "trigger rule not met") == 0,
		    "%s: no step_skipped for the trigger rule", name);
	}
	// A run fails when a step failed for good, whatever ran after it.
	enum weft_run_state want_run =
	    nfailed > 0 ? WEFT_RUN_FAILED : WEFT_RUN_SUCCEEDED;
	cr_expect_eq(r->state, want_run, "%s: run %s, want %s", name,
	    weft_run_state_name(r->state), weft_run_state_name(want_run));
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, trigger_rule_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(trigger_rows) / sizeof(trigger_rows[0]);
	     i++) {
		for (size_t di = 0; di < TRIGGER_NDEPS; di++) {
			trigger_case(&trigger_rows[i], di, false);
			trigger_case(&trigger_rows[i], di, true);
		}
	}
}

// A backoff row: step "a" with retry policy `retry` (' for ") sees its
// attempts end as `ends` says, one letter each: F failed, T timed out, L
// lost with its worker, R rejected by the worker. want[k] is the delay in
// ms the k-th end schedules before the next attempt, -1 when that end
// fails the step for good (the last end). A rejection makes the step ready
// at once, without a timer; its entry is not read. With jitter, want is
// the delay before jitter, and the delay must lie within +-20% of it.
struct backoff_row {
	const char *name;
	const char *retry;
	const char *ends;
	int64_t     want[12];
};

static const struct backoff_row backoff_rows[] = {
	{ "fixed", "{'max_attempts':4,'backoff':'fixed','initial_ms':250}",
	    "FFFF", { 250, 250, 250, -1 } },
	{ "fixed, timeouts count as failures",
	    "{'max_attempts':3,'backoff':'fixed','initial_ms':250,"
	    "'max_ms':1000}",
	    "TFT", { 250, 250, -1 } },
	{ "linear, capped by max_ms",
	    "{'max_attempts':6,'backoff':'linear','initial_ms':100,"
	    "'max_ms':350}",
	    "FFFFFF", { 100, 200, 300, 350, 350, -1 } },
	{ "exponential, capped by max_ms",
	    "{'max_attempts':7,'backoff':'exponential','initial_ms':100,"
	    "'max_ms':1000}",
	    "FFFFFFF", { 100, 200, 400, 800, 1000, 1000, -1 } },
	{ "exponential by default, capped at 60 s by default",
	    "{'max_attempts':9,'initial_ms':1000}", "FFFFFFFFF",
	    { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, -1 } },
	{ "exponential counts failures and timeouts, not losses or rejections",
	    "{'max_attempts':4,'backoff':'exponential','initial_ms':100,"
	    "'max_ms':10000}",
	    "FLTRFLF", { 100, 0, 200, 0, 400, 0, -1 } },
	{ "exponential past 32 bits stays at the cap",
	    "{'max_attempts':3,'backoff':'exponential',"
	    "'initial_ms':3000000000,'max_ms':4294967295}",
	    "FFF", { 3000000000, 4294967295, -1 } },
	{ "exponential with jitter, capped",
	    "{'max_attempts':6,'backoff':'exponential','initial_ms':1000,"
	    "'max_ms':5000,'jitter':true}",
	    "FFFFFF", { 1000, 2000, 4000, 5000, 5000, -1 } },
	{ "linear with jitter",
	    "{'max_attempts':4,'backoff':'linear','initial_ms':1000,"
	    "'jitter':true}",
	    "FFTF", { 1000, 2000, 3000, -1 } },
	{ "fixed with jitter; a loss waits no backoff",
	    "{'max_attempts':4,'backoff':'fixed','initial_ms':500,"
	    "'jitter':true}",
	    "FLFFF", { 500, 0, 500, 500, -1 } },
};

// backoff_end ends the current attempt of step 0 at time `at` as c says.
static void
backoff_end(weft_run *r, char c, int64_t at, weft_out *o)
{
	uint32_t    att = r->steps[0].attempt;
	weft_result res = { .attempt = att, .ok = false, .error = "no",
		.node = "w1" };

	switch (c) {
	case 'F':
		cr_assert_eq(
		    weft_run_result(r, WEFT_REF(0), &res, at, o), WEFT_OK);
		break;
	case 'T':
		cr_assert_eq(
		    weft_run_timeout(r, WEFT_REF(0), att, at, o), WEFT_OK);
		break;
	case 'L':
		cr_assert_eq(weft_run_lost(r, WEFT_REF(0), at, o), WEFT_OK);
		break;
	default:
		cr_assert_eq(
		    weft_run_rejected(r, WEFT_REF(0), att, "busy", o), WEFT_OK);
		break;
	}
}

// backoff_case drives a run of the row's definition through its ends and
// checks each delay, both in step_retry_scheduled and in the RETRY_TIMER
// effect; got[k] receives the k-th delay (-1 where none).
static void
backoff_case(const struct backoff_row *row, const char *run_id, int64_t *got)
{
	char      text[512];
	size_t    n = strlen(row->ends);
	int64_t   now = 100;
	weft_out  o;
	weft_def *def;

	snprintf(text, sizeof(text),
	    "{'name':'b','steps':[{'id':'a','type':'fail','timeout_ms':50,"
	    "'retry':%s}]}",
	    row->retry);
	def = weft_t_def_sq(text);
	weft_out_init(&o);
	weft_run *r = weft_run_alloc(run_id, def, NULL, NULL, 0, &o);
	cr_assert_eq(weft_run_start(r, 0, &o), WEFT_OK);
	for (size_t k = 0; k < n; k++) {
		char    c   = row->ends[k];
		int64_t end = now + 7;

		got[k] = -1;
		cr_assert_eq(weft_run_dispatched(r, WEFT_REF(0), "w1", now, &o),
		    WEFT_OK, "%s: dispatch of end %zu", row->name, k);
		uint32_t att = r->steps[0].attempt;
		if (c != 'R') {
			cr_assert_eq(weft_run_accepted(r, WEFT_REF(0), att, &o),
			    WEFT_OK);
		}
		weft_out_reset(&o);
		backoff_end(r, c, end, &o);

		const weft_out_event *sched =
		    find_step_event(&o, WEFT_EV_STEP_RETRY_SCHEDULED, 0);
		int ntimers = count_kind(&o, WEFT_EFFECT_RETRY_TIMER);
		if (c == 'R' || row->want[k] < 0) {
			enum weft_step_state want_st =
			    c == 'R' ? WEFT_STEP_READY : WEFT_STEP_FAILED;
			cr_expect_eq(r->steps[0].state, want_st,
			    "%s: end %zu (%c): step %s, want %s", row->name, k,
			    c, weft_step_state_name(r->steps[0].state),
			    weft_step_state_name(want_st));
			cr_expect_null(sched, "%s: end %zu (%c): a retry "
			    "scheduled", row->name, k, c);
			cr_expect_eq(ntimers, 0, "%s: end %zu (%c): a timer",
			    row->name, k, c);
			now = end + 1;
			continue;
		}
		cr_assert_eq(r->steps[0].state, WEFT_STEP_RETRY_WAIT,
		    "%s: end %zu (%c): step %s", row->name, k, c,
		    weft_step_state_name(r->steps[0].state));
		cr_assert_not_null(sched, "%s: end %zu (%c): no retry "
		    "scheduled", row->name, k, c);
		cr_assert_eq(ntimers, 1, "%s: end %zu (%c): %d timers",
		    row->name, k, c, ntimers);
		const weft_effect *f =
		    find_effect(&o, WEFT_EFFECT_RETRY_TIMER, 0);
		int64_t d = json_integer_value(json_object_get(sched->data,
		    "delay_ms"));
		got[k]    = d;
		cr_expect_eq(sched->attempt, att, "%s: end %zu: event attempt",
		    row->name, k);
		cr_expect_eq(f->attempt, att, "%s: end %zu: timer attempt",
		    row->name, k);
		cr_expect_eq(f->at_ms, end + d,
		    "%s: end %zu: timer at %lld, want %lld + %lld", row->name,
		    k, (long long) f->at_ms, (long long) end, (long long) d);
		cr_expect_eq(r->steps[0].due_ms, f->at_ms,
		    "%s: end %zu: due_ms", row->name, k);
		if (def->steps[0].retry.jitter && c != 'L') {
			cr_expect(d * 5 >= row->want[k] * 4 &&
			        d * 5 <= row->want[k] * 6,
			    "%s: end %zu (%c): delay %lld outside %lld +-20%%",
			    row->name, k, c, (long long) d,
			    (long long) row->want[k]);
		} else {
			cr_expect_eq(d, row->want[k],
			    "%s: end %zu (%c): delay %lld, want %lld",
			    row->name, k, c, (long long) d,
			    (long long) row->want[k]);
		}
		cr_expect_eq(weft_run_retry_due(r, WEFT_REF(0), att, &o),
		    WEFT_OK, "%s: end %zu: retry_due", row->name, k);
		now = f->at_ms + 3;
	}
	cr_expect_eq(r->steps[0].state, WEFT_STEP_FAILED,
	    "%s: the step must have failed for good, is %s", row->name,
	    weft_step_state_name(r->steps[0].state));
	cr_expect_eq(r->state, WEFT_RUN_FAILED, "%s: run %s", row->name,
	    weft_run_state_name(r->state));
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, retry_backoff_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(backoff_rows) / sizeof(backoff_rows[0]);
	     i++) {
		const struct backoff_row *row = &backoff_rows[i];
		size_t                    n   = strlen(row->ends);
		int64_t                   got[2][12];
		char                      id[16];
		bool                      jittered = false, same_base = false;
		bool                      differ = false;

		cr_assert(n <= 12 && row->want[n - 1] == -1,
		    "%s: the last end must fail the step", row->name);
		snprintf(id, sizeof(id), "BK%zu", i);
		backoff_case(row, id, got[0]);
		// The same run again: jitter is a hash, not a random draw.
		backoff_case(row, id, got[1]);
		for (size_t k = 0; k < n; k++) {
			cr_expect_eq(got[0][k], got[1][k],
			    "%s: end %zu: %lld then %lld for the same run",
			    row->name, k, (long long) got[0][k],
			    (long long) got[1][k]);
			jittered |= got[0][k] != row->want[k] &&
			    row->ends[k] != 'R';
			// Jitter is drawn per attempt: equal base delays of
			// two attempts should not give equal delays.
			for (size_t m = k + 1; m < n; m++) {
				if (row->want[k] > 0 && got[0][k] >= 0 &&
				    got[0][m] >= 0 &&
				    row->want[m] == row->want[k]) {
					same_base = true;
					differ |= got[0][k] != got[0][m];
				}
			}
		}
		if (strstr(row->retry, "'jitter':true") != NULL) {
			cr_expect(jittered, "%s: no delay jittered", row->name);
			cr_expect(!same_base || differ,
			    "%s: every attempt got the same jitter", row->name);
		}
	}
}

// first_retry_delay fails the first attempt of run `id` of def's single
// step and returns the delay it schedules.
static int64_t
first_retry_delay(const weft_def *def, const char *id)
{
	weft_out o;
	int64_t  d;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc(id, def, NULL, NULL, 0, &o);
	cr_assert_eq(weft_run_start(r, 0, &o), WEFT_OK);
	fail(r, 0, "no", &o);
	const weft_out_event *e =
	    find_step_event(&o, WEFT_EV_STEP_RETRY_SCHEDULED, 0);
	cr_assert_not_null(e, "%s: no retry scheduled", id);
	d = json_integer_value(json_object_get(e->data, "delay_ms"));
	cr_expect_eq(find_effect(&o, WEFT_EFFECT_RETRY_TIMER, 0)->at_ms,
	    1001 + d, "%s: timer and event disagree", id);
	weft_out_fini(&o);
	weft_run_free(r);
	return (d);
}

Test(run, retry_jitter_spreads_within_20_percent, .timeout = T_TIMEOUT)
{
	char      text[] = "{'name':'j','steps':[{'id':'a','type':'fail',"
	                   "'retry':{'max_attempts':2,'backoff':'exponential',"
	                   "'initial_ms':1000,'jitter':true}}]}";
	weft_def *def    = weft_t_def_sq(text);
	int64_t   lo = INT64_MAX, hi = 0;
	char      id[16];

	// Runs differ only by id: the hash spreads them over 800..1200 ms.
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "J%d", i);
		int64_t d = first_retry_delay(def, id);
		cr_expect(d >= 800 && d <= 1200, "%s: delay %lld", id,
		    (long long) d);
		cr_expect_eq(first_retry_delay(def, id), d,
		    "%s: not deterministic", id);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	cr_expect(lo <= 820 && hi >= 1180,
	    "jitter spans %lld..%lld, not most of 800..1200", (long long) lo,
	    (long long) hi);
	weft_def_free(def);
}

// max_ms caps every delay, jittered ones too, and a jittered delay near
// the largest cap neither wraps around 32 bits nor passes the cap.
Test(run, retry_jitter_never_passes_the_cap, .timeout = T_TIMEOUT)
{
	static const struct {
		const char *retry;
		int64_t     cap;
	} rows[] = {
		{ "'initial_ms':5000,'max_ms':5000", 5000 },
		{ "'initial_ms':4294967295,'max_ms':4294967295", 4294967295LL },
	};
	char id[16], text[512];

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		snprintf(text, sizeof(text),
		    "{'name':'j','steps':[{'id':'a','type':'fail','retry':"
		    "{'max_attempts':2,'backoff':'fixed',%s,'jitter':true}}]}",
		    rows[k].retry);
		weft_def *def = weft_t_def_sq(text);
		int64_t   lo  = INT64_MAX;
		for (int i = 0; i < 200; i++) {
			snprintf(id, sizeof(id), "C%d", i);
			int64_t d = first_retry_delay(def, id);
			cr_expect(d >= rows[k].cap * 8 / 10 && d <= rows[k].cap,
			    "cap %lld, %s: delay %lld", (long long) rows[k].cap, id,
			    (long long) d);
			lo = d < lo ? d : lo;
		}
		cr_expect_lt(lo, rows[k].cap, "cap %lld: nothing jittered",
		    (long long) rows[k].cap);
		weft_def_free(def);
	}
}

// ---- a draining worker hands attempts back ----

// Rows: how far the attempt got before the worker's goodbye named it, who
// says it, and what must follow. A release is neither a failure nor a
// loss: the retry budget stays whole, and the step is ready at once.
struct release_row {
	const char *name;
	int         stage;   // 0 ready (never sent), 1 dispatched, 2 accepted,
	                     // 3 succeeded, 4 failed once (retry_wait)
	const char *node;    // who hands it back
	int         attempt; // 0: the current attempt; else this one
	weft_err    want_rv;
	enum weft_step_state want_state;
	int         want_released; // step_released events
	bool        want_enqueue;
	bool        want_release_slot;
};

static const struct release_row release_rows[] = {
	{ "dispatched, holder", 1, "w1", 0, WEFT_OK, WEFT_STEP_READY, 1, true,
	    true },
	{ "accepted, holder", 2, "w1", 0, WEFT_OK, WEFT_STEP_READY, 1, true,
	    true },
	{ "accepted, another node", 2, "w2", 0, WEFT_ESTATE, WEFT_STEP_RUNNING,
	    0, false, false },
	{ "accepted, an old attempt", 2, "w1", 7, WEFT_ESTATE,
	    WEFT_STEP_RUNNING, 0, false, false },
	{ "never dispatched", 0, "w1", 1, WEFT_ESTATE, WEFT_STEP_READY, 0, false,
	    false },
	{ "already succeeded", 3, "w1", 0, WEFT_ESTATE, WEFT_STEP_SUCCEEDED, 0,
	    false, false },
	{ "in retry_wait", 4, "w1", 0, WEFT_ESTATE, WEFT_STEP_RETRY_WAIT, 0,
	    false, false },
};

Test(run, released_attempt_table, .timeout = T_TIMEOUT)
{
	for (size_t k = 0; k < sizeof(release_rows) / sizeof(release_rows[0]);
	     k++) {
		const struct release_row *row = &release_rows[k];
		weft_def *def = weft_t_def("{\"name\":\"rel\",\"steps\":[{\"id\":\"a\","
		                       "\"type\":\"sleep\",\"retry\":{"
		                       "\"max_attempts\":2}}]}");
		weft_out  o;
		weft_out_init(&o);
		weft_run *r = weft_run_alloc("R9", def, NULL, NULL, 0, &o);
		weft_run_start(r, 0, &o);
		if (row->stage >= 1) {
			weft_run_dispatched(r, WEFT_REF(0), "w1", 10, &o);
		}
		if (row->stage >= 2) {
			weft_run_accepted(r, WEFT_REF(0), 1, &o);
		}
		if (row->stage >= 3) {
			weft_result res = { .attempt = 1, .ok = row->stage == 3,
				.error = "no", .node = "w1" };
			weft_run_result(r, WEFT_REF(0), &res, 11, &o);
		}
		weft_out_reset(&o);
		uint32_t att = row->attempt ? (uint32_t) row->attempt
		                            : r->steps[0].attempt;
		cr_expect_eq(weft_run_released(r, WEFT_REF(0), att, row->node, &o),
		    row->want_rv, "%s: return", row->name);
		cr_expect_eq(r->steps[0].state, row->want_state, "%s: state %s",
		    row->name, weft_step_state_name(r->steps[0].state));
		cr_expect_eq(count_events(&o, WEFT_EV_STEP_RELEASED),
		    row->want_released, "%s: step_released", row->name);
		cr_expect_eq(count_events(&o, WEFT_EV_STEP_FAILED) +
		        count_events(&o, WEFT_EV_STEP_LOST) +
		        count_events(&o, WEFT_EV_STEP_RETRY_SCHEDULED),
		    0, "%s: a release is no failure, loss or retry", row->name);
		cr_expect_eq(has_effect(&o, WEFT_EFFECT_ENQUEUE, 0),
		    row->want_enqueue, "%s: enqueued", row->name);
		cr_expect_eq(has_effect(&o, WEFT_EFFECT_RELEASE, 0),
		    row->want_release_slot, "%s: slot released", row->name);
		cr_expect_eq(r->steps[0].lost, 0, "%s: counted as lost", row->name);
		cr_expect_eq(r->steps[0].failures, row->stage == 4 ? 1 : 0,
		    "%s: counted as a failure", row->name);
		if (row->want_rv == WEFT_OK) {
			cr_expect_str_empty(r->steps[0].node, "%s: node kept",
			    row->name);
			// Released many times over, it is never a failure: the
			// budget of two attempts stays whole.
			for (int i = 0; i < 5; i++) {
				weft_run_dispatched(r, WEFT_REF(0), "w1", 20, &o);
				cr_expect_eq(weft_run_released(r, WEFT_REF(0),
				                 r->steps[0].attempt, "w1", &o),
				    WEFT_OK, "%s: release %d", row->name, i);
			}
			weft_run_dispatched(r, WEFT_REF(0), "w2", 30, &o);
			weft_result res = { .attempt = r->steps[0].attempt,
				.ok = false, .error = "once", .node = "w2" };
			weft_run_result(r, WEFT_REF(0), &res, 31, &o);
			cr_expect_eq(r->steps[0].state, WEFT_STEP_RETRY_WAIT,
			    "%s: the first real failure must still be retried",
			    row->name);
		}
		weft_out_fini(&o);
		weft_run_free(r);
		weft_def_free(def);
	}
}

// ---- heartbeats and progress ----

// Where a heartbeat row starts: step "a" (heartbeat_timeout_ms 3000, two
// attempts allowed) or "b" (no heartbeat timeout), attempt 1 on w1.
enum hb_setup {
	HB_DISPATCHED, // dispatched, its acceptance not seen yet
	HB_RUNNING,    // accepted
	HB_RETRY_WAIT, // timed out once, waiting for its retry
	HB_SECOND,     // attempt 2 running on w1, after one timeout
	HB_SUCCEEDED,  // ended
};

struct hb_row {
	const char          *name;
	enum hb_setup        setup;
	const char          *step;
	uint32_t             attempt;  // the beat's attempt
	const char          *node;     // who reports it
	int64_t              silent_ms;
	weft_err             want_rv;
	enum weft_step_state want_state;
	bool                 want_abort; // an ABORT effect to w1
	const char          *want_error; // step_failed's error, or NULL
};

static const struct hb_row hb_rows[] = {
	{ "silent for the timeout: timed out, aborted, retried", HB_RUNNING,
	    "a", 1, "w1", 3000, WEFT_OK, WEFT_STEP_RETRY_WAIT, true, NULL },
	{ "silent just below it: nothing", HB_RUNNING, "a", 1, "w1", 2999,
	    WEFT_ESTATE, WEFT_STEP_RUNNING, false, NULL },
	{ "dispatched, acceptance not seen yet: timed out too", HB_DISPATCHED,
	    "a", 1, "w1", 10000, WEFT_OK, WEFT_STEP_RETRY_WAIT, true, NULL },
	{ "an old attempt's beat: nothing", HB_SECOND, "a", 1, "w1", 99999,
	    WEFT_ESTATE, WEFT_STEP_RUNNING, false, NULL },
	{ "another node's beat: nothing", HB_RUNNING, "a", 1, "w2", 99999,
	    WEFT_ESTATE, WEFT_STEP_RUNNING, false, NULL },
	{ "no node: nothing", HB_RUNNING, "a", 1, NULL, 99999, WEFT_ESTATE,
	    WEFT_STEP_RUNNING, false, NULL },
	{ "a step without heartbeat_timeout_ms: never", HB_RUNNING, "b", 1,
	    "w1", 99999999, WEFT_ESTATE, WEFT_STEP_RUNNING, false, NULL },
	{ "waiting for its retry: nothing", HB_RETRY_WAIT, "a", 1, "w1", 99999,
	    WEFT_ESTATE, WEFT_STEP_RETRY_WAIT, false, NULL },
	{ "ended: nothing", HB_SUCCEEDED, "a", 1, "w1", 99999, WEFT_ESTATE,
	    WEFT_STEP_SUCCEEDED, false, NULL },
	{ "the last attempt allowed: failed, saying why", HB_SECOND, "a", 2,
	    "w1", 4000, WEFT_OK, WEFT_STEP_FAILED, true,
	    "no heartbeat for 4000 ms (heartbeat_timeout_ms 3000)" },
};

static const char *hb_def =
    "{\"name\":\"hb\",\"steps\":["
    "{\"id\":\"a\",\"type\":\"hang\",\"heartbeat_timeout_ms\":3000,"
    "\"retry\":{\"max_attempts\":2,\"backoff\":\"fixed\",\"initial_ms\":100}},"
    "{\"id\":\"b\",\"type\":\"hang\"}]}";

// hb_setup_run brings unit i of r to the row's starting point.
static void
hb_setup_run(weft_run *r, long i, enum hb_setup setup, weft_out *o)
{
	cr_assert_eq(weft_run_dispatched(r, WEFT_REF(i), "w1", 1000, o), WEFT_OK);
	if (setup == HB_DISPATCHED) {
		return;
	}
	cr_assert_eq(weft_run_accepted(r, WEFT_REF(i), 1, o), WEFT_OK);
	if (setup == HB_SUCCEEDED) {
		weft_result ok = { .attempt = 1, .ok = true, .node = "w1" };
		cr_assert_eq(weft_run_result(r, WEFT_REF(i), &ok, 1500, o), WEFT_OK);
		return;
	}
	if (setup == HB_RUNNING) {
		return;
	}
	cr_assert_eq(weft_run_heartbeat_timeout(r, WEFT_REF(i), 1, "w1", 3000,
	                 5000, o),
	    WEFT_OK);
	if (setup == HB_RETRY_WAIT) {
		return;
	}
	cr_assert_eq(weft_run_retry_due(r, WEFT_REF(i), 1, o), WEFT_OK);
	cr_assert_eq(weft_run_dispatched(r, WEFT_REF(i), "w1", 6000, o), WEFT_OK);
	cr_assert_eq(weft_run_accepted(r, WEFT_REF(i), 2, o), WEFT_OK);
}

Test(run, heartbeat_timeout_table, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def(hb_def);

	for (size_t k = 0; k < sizeof(hb_rows) / sizeof(hb_rows[0]); k++) {
		const struct hb_row *row = &hb_rows[k];
		weft_out             o;
		long                 i = idx(def, row->step);
		weft_out_init(&o);
		weft_run *r = weft_run_alloc("RHB", def, NULL, NULL, 0, &o);
		weft_run_start(r, 0, &o);
		hb_setup_run(r, i, row->setup, &o);
		size_t ev0 = o.nevents, ef0 = o.neffects;
		weft_err rv = weft_run_heartbeat_timeout(r, WEFT_REF(i),
		    row->attempt, row->node, row->silent_ms, 9000, &o);
		cr_expect_eq(rv, row->want_rv, "%s: rv %s", row->name,
		    weft_err_name(rv));
		cr_expect_eq(r->steps[i].state, row->want_state, "%s: state %s",
		    row->name, weft_step_state_name(r->steps[i].state));
		bool abort = false, timed_out = false, failed = false;
		for (size_t f = ef0; f < o.neffects; f++) {
			abort |= o.effects[f].kind == WEFT_EFFECT_ABORT &&
			    strcmp(o.effects[f].node, "w1") == 0 &&
			    o.effects[f].attempt == row->attempt;
		}
		for (size_t e = ev0; e < o.nevents; e++) {
			json_t *d = o.events[e].data;
			if (o.events[e].type == WEFT_EV_STEP_TIMED_OUT) {
				timed_out = true;
				cr_expect_str_eq(json_string_value(
				                     json_object_get(d, "phase")),
				    "heartbeat", "%s", row->name);
				cr_expect_eq(json_integer_value(json_object_get(
				                 d, "heartbeat_timeout_ms")),
				    3000, "%s", row->name);
				cr_expect_eq(json_integer_value(
				                 json_object_get(d, "silent_ms")),
				    row->silent_ms, "%s", row->name);
			}
			if (o.events[e].type == WEFT_EV_STEP_FAILED) {
				failed = true;
				cr_expect_str_eq(json_string_value(
				                     json_object_get(d, "error")),
				    row->want_error, "%s", row->name);
			}
		}
		cr_expect_eq(abort, row->want_abort, "%s: abort", row->name);
		cr_expect_eq(timed_out, row->want_rv == WEFT_OK,
		    "%s: step_timed_out", row->name);
		cr_expect_eq(failed, row->want_error != NULL, "%s: step_failed",
		    row->name);
		if (rv != WEFT_OK) {
			cr_expect_eq(o.nevents, ev0, "%s: no event", row->name);
			cr_expect_eq(o.neffects, ef0, "%s: no effect", row->name);
		}
		weft_out_fini(&o);
		weft_run_free(r);
	}
	weft_def_free(def);
}

// One progress report after another, on one run: what each records.
struct progress_row {
	const char *name;
	uint32_t    attempt;
	const char *node;
	const char *progress; // JSON text
	int64_t     now;
	weft_err    want_rv;  // WEFT_OK: one step_progress event
};

static const struct progress_row progress_rows[] = {
	{ "the first report is recorded", 1, "w1", "{\"done\":1,\"of\":9}",
	    2000, WEFT_OK },
	{ "the same again: held back", 1, "w1", "{\"done\":1,\"of\":9}", 9000,
	    WEFT_EEXIST },
	{ "the same, keys reordered: held back", 1, "w1",
	    "{\"of\":9,\"done\":1}", 9500, WEFT_EEXIST },
	{ "changed, 2 s after the last one: recorded", 1, "w1",
	    "{\"done\":2,\"of\":9}", 4000, WEFT_OK },
	{ "changed again too soon: held back", 1, "w1", "{\"done\":3,\"of\":9}",
	    5999, WEFT_EEXIST },
	{ "the held-back value, once its time comes: recorded", 1, "w1",
	    "{\"done\":3,\"of\":9}", 6000, WEFT_OK },
	{ "another node: refused", 1, "w2", "\"forged\"", 20000, WEFT_ESTATE },
	{ "an attempt that is not current: refused", 2, "w1", "\"later\"",
	    20000, WEFT_ESTATE },
	{ "a plain string: recorded", 1, "w1", "\"copying files\"", 20000,
	    WEFT_OK },
};

Test(run, progress_table, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def(hb_def);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RPG", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	hb_setup_run(r, 0, HB_RUNNING, &o);
	for (size_t k = 0; k < sizeof(progress_rows) / sizeof(progress_rows[0]);
	     k++) {
		const struct progress_row *row = &progress_rows[k];
		json_t *p   = json_loads(row->progress, JSON_DECODE_ANY, NULL);
		size_t  ev0 = o.nevents;
		weft_err rv = weft_run_progress(r, WEFT_REF(0), row->attempt,
		    row->node, p, row->now, &o);
		cr_expect_eq(rv, row->want_rv, "%s: rv %s", row->name,
		    weft_err_name(rv));
		cr_expect_eq(o.nevents, ev0 + (row->want_rv == WEFT_OK), "%s",
		    row->name);
		if (row->want_rv == WEFT_OK && o.nevents > ev0) {
			weft_out_event *e = &o.events[ev0];
			cr_expect_eq(e->type, WEFT_EV_STEP_PROGRESS, "%s", row->name);
			cr_expect(json_equal(json_object_get(e->data, "progress"), p),
			    "%s: data", row->name);
			cr_expect_eq(e->attempt, 1, "%s", row->name);
			cr_expect_str_eq(e->node, "w1", "%s", row->name);
		}
		json_decref(p);
	}
	cr_expect_eq(r->steps[0].state, WEFT_STEP_RUNNING,
	    "progress never moves the step");
	// A new attempt records its first report at once, even unchanged.
	cr_assert_eq(weft_run_heartbeat_timeout(r, WEFT_REF(0), 1, "w1", 3000,
	                 21000, &o),
	    WEFT_OK);
	cr_assert_eq(weft_run_retry_due(r, WEFT_REF(0), 1, &o), WEFT_OK);
	cr_assert_eq(weft_run_dispatched(r, WEFT_REF(0), "w1", 21100, &o),
	    WEFT_OK);
	json_t *same = json_string("copying files");
	cr_expect_eq(weft_run_progress(r, WEFT_REF(0), 2, "w1", same, 21200, &o),
	    WEFT_OK, "attempt 2 starts its own progress");
	json_decref(same);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// ---- schedule timeouts: a ready step no worker took in time ----

// How the unit stands when its schedule timer fires.
enum sched_setup {
	SCHED_READY,          // ready since the start
	SCHED_REJECTED,       // dispatched, sent back: ready at attempt 1
	SCHED_DISPATCHED,     // a worker has it
	SCHED_PAUSED,         // ready, the run paused
	SCHED_RETRY_WAIT,     // timed out once, waiting out the backoff
	SCHED_CANCELLED,      // the run was cancelled
	SCHED_STALE_ATTEMPT,  // ready again, the timer is of the period before
};

struct sched_row {
	const char      *name;
	int              max_attempts;
	enum sched_setup setup;
	weft_err         want_rv;
	int              want_state;   // the unit's state after
	int              want_timeouts; // step_timed_out {phase: schedule}
	int              want_retries;  // step_retry_scheduled
	int              want_failed;   // step_failed
	int              want_run;      // run state after
};

static const struct sched_row sched_rows[] = {
	{ "ready, no retry: fails, run fails", 1, SCHED_READY, WEFT_OK,
	    WEFT_STEP_FAILED, 1, 0, 1, WEFT_RUN_FAILED },
	{ "ready, retry left: retry_wait", 3, SCHED_READY, WEFT_OK,
	    WEFT_STEP_RETRY_WAIT, 1, 1, 0, WEFT_RUN_RUNNING },
	{ "ready after a rejection: times out too", 1, SCHED_REJECTED, WEFT_OK,
	    WEFT_STEP_FAILED, 1, 0, 1, WEFT_RUN_FAILED },
	{ "dispatched: a worker took it, nothing", 1, SCHED_DISPATCHED,
	    WEFT_ESTATE, WEFT_STEP_DISPATCHED, 0, 0, 0, WEFT_RUN_RUNNING },
	{ "paused run: not timed out", 1, SCHED_PAUSED, WEFT_ESTATE,
	    WEFT_STEP_READY, 0, 0, 0, WEFT_RUN_PAUSED },
	{ "retry_wait: not ready, nothing", 3, SCHED_RETRY_WAIT, WEFT_ESTATE,
	    WEFT_STEP_RETRY_WAIT, 0, 0, 0, WEFT_RUN_RUNNING },
	{ "cancelled run: nothing", 1, SCHED_CANCELLED, WEFT_ESTATE,
	    WEFT_STEP_CANCELLED, 0, 0, 0, WEFT_RUN_CANCELLED },
	{ "stale attempt: nothing", 1, SCHED_STALE_ATTEMPT, WEFT_ESTATE,
	    WEFT_STEP_READY, 0, 0, 0, WEFT_RUN_RUNNING },
};

// sched_setup_unit brings step 0 of r where row wants it; returns the
// attempt the timer carries.
static uint32_t
sched_setup_unit(weft_run *r, enum sched_setup setup, weft_out *o)
{
	weft_ref u = WEFT_REF(0);

	switch (setup) {
	case SCHED_REJECTED:
		cr_assert_eq(weft_run_dispatched(r, u, "w1", 10, o), WEFT_OK);
		cr_assert_eq(weft_run_rejected(r, u, 1, "full", o), WEFT_OK);
		return (1);
	case SCHED_DISPATCHED:
		cr_assert_eq(weft_run_dispatched(r, u, "w1", 10, o), WEFT_OK);
		return (0);
	case SCHED_PAUSED:
		cr_assert_eq(weft_run_pause(r, o), WEFT_OK);
		return (0);
	case SCHED_RETRY_WAIT:
		cr_assert_eq(weft_run_schedule_timeout(r, u, 0, 50, o), WEFT_OK);
		return (0);
	case SCHED_CANCELLED:
		cr_assert_eq(weft_run_cancel(r, "test", o), WEFT_OK);
		return (0);
	case SCHED_STALE_ATTEMPT:
		cr_assert_eq(weft_run_dispatched(r, u, "w1", 10, o), WEFT_OK);
		cr_assert_eq(weft_run_rejected(r, u, 1, "full", o), WEFT_OK);
		return (0); // the timer of the first ready period
	default:
		return (0);
	}
}

Test(run, schedule_timeout_table, .timeout = T_TIMEOUT)
{
	for (size_t k = 0; k < sizeof(sched_rows) / sizeof(sched_rows[0]); k++) {
		const struct sched_row *row = &sched_rows[k];
		char                    text[512];
		weft_out                o;
		snprintf(text, sizeof(text),
		    "{\"name\":\"s\",\"schedule_timeout_ms\":100,\"steps\":["
		    "{\"id\":\"a\",\"type\":\"nobody\",\"retry\":{"
		    "\"max_attempts\":%d,\"initial_ms\":10}}]}",
		    row->max_attempts);
		weft_def *def = weft_t_def(text);
		weft_out_init(&o);
		weft_run *r = weft_run_alloc("RS", def, NULL, NULL, 0, &o);
		cr_assert_eq(weft_run_start(r, 0, &o), WEFT_OK);
		uint32_t att = sched_setup_unit(r, row->setup, &o);
		weft_out_reset(&o);
		weft_err rv = weft_run_schedule_timeout(r, WEFT_REF(0), att, 100, &o);
		cr_expect_eq(rv, row->want_rv, "%s: rv %d", row->name, rv);
		cr_expect_eq((int) r->steps[0].state, row->want_state, "%s: state %s",
		    row->name, weft_step_state_name(r->steps[0].state));
		int timeouts = 0;
		for (size_t e = 0; e < o.nevents; e++) {
			if (o.events[e].type == WEFT_EV_STEP_TIMED_OUT) {
				cr_expect_str_eq(json_string_value(json_object_get(
				                     o.events[e].data, "phase")),
				    "schedule", "%s", row->name);
				timeouts++;
			}
		}
		cr_expect_eq(timeouts, row->want_timeouts, "%s: timeouts", row->name);
		cr_expect_eq(count_events(&o, WEFT_EV_STEP_RETRY_SCHEDULED),
		    row->want_retries, "%s: retries", row->name);
		cr_expect_eq(count_events(&o, WEFT_EV_STEP_FAILED), row->want_failed,
		    "%s: failed", row->name);
		cr_expect_eq((int) r->state, row->want_run, "%s: run %s", row->name,
		    weft_run_state_name(r->state));
		cr_expect_not(has_effect(&o, WEFT_EFFECT_RELEASE, 0),
		    "%s: no worker slot to release", row->name);
		weft_out_fini(&o);
		weft_run_free(r);
		weft_def_free(def);
	}
}

Test(run, schedule_timeout_error_and_retry_until)
{
	weft_def *def = weft_t_def("{\"name\":\"s\",\"steps\":[{\"id\":\"a\","
	                       "\"type\":\"nobody\",\"schedule_timeout_ms\":250,"
	                       "\"retry\":{\"max_attempts\":2,\"initial_ms\":40,"
	                       "\"backoff\":\"fixed\"}}]}");
	weft_out  o;

	cr_expect_eq(def->steps[0].schedule_timeout_ms, 250);
	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RS2", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_out_reset(&o);
	cr_assert_eq(weft_run_schedule_timeout(r, WEFT_REF(0), 0, 1000, &o),
	    WEFT_OK);
	// The retry says when the step is ready again: waiting_for shows it.
	for (size_t e = 0; e < o.nevents; e++) {
		if (o.events[e].type == WEFT_EV_STEP_RETRY_SCHEDULED) {
			cr_expect_eq(json_integer_value(json_object_get(
			                 o.events[e].data, "until_ms")),
			    1040);
		}
	}
	cr_assert_eq(weft_run_retry_due(r, WEFT_REF(0), 0, &o), WEFT_OK);
	weft_out_reset(&o);
	cr_assert_eq(weft_run_schedule_timeout(r, WEFT_REF(0), 0, 2000, &o),
	    WEFT_OK);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_FAILED);
	cr_expect_str_eq(r->steps[0].error,
	    "no worker took it within schedule_timeout_ms (250 ms)");
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, attempt_timeout_says_phase_run_and_spares_a_ready_step)
{
	weft_def *def = weft_t_def("{\"name\":\"t\",\"steps\":[{\"id\":\"a\","
	                       "\"type\":\"echo\",\"timeout_ms\":50}]}");
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RT", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, WEFT_REF(0), "w1", 10, &o);
	// Sent back to ready: attempt 1's run timer must not end it there.
	weft_run_rejected(r, WEFT_REF(0), 1, "full", &o);
	cr_expect_eq(weft_run_timeout(r, WEFT_REF(0), 1, 60, &o), WEFT_ESTATE);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_READY);
	weft_run_dispatched(r, WEFT_REF(0), "w1", 70, &o);
	weft_out_reset(&o);
	cr_assert_eq(weft_run_timeout(r, WEFT_REF(0), 2, 120, &o), WEFT_OK);
	cr_expect_str_eq(json_string_value(
	                     json_object_get(o.events[0].data, "phase")),
	    "run");
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, unschedulable_once_until_schedulable)
{
	weft_def *def = weft_t_def("{\"name\":\"u\",\"steps\":[{\"id\":\"a\","
	                       "\"type\":\"nobody\"}]}");
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RU", def, NULL, NULL, 0, &o);
	cr_expect_eq(weft_run_unschedulable(r, WEFT_REF(0), NULL, &o), WEFT_ESTATE,
	    "pending: not ready");
	weft_run_start(r, 0, &o);
	weft_out_reset(&o);
	cr_expect_eq(weft_run_schedulable(r, WEFT_REF(0), NULL, &o), WEFT_ESTATE,
	    "never reported");
	cr_expect_eq(weft_run_unschedulable(r, WEFT_REF(0),
	                 json_pack("{s:s}", "type", "nobody"), &o),
	    WEFT_OK);
	cr_expect_eq(weft_run_unschedulable(r, WEFT_REF(0),
	                 json_pack("{s:s}", "type", "nobody"), &o),
	    WEFT_ESTATE, "once");
	cr_expect_eq(weft_run_schedulable(r, WEFT_REF(0), NULL, &o), WEFT_OK);
	cr_expect_eq(weft_run_schedulable(r, WEFT_REF(0), NULL, &o), WEFT_ESTATE);
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_UNSCHEDULABLE), 1);
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_SCHEDULABLE), 1);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_READY, "state untouched");
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// A map item's input carries its element, its position, its rendered
// `with` and the run's input and params: never `steps`, whose outputs
// hold the whole list (N items would carry N lists). `with` still reads
// the dependencies.
Test(run, map_item_input_carries_its_element_not_the_list)
{
	weft_def *def = weft_t_def(
	    "{\"name\":\"g\",\"steps\":[{\"id\":\"gen\",\"type\":\"noop\"},"
	    "{\"id\":\"m\",\"type\":\"echo\",\"depends_on\":[\"gen\"],"
	    "\"map\":\"steps.gen.output.l\",\"with\":{\"x\":\"${item}\","
	    "\"cfg\":\"${steps.gen.output.cfg}\"}}]}");
	weft_out  o;
	char      err[128];

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("G1", def, json_pack("{s:i}", "n", 7),
	    NULL, 0, &o);
	weft_run_start(r, 0, &o);
	cr_assert_eq(weft_run_dispatched(r, WEFT_REF(0), "w1", 1, &o), WEFT_OK);
	json_t     *out = json_pack("{s:[i,i,i], s:s}", "l", 10, 11, 12, "cfg",
	        "fast");
	weft_result res = { .attempt = 1, .ok = true, .output = out,
		.node = "w1" };
	cr_assert_eq(weft_run_result(r, WEFT_REF(0), &res, 2, &o), WEFT_OK);
	json_decref(out);
	cr_assert_eq(r->steps[1].nitems, 3);

	json_t *in = weft_run_step_input(r, (weft_ref) { 1, 2 }, err, sizeof(err));
	cr_assert_not_null(in, "%s", err);
	cr_expect_null(json_object_get(in, "steps"),
	    "an item's input carries its dependencies' outputs");
	cr_expect_eq(json_integer_value(json_object_get(in, "item")), 12);
	cr_expect_eq(json_integer_value(json_object_get(in, "index")), 2);
	json_t *with = json_object_get(in, "with");
	cr_expect_eq(json_integer_value(json_object_get(with, "x")), 12);
	cr_expect_str_eq(json_string_value(json_object_get(with, "cfg")), "fast",
	    "with reads the dependencies");
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(in, "input"), "n")),
	    7);
	cr_expect_not_null(json_object_get(in, "params"));
	json_decref(in);

	// A step that is not a map item still sees its dependencies.
	in = weft_run_step_input(r, WEFT_REF(0), err, sizeof(err));
	cr_assert_not_null(in, "%s", err);
	cr_expect_not_null(json_object_get(in, "steps"));
	json_decref(in);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// What may be in flight of a map is a window, not the list: the live
// range starts past the items that ended (in list order or not) and ends
// at the first item not made ready.
Test(run, map_items_live_range_skips_ended_items)
{
	weft_def *def = weft_t_def(mapdef); // max_parallel 2, over input.xs
	weft_out  o;
	uint32_t  from, to;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("L1", def,
	    json_pack("{s:[i,i,i,i]}", "xs", 1, 2, 3, 4), NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_items_live(r, 0, &from, &to);
	cr_expect(from == 0 && to == 2, "[%u, %u)", from, to);
	item_finish(r, 0, 1, true, &o); // out of order: 0 still live
	weft_run_items_live(r, 0, &from, &to);
	cr_expect(from == 0 && to == 3, "[%u, %u)", from, to);
	item_finish(r, 0, 0, true, &o); // 0 and 1 ended
	weft_run_items_live(r, 0, &from, &to);
	cr_expect(from == 2 && to == 4, "[%u, %u)", from, to);
	item_finish(r, 0, 2, true, &o);
	item_finish(r, 0, 3, true, &o);
	weft_run_items_live(r, 0, &from, &to);
	cr_expect_eq(from, to, "[%u, %u) after every item ended", from, to);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_SUCCEEDED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// ---- run outcome policy: fail_fast, status_from ----

// Under fail_fast the first step that fails for good ends the run: what
// is in flight is aborted, the rest never starts, all of it cancelled.
Test(run, fail_fast_cancels_the_rest_at_the_first_failure)
{
	weft_def *def = weft_t_def_sq((char[]) {
	    "{'name':'ff','fail_fast':true,'steps':["
	    "{'id':'a','type':'noop','retry':{'max_attempts':2}},"
	    "{'id':'b','type':'noop'},"
	    "{'id':'c','type':'noop','depends_on':['a']},"
	    "{'id':'d','type':'noop','depends_on':['c'],'trigger':'all_done'}]}" });
	weft_out o;

	cr_assert(def->fail_fast);
	weft_out_init(&o);
	weft_run *r = weft_run_alloc("FF", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	cr_assert_eq(weft_run_dispatched(r, WEFT_REF(idx(def, "b")), "w2", 1000,
	                 &o), WEFT_OK);
	// A failure the retry policy takes back is not a failure for good.
	fail(r, idx(def, "a"), "first", &o);
	cr_expect_eq(r->steps[idx(def, "a")].state, WEFT_STEP_RETRY_WAIT);
	cr_expect_eq(r->state, WEFT_RUN_RUNNING);
	cr_assert_eq(weft_run_retry_due(r, WEFT_REF(idx(def, "a")), 1, &o),
	    WEFT_OK);
	weft_out_reset(&o);
	fail(r, idx(def, "a"), "second", &o);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	cr_expect_eq(r->steps[idx(def, "b")].state, WEFT_STEP_CANCELLED);
	cr_expect_eq(r->steps[idx(def, "c")].state, WEFT_STEP_CANCELLED);
	cr_expect_eq(r->steps[idx(def, "d")].state, WEFT_STEP_CANCELLED,
	    "all_done would have run it: fail_fast runs nothing more");
	cr_expect(has_effect(&o, WEFT_EFFECT_ABORT, idx(def, "b")),
	    "b was in flight: its worker is told to abort");
	cr_expect_eq(count_events(&o, WEFT_EV_RUN_FAILED), 1);
	const weft_out_event *e = NULL;
	for (size_t k = 0; k < o.nevents; k++) {
		if (o.events[k].type == WEFT_EV_RUN_FAILED) {
			e = &o.events[k];
		}
	}
	cr_assert_not_null(e);
	cr_expect_str_eq(json_string_value(json_object_get(e->data, "error")),
	    "fail_fast: step a failed");
	cr_expect(json_is_true(json_object_get(e->data, "fail_fast")));
	cr_expect_eq(count_kind(&o, WEFT_EFFECT_RUN_ENDED), 1);
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_READY), 0);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// Without fail_fast an independent branch still runs after a failure.
Test(run, without_fail_fast_branches_finish)
{
	weft_def *def = weft_t_def_sq((char[]) {
	    "{'name':'nf','steps':[{'id':'a','type':'noop'},"
	    "{'id':'b','type':'noop'}]}" });
	weft_out o;

	cr_assert_not(def->fail_fast);
	cr_assert_eq(def->status_from, WEFT_STATUS_FROM_ALL);
	weft_out_init(&o);
	weft_run *r = weft_run_alloc("NF", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	fail(r, idx(def, "a"), "boom", &o);
	cr_expect_eq(r->state, WEFT_RUN_RUNNING);
	cr_expect_eq(r->steps[idx(def, "b")].state, WEFT_STEP_READY);
	finish(r, idx(def, "b"), json_null(), &o);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// A status_from row: how "a" ends (a failure handled by "on_fail", a
// one_failed leaf, and "after", an all_success one), and what the run ends
// as under "all" (the default) and under "leaves".
static const struct leaves_row {
	const char         *name;
	bool                a_fails;
	const char         *after_trigger;
	enum weft_run_state want_all, want_leaves;
} leaves_rows[] = {
	{ "all succeed: a leaf on_fail skipped", false, "all_success",
	    WEFT_RUN_SUCCEEDED, WEFT_RUN_SUCCEEDED },
	{ "a fails, handled; after upstream_failed", true, "all_success",
	    WEFT_RUN_FAILED, WEFT_RUN_FAILED },
	{ "a fails, handled; after runs anyway", true, "all_done",
	    WEFT_RUN_FAILED, WEFT_RUN_SUCCEEDED },
	{ "a fails, handled; after runs on it", true, "all_failed",
	    WEFT_RUN_FAILED, WEFT_RUN_SUCCEEDED },
	{ "a succeeds; every leaf skipped", false, "all_failed",
	    WEFT_RUN_SUCCEEDED, WEFT_RUN_SUCCEEDED },
};

Test(run, status_from_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(leaves_rows) / sizeof(leaves_rows[0]);
	     i++) {
		const struct leaves_row *row = &leaves_rows[i];
		for (int leaves = 0; leaves < 2; leaves++) {
			char text[512];
			snprintf(text, sizeof(text),
			    "{'name':'lv'%s,'steps':[{'id':'a','type':'noop'},"
			    "{'id':'on_fail','type':'noop','depends_on':['a'],"
			    "'trigger':'one_failed'},"
			    "{'id':'after','type':'noop','depends_on':['a'],"
			    "'trigger':'%s'}]}",
			    leaves ? ",'status_from':'leaves'" : "",
			    row->after_trigger);
			weft_def *def = weft_t_def_sq(text);
			weft_out  o;
			weft_out_init(&o);
			weft_run *r = weft_run_alloc("LV", def, NULL, NULL, 0, &o);
			weft_run_start(r, 0, &o);
			if (row->a_fails) {
				fail(r, idx(def, "a"), "boom", &o);
			} else {
				finish(r, idx(def, "a"), json_null(), &o);
			}
			for (size_t k = 0; k < def->nsteps; k++) {
				if (r->steps[k].state == WEFT_STEP_READY) {
					finish(r, (long) k, json_null(), &o);
				}
			}
			enum weft_run_state want =
			    leaves ? row->want_leaves : row->want_all;
			cr_expect_eq(r->state, want, "%s, status_from %s: run %s, want %s",
			    row->name, leaves ? "leaves" : "all",
			    weft_run_state_name(r->state),
			    weft_run_state_name(want));
			if (leaves && want == WEFT_RUN_FAILED) {
				const weft_out_event *e = NULL;
				for (size_t k = 0; k < o.nevents; k++) {
					if (o.events[k].type == WEFT_EV_RUN_FAILED) {
						e = &o.events[k];
					}
				}
				cr_expect(e != NULL && json_array_size(json_object_get(
				                           e->data, "failed_leaves")) == 1,
				    "%s: run_failed names the failed leaf", row->name);
			}
			weft_out_fini(&o);
			weft_run_free(r);
			weft_def_free(def);
		}
	}
}

// An operator's retry starts upstream_failed steps over with the failed
// ones: they run once their upstream succeeds.
Test(run, retry_reruns_upstream_failed_steps)
{
	weft_def *def = weft_t_def(diamond);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RU", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	finish(r, idx(def, "a"), json_pack("{s:i}", "v", 1), &o);
	fail(r, idx(def, "b"), "boom", &o);
	finish(r, idx(def, "c"), json_pack("{s:i}", "v", 1), &o);
	cr_assert_eq(r->state, WEFT_RUN_FAILED);
	cr_assert_eq(r->steps[idx(def, "d")].state, WEFT_STEP_UPSTREAM_FAILED);
	cr_assert_eq(weft_run_retry(r, 2000, &o), WEFT_OK);
	cr_expect_eq(r->steps[idx(def, "d")].state, WEFT_STEP_PENDING);
	cr_expect_null(r->steps[idx(def, "d")].error);
	finish(r, idx(def, "b"), json_pack("{s:i}", "v", 2), &o);
	cr_expect_eq(r->steps[idx(def, "d")].state, WEFT_STEP_READY);
	finish(r, idx(def, "d"), json_null(), &o);
	cr_expect_eq(r->state, WEFT_RUN_SUCCEEDED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// A step one_success fired while its other upstream still ran stays
// decided after a restore, and a pending one whose rule is already decided
// by what the store recorded is resolved at once.
Test(run, restore_resolves_a_rule_already_decided)
{
	weft_def *def = weft_t_def_sq((char[]) {
	    "{'name':'rs','steps':[{'id':'a','type':'noop'},"
	    "{'id':'b','type':'noop'},{'id':'t','type':'noop',"
	    "'depends_on':['a','b'],'trigger':'one_success'}]}" });
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RS", def, NULL, NULL, 0, &o);
	r->state = WEFT_RUN_RUNNING;
	cr_assert(weft_run_restore_step(r, WEFT_REF(idx(def, "a")),
	    WEFT_STEP_SUCCEEDED, 1, "w1", NULL, NULL));
	cr_assert(weft_run_restore_step(r, WEFT_REF(idx(def, "b")),
	    WEFT_STEP_RUNNING, 1, "w1", NULL, NULL));
	weft_run_restore_done(r, &o);
	cr_expect_eq(r->steps[idx(def, "t")].state, WEFT_STEP_READY,
	    "a succeeded: one_success need not wait for b");
	cr_expect_eq(r->steps[idx(def, "b")].state, WEFT_STEP_RUNNING);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// ---- per-dependency conditions ("depends") ----

// How a and b end, and whether c, depends "a.succeeded && (b.failed ||
// b.skipped)", runs. c waits for both, whatever the first one says.
static const struct depends_row {
	enum dep_end a, b;
	bool         runs;
} depends_rows[] = {
	{ DEP_OK, DEP_FAIL, true },
	{ DEP_OK, DEP_SKIP, true },
	{ DEP_OK, DEP_OK, false },
	{ DEP_FAIL, DEP_FAIL, false },
	{ DEP_FAIL, DEP_OK, false },
	{ DEP_SKIP, DEP_SKIP, false },
};

Test(run, depends_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(depends_rows) / sizeof(depends_rows[0]);
	     i++) {
		const struct depends_row *row = &depends_rows[i];
		char                      text[512];
		snprintf(text, sizeof(text),
		    "{'name':'dp','steps':[{'id':'a','type':'noop'%s},"
		    "{'id':'b','type':'noop'%s},{'id':'c','type':'noop',"
		    "'depends':'a.succeeded && (b.failed || b.skipped)'}]}",
		    row->a == DEP_SKIP ? ",'when':'false'" : "",
		    row->b == DEP_SKIP ? ",'when':'false'" : "");
		weft_def *def = weft_t_def_sq(text);
		long      c   = idx(def, "c");
		weft_out  o;
		cr_assert_eq(def->steps[c].ndeps, 2, "row %zu: deps from depends", i);
		weft_out_init(&o);
		weft_run *r = weft_run_alloc("DP", def, NULL, NULL, 0, &o);
		weft_run_start(r, 0, &o);
		const enum dep_end ends[2] = { row->a, row->b };
		for (int k = 0; k < 2; k++) {
			long s = idx(def, k == 0 ? "a" : "b");
			bool open = !weft_step_terminal(
			                r->steps[idx(def, "a")].state) ||
			    !weft_step_terminal(r->steps[idx(def, "b")].state);
			cr_expect(!open || r->steps[c].state == WEFT_STEP_PENDING,
			    "row %zu: c decided before %s ended", i,
			    k == 0 ? "a" : "b");
			if (ends[k] == DEP_OK) {
				finish(r, s, json_null(), &o);
			} else if (ends[k] == DEP_FAIL) {
				fail(r, s, "boom", &o);
			}
		}
		if (row->runs) {
			cr_expect_eq(r->steps[c].state, WEFT_STEP_READY,
			    "row %zu: c must run, is %s", i,
			    weft_step_state_name(r->steps[c].state));
		} else {
			const weft_out_event *e =
			    find_step_event(&o, WEFT_EV_STEP_SKIPPED, c);
			cr_expect_eq(r->steps[c].state, WEFT_STEP_SKIPPED,
			    "row %zu: c must be skipped, is %s", i,
			    weft_step_state_name(r->steps[c].state));
			cr_expect(e != NULL &&
			        strcmp(json_string_value(json_object_get(
			                   e->data, "reason")),
			            "depends is false") == 0 &&
			        json_object_get(e->data, "depends") != NULL,
			    "row %zu: no step_skipped naming depends", i);
		}
		weft_out_fini(&o);
		weft_run_free(r);
		weft_def_free(def);
	}
}

// Delayed starts: queued -> scheduled (run_scheduled, a START_TIMER at
// the time, nothing ready), then the timer's start; a cancel while
// scheduled; what a scheduled run refuses; the re-arm after a restart.
Test(run, delayed_start, .timeout = T_TIMEOUT)
{
	weft_def *d = weft_t_def("{\"name\":\"t\",\"steps\":[{\"id\":\"a\","
	                     "\"type\":\"echo\"},{\"id\":\"b\",\"type\":\"echo\","
	                     "\"depends_on\":[\"a\"]}]}");
	weft_out  o;
	weft_run *r;

	weft_out_init(&o);
	r = weft_run_alloc("R1", d, NULL, NULL, 1000, &o);
	weft_out_reset(&o);
	cr_assert_eq(weft_run_schedule(r, 61000, &o), WEFT_OK);
	cr_assert_eq(r->state, WEFT_RUN_SCHEDULED);
	cr_assert_eq(r->start_at_ms, 61000);
	cr_assert_eq(o.nevents, 1);
	cr_assert_eq(o.events[0].type, WEFT_EV_RUN_SCHEDULED);
	cr_assert_eq(json_integer_value(
	                 json_object_get(o.events[0].data, "start_at_ms")),
	    61000);
	cr_assert_eq(o.neffects, 1);
	cr_assert_eq(o.effects[0].kind, WEFT_EFFECT_START_TIMER);
	cr_assert_eq(o.effects[0].at_ms, 61000);
	cr_assert(!has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(d, "a")));
	// Nothing but the start or a cancel moves it.
	weft_out_reset(&o);
	cr_assert_eq(weft_run_schedule(r, 99000, &o), WEFT_ESTATE);
	cr_assert_eq(weft_run_pause(r, &o), WEFT_ESTATE);
	cr_assert_eq(weft_run_resume(r, &o), WEFT_ESTATE);
	cr_assert_eq(weft_run_retry(r, 2000, &o), WEFT_ESTATE);
	cr_assert_eq(o.nevents, 0);
	// A restart re-arms the timer, and only that.
	weft_run_schedule_rearm(r, &o);
	cr_assert_eq(o.neffects, 1);
	cr_assert_eq(o.effects[0].kind, WEFT_EFFECT_START_TIMER);
	cr_assert_eq(o.effects[0].at_ms, 61000);
	// The timer starts it: run_started, the root ready.
	weft_out_reset(&o);
	cr_assert_eq(weft_run_start(r, 61000, &o), WEFT_OK);
	cr_assert_eq(r->state, WEFT_RUN_RUNNING);
	cr_assert_eq(count_events(&o, WEFT_EV_RUN_STARTED), 1);
	cr_assert(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(d, "a")));
	// A second timer (a stale one) changes nothing.
	weft_out_reset(&o);
	cr_assert_eq(weft_run_start(r, 62000, &o), WEFT_ESTATE);
	cr_assert_eq(o.nevents, 0);
	weft_run_free(r);

	// Cancelled while scheduled: every step cancelled, the run ends.
	weft_out_reset(&o);
	r = weft_run_alloc("R2", d, NULL, NULL, 1000, &o);
	cr_assert_eq(weft_run_schedule(r, 61000, &o), WEFT_OK);
	weft_out_reset(&o);
	cr_assert_eq(weft_run_cancel(r, "by request", &o), WEFT_OK);
	cr_assert_eq(r->state, WEFT_RUN_CANCELLED);
	cr_assert_eq(count_events(&o, WEFT_EV_RUN_CANCELLED), 1);
	cr_assert_eq(count_events(&o, WEFT_EV_STEP_CANCELLED), 2);
	// Its timer, when it fires, is refused.
	weft_out_reset(&o);
	cr_assert_eq(weft_run_start(r, 61000, &o), WEFT_ESTATE);
	cr_assert_eq(o.nevents, 0);
	weft_run_free(r);
	weft_out_fini(&o);
	weft_def_free(d);
}

// ---- retry from a step (issue 14), from a table ----

// A row: the diamond, every step succeeded, retried from `from`: the
// steps that go back (`reset`, in definition order) and the ones made
// ready at once.
typedef struct retry_from_row {
	const char *name;
	const char *from;
	const char *reset; // step ids, space-separated, definition order
	const char *ready;
} retry_from_row;

static const retry_from_row retry_from_rows[] = {
	{ "from the root: everything", "a", "a b c d", "a" },
	{ "from one branch: it and the join", "b", "b d", "b" },
	{ "from the other branch", "c", "c d", "c" },
	{ "from the leaf: itself", "d", "d", "d" },
};

// ids_of joins the ids of the steps of r in state st (space-separated).
static void
ids_of(const weft_run *r, enum weft_step_state st, bool any_but, char *out,
    size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < r->def->nsteps; i++) {
		bool in = any_but ? r->steps[i].state != st : r->steps[i].state == st;
		if (in) {
			o += (size_t) snprintf(out + o, len - o, "%s%s",
			    o > 0 ? " " : "", r->def->steps[i].id);
		}
	}
}

Test(run, retry_from_resets_the_step_and_its_downstream)
{
	for (size_t k = 0; k < sizeof(retry_from_rows) / sizeof(retry_from_rows[0]);
	     k++) {
		const retry_from_row *row = &retry_from_rows[k];
		weft_def             *def = weft_t_def(diamond);
		weft_out              o;
		char                  got[64];

		weft_out_init(&o);
		weft_run *r = weft_run_alloc("RF", def, NULL, NULL, 0, &o);
		weft_run_start(r, 0, &o);
		for (size_t i = 0; i < def->nsteps; i++) {
			finish(r, (long) i, json_pack("{s:i}", "n", (int) i), &o);
		}
		cr_assert_eq(r->state, WEFT_RUN_SUCCEEDED, "%s", row->name);
		// A plain retry of a success is refused; from a step it is not.
		cr_expect_eq(weft_run_retry(r, 0, &o), WEFT_ESTATE, "%s", row->name);
		weft_out_reset(&o);
		cr_assert_eq(weft_run_retry_from(r, idx(def, row->from), 5000, &o),
		    WEFT_OK, "%s", row->name);
		cr_expect_eq(r->state, WEFT_RUN_RUNNING, "%s", row->name);
		ids_of(r, WEFT_STEP_SUCCEEDED, true, got, sizeof(got));
		cr_expect_str_eq(got, row->reset, "%s: reset", row->name);
		ids_of(r, WEFT_STEP_READY, false, got, sizeof(got));
		cr_expect_str_eq(got, row->ready, "%s: ready", row->name);
		// The event says what went back; the kept steps keep their
		// outputs; every step keeps its attempt count.
		cr_assert_eq(o.events[0].type, WEFT_EV_RUN_RETRIED, "%s", row->name);
		cr_expect_str_eq(json_string_value(json_object_get(
		                     o.events[0].data, "from")),
		    row->from, "%s", row->name);
		json_t *steps = json_object_get(o.events[0].data, "steps");
		size_t  n     = 1;
		for (const char *p = row->reset; *p != '\0'; p++) {
			n += *p == ' ';
		}
		cr_expect_eq(json_array_size(steps), n, "%s: steps", row->name);
		for (size_t i = 0; i < def->nsteps; i++) {
			cr_expect_eq(r->steps[i].attempt, 1, "%s: %s's attempt",
			    row->name, def->steps[i].id);
			bool kept = r->steps[i].state == WEFT_STEP_SUCCEEDED;
			cr_expect_eq(r->steps[i].output != NULL, kept,
			    "%s: %s's output", row->name, def->steps[i].id);
		}
		// The next attempt of a reset step is a new number.
		long f = idx(def, row->from);
		cr_expect_eq(weft_run_dispatched(r, WEFT_REF(f), "w1", 6000, &o),
		    WEFT_OK);
		cr_expect_eq(r->steps[f].attempt, 2, "%s", row->name);
		weft_out_fini(&o);
		weft_run_free(r);
		weft_def_free(def);
	}
}

Test(run, retry_from_refused_while_running_or_out_of_range)
{
	weft_def *def = weft_t_def(diamond);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RG", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_out_reset(&o);
	cr_expect_eq(weft_run_retry_from(r, 0, 0, &o), WEFT_ESTATE);
	cr_expect_eq(weft_run_cancel(r, "test", &o), WEFT_OK);
	weft_out_reset(&o);
	cr_expect_eq(weft_run_retry_from(r, -1, 0, &o), WEFT_EINVAL);
	cr_expect_eq(weft_run_retry_from(r, (long) def->nsteps, 0, &o),
	    WEFT_EINVAL);
	cr_expect_eq(o.nevents, 0, "a refusal changes nothing");
	cr_expect_eq(r->state, WEFT_RUN_CANCELLED);
	// A cancelled run retried from its leaf: the other steps keep
	// their end (cancelled); only d is decided again.
	cr_expect_eq(weft_run_retry_from(r, idx(def, "d"), 0, &o), WEFT_OK);
	cr_expect_eq(r->steps[idx(def, "a")].state, WEFT_STEP_CANCELLED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// ---- a step's input written as text, against the document ----

// end_with ends step i of r with its outcome: output (JSON text; NULL
// for a failure with error and exit code).
static void
end_with(weft_run *r, long i, const char *output, const char *error,
    int exit_code, weft_out *o)
{
	weft_result res = { .node = "w1" };

	cr_assert_eq(weft_run_dispatched(r, WEFT_REF(i), "w1", 1000, o), WEFT_OK);
	res.attempt = r->steps[i].attempt;
	res.ok      = output != NULL;
	res.output  = output != NULL ? json_loads(output, JSON_DECODE_ANY, NULL)
	                             : NULL;
	res.error     = error;
	res.exit_code = exit_code;
	cr_assert(output == NULL || res.output != NULL, "bad JSON: %s", output);
	cr_assert_eq(weft_run_result(r, WEFT_REF(i), &res, 1001, o), WEFT_OK);
	json_decref(res.output);
}

// The outcomes a dependency of the joining step "z" may have: every kind
// of output, and failures whose error needs escaping or is not UTF-8 (the
// model leaves such an error out at the failure already).
static const struct text_dep {
	const char *output; // NULL: fails
	const char *error;
	int         exit_code;
} text_deps[] = {
	{ "null", NULL, 0 },
	{ "{\"n\":1,\"s\":\"x\\\"y\\\\z\",\"a\":[1,2.5,true,false,null]}", NULL, 0 },
	{ "\"a string: \\u00e9 \\t \\n \\u0001 \\\"\"", NULL, 0 },
	{ "[]", NULL, 0 },
	{ "12345678901234", NULL, 0 },
	{ "-0.25", NULL, 0 },
	{ NULL, "quoted \"x\", back\\slash, tab\t, nl\n, bell\a, \xc3\xa9", 3 },
	{ NULL, "colour: \x1b[31mred\x1b[0m, \x0b\x0e\x1f, del \x7f, a/b", 1 },
	{ NULL, "not UTF-8: \xff\xfe", 0 },
	{ NULL, "plain", 0 },
};
#define TEXT_NDEPS (sizeof(text_deps) / sizeof(text_deps[0]))

Test(run, step_input_text_is_the_dumped_document)
{
	char      def[4096];
	size_t    o = 0;
	weft_out  out;
	weft_def *d;
	weft_run *r;

	o += (size_t) snprintf(def + o, sizeof(def) - o,
	    "{\"name\":\"t\",\"steps\":[");
	for (size_t k = 0; k < TEXT_NDEPS; k++) {
		o += (size_t) snprintf(def + o, sizeof(def) - o,
		    "{\"id\":\"d%zu\",\"type\":\"echo\"},", k);
	}
	o += (size_t) snprintf(def + o, sizeof(def) - o,
	    "{\"id\":\"z\",\"type\":\"noop\",\"trigger\":\"all_done\","
	    "\"depends_on\":[");
	for (size_t k = 0; k < TEXT_NDEPS; k++) {
		o += (size_t) snprintf(def + o, sizeof(def) - o, "%s\"d%zu\"",
		    k ? "," : "", k);
	}
	snprintf(def + o, sizeof(def) - o,
	    "]},{\"id\":\"one\",\"type\":\"noop\",\"depends_on\":[\"d0\"]},"
	    "{\"id\":\"w\",\"type\":\"noop\",\"depends_on\":[\"d1\"],"
	    "\"with\":{\"n\":\"${steps.d1.output.n}\"}},"
	    "{\"id\":\"root\",\"type\":\"noop\"}]}");
	d = weft_t_def(def);
	weft_out_init(&out);
	r = weft_run_alloc("RT", d, json_pack("{s:s}", "in", "put"),
	    json_pack("{s:i}", "p", 1), 0, &out);
	cr_assert_eq(weft_run_start(r, 0, &out), WEFT_OK);
	weft_t_expect_input_text(r, idx(d, "root")); // no dependencies
	for (size_t k = 0; k < TEXT_NDEPS; k++) {
		const struct text_dep *t = &text_deps[k];
		char                   id[16];
		snprintf(id, sizeof(id), "d%zu", k);
		end_with(r, idx(d, id), t->output, t->error, t->exit_code, &out);
	}
	weft_t_expect_input_text(r, idx(d, "z"));
	weft_t_expect_input_text(r, idx(d, "one"));
	// A step with `with` renders a document: no text for it.
	cr_expect_null(weft_run_step_input_text(r, WEFT_REF(idx(d, "w")),
	    NULL, NULL));
	weft_out_fini(&out);
	weft_run_free(r);
	weft_def_free(d);
}

// big gets each output that is an array, object or string, and what it
// returns is written in its place.
static char *
text_big(void *arg, char *text, size_t len)
{
	int *calls = arg;

	(*calls)++;
	if (len < 10) {
		return (text);
	}
	free(text);
	return (weft_xstrdup("\"BIG\""));
}

Test(run, step_input_text_passes_outputs_through_big)
{
	weft_def *d = weft_t_def(
	    "{\"name\":\"b\",\"steps\":[{\"id\":\"a\",\"type\":\"echo\"},"
	    "{\"id\":\"b\",\"type\":\"echo\"},{\"id\":\"c\",\"type\":\"echo\"},"
	    "{\"id\":\"j\",\"type\":\"noop\",\"depends_on\":[\"a\",\"b\","
	    "\"c\"]}]}");
	weft_out  out;
	weft_run *r;
	char     *text;
	int       calls = 0;

	weft_out_init(&out);
	r = weft_run_alloc("RB", d, NULL, NULL, 0, &out);
	cr_assert_eq(weft_run_start(r, 0, &out), WEFT_OK);
	end_with(r, idx(d, "a"), "{\"long\":\"0123456789\"}", NULL, 0, &out);
	end_with(r, idx(d, "b"), "[1]", NULL, 0, &out);
	end_with(r, idx(d, "c"), "7", NULL, 0, &out); // a number: not asked
	text = weft_run_step_input_text(r, WEFT_REF(idx(d, "j")), text_big,
	    &calls);
	cr_assert_str_eq(text,
	    "{\"steps\":{\"a\":{\"status\":\"succeeded\",\"output\":\"BIG\"},"
	    "\"b\":{\"status\":\"succeeded\",\"output\":[1]},\"c\":{\"status\":"
	    "\"succeeded\",\"output\":7}},\"with\":{}}");
	cr_expect_eq(calls, 2);
	free(text);
	weft_out_fini(&out);
	weft_run_free(r);
	weft_def_free(d);
}

// ---- a failure after the attempt's deadline is its timeout ----

// A worker's sleep or exec stops at the attempt's deadline and reports a
// failure; its deadline starts after the dispatch, where the
// coordinator's timer does, so that failure comes once the timer is due,
// and on a loaded coordinator can be taken before it. Applied at or past
// the deadline, a failure ends the attempt timed out, whoever saw it
// first; before it, failed; a success stays a success.
static const struct late_result {
	uint32_t    timeout_ms;
	int64_t     at;        // when the result is applied (dispatched at 1000)
	bool        ok;
	bool        timed_out; // a step_timed_out before its step_failed
	const char *error;     // the step's error after it (NULL: succeeded)
} late_results[] = {
	{ 300, 1200, false, false, "sleep: timed out after 300 ms" },
	{ 300, 1299, false, false, "sleep: timed out after 300 ms" },
	{ 300, 1300, false, true, "timed out" },
	{ 300, 1700, false, true, "timed out" },
	{ 300, 1700, true, false, NULL },
	{ 0, 99000, false, false, "sleep: timed out after 300 ms" },
};
#define LATE_N (sizeof(late_results) / sizeof(late_results[0]))

Test(run, a_failure_past_the_deadline_is_a_timeout)
{
	for (size_t k = 0; k < LATE_N; k++) {
		const struct late_result *t = &late_results[k];
		char                      def[256];
		weft_out                  o;
		weft_run                 *r;
		weft_def                 *d;

		snprintf(def, sizeof(def),
		    "{\"name\":\"l\",\"steps\":[{\"id\":\"a\",\"type\":"
		    "\"sleep\",\"timeout_ms\":%u}]}",
		    t->timeout_ms);
		d = weft_t_def(def);
		weft_out_init(&o);
		r = weft_run_alloc("RL", d, NULL, NULL, 0, &o);
		cr_assert_eq(weft_run_start(r, 0, &o), WEFT_OK);
		cr_assert_eq(weft_run_dispatched(r, WEFT_REF(0), "w1", 1000, &o),
		    WEFT_OK);
		weft_result res = { .attempt = 1, .ok = t->ok,
			.output = t->ok ? json_null() : NULL,
			.error = t->ok ? NULL : "sleep: timed out after 300 ms",
			.node = "w1" };
		cr_assert_eq(weft_run_result(r, WEFT_REF(0), &res, t->at, &o),
		    WEFT_OK, "case %zu", k);
		cr_expect_eq(count_events(&o, WEFT_EV_STEP_TIMED_OUT),
		    t->timed_out ? 1 : 0, "case %zu", k);
		cr_expect_eq(count_events(&o, WEFT_EV_STEP_FAILED),
		    t->error != NULL ? 1 : 0, "case %zu", k);
		cr_expect_eq(r->steps[0].state, t->error != NULL
		        ? WEFT_STEP_FAILED : WEFT_STEP_SUCCEEDED, "case %zu", k);
		if (t->error != NULL) {
			cr_expect_str_eq(r->steps[0].error, t->error, "case %zu",
			    k);
		}
		cr_expect_eq(count_events(&o, WEFT_EV_STEP_STARTED), 1,
		    "case %zu: its start is logged too", k);
		weft_out_fini(&o);
		weft_run_free(r);
		weft_def_free(d);
	}
}
