// run_test: the pure run model: dependency resolution, data passing,
// failures and their propagation, retries, stale results, losses, cancel.
#include <criterion/criterion.h>
#include <string.h>

#include "def.h"
#include "run.h"

static weft_def *
def_of(const char *text)
{
	weft_def *def;
	char      err[512];
	cr_assert_eq(weft_def_parse(&def, text, strlen(text), err, sizeof(err)),
	    WEFT_OK, "definition: %s", err);
	return (def);
}

static long
idx(const weft_def *d, const char *id)
{
	long i = weft_def_find(d, id);
	cr_assert(i >= 0, "no step %s", id);
	return (i);
}

// count_events counts events of a type in the output.
static int
count_events(const weft_out *o, const char *type)
{
	int n = 0;
	for (size_t k = 0; k < o->nevents; k++) {
		n += strcmp(o->events[k].type, type) == 0;
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
	weft_def *def = def_of(diamond);
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
	cr_expect_eq(count_events(&o, "run_succeeded"), 1);
	cr_expect_eq(count_events(&o, "step_succeeded"), 4);
	json_t *out = weft_run_output(r);
	cr_expect(json_is_true(json_object_get(json_object_get(out, "d"), "done")));
	json_decref(out);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, failure_skips_dependents_and_fails_run)
{
	weft_def *def = def_of(diamond);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R2", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	finish(r, idx(def, "a"), json_null(), &o);
	fail(r, idx(def, "b"), "boom", &o);
	cr_expect_eq(r->steps[idx(def, "b")].state, WEFT_STEP_FAILED);
	cr_expect_eq(r->state, WEFT_RUN_RUNNING, "c still runs");
	finish(r, idx(def, "c"), json_null(), &o);
	cr_expect_eq(r->steps[idx(def, "d")].state, WEFT_STEP_SKIPPED);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	cr_expect_eq(count_events(&o, "run_failed"), 1);
	cr_expect_eq(count_events(&o, "step_skipped"), 1);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, trigger_all_done_runs_after_failure)
{
	weft_def *def = def_of(
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
	cr_expect_eq(r->steps[idx(def, "next")].state, WEFT_STEP_SKIPPED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, when_false_skips)
{
	weft_def *def = def_of(
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
	weft_def *def = def_of(
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
	cr_expect_str_eq(o.events[before].type, "result_ignored");
	cr_expect_eq(r->steps[0].state, WEFT_STEP_DISPATCHED);

	weft_result ok = { .attempt = 2, .ok = true, .node = "w2" };
	cr_expect_eq(weft_run_result(r, WEFT_REF(0), &ok, 2002, &o), WEFT_OK);
	cr_expect_eq(r->state, WEFT_RUN_SUCCEEDED);
	// The same result again (a re-send before our ack) is dropped
	// silently: at most one terminal event per attempt.
	before = o.nevents;
	cr_expect_eq(weft_run_result(r, WEFT_REF(0), &ok, 2003, &o), WEFT_ESTATE);
	cr_expect_eq(o.nevents, before);
	cr_expect_eq(count_events(&o, "step_succeeded"), 1);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, retries_exhausted_fail)
{
	weft_def *def = def_of(
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
	weft_def *def = def_of(
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
	cr_expect_eq(count_events(&o, "step_lost"), 1);
	cr_expect_eq(weft_run_lost(r, WEFT_REF(0), 21, &o), WEFT_ESTATE,
	    "nothing in flight to lose");
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, cancel_aborts_in_flight_and_cancels_rest)
{
	weft_def *def = def_of(diamond);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R8", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, WEFT_REF(idx(def, "a")), "w1", 10, &o);
	cr_expect_eq(weft_run_cancel(r, "test", &o), WEFT_OK);
	cr_expect_eq(r->state, WEFT_RUN_CANCELLED);
	cr_expect(has_effect(&o, WEFT_EFFECT_ABORT, idx(def, "a")));
	cr_expect_eq(count_events(&o, "step_cancelled"), 4);
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
	weft_def *def = def_of(diamond);
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
	weft_def *def = def_of(
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
	// skipped through the worklist, not the C stack.
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
	weft_def *def = def_of(buf);
	free(buf);
	weft_out o;
	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R11", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	fail(r, 0, "x", &o);
	cr_expect_eq(count_events(&o, "step_skipped"), (int) n - 1);
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
	weft_def *def = def_of(mapdef);
	weft_out  o;
	char      err[128];

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("M1", def,
	    json_pack("{s:[s,s,s]}", "xs", "a", "b", "c"), NULL, 0, &o);
	weft_run_start(r, 0, &o);
	cr_expect_eq(count_events(&o, "step_expanded"), 1);
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
	weft_def *def = def_of(mapdef);
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
	cr_expect_eq(r->steps[1].state, WEFT_STEP_SKIPPED);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, map_over_non_array_fails_and_empty_succeeds)
{
	weft_def *def = def_of(mapdef);
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
	weft_def *def = def_of(mapdef);
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
	weft_def *def = def_of(
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
		if (strcmp(o.events[k].type, "step_lost") == 0 ||
		    strcmp(o.events[k].type, "step_retry_scheduled") == 0) {
			cr_expect_str_eq(o.events[k].node, "wA", "%s",
			    o.events[k].type);
		}
	}
	cr_expect_str_eq(o.events[o.nevents - 1].node, "wB");
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, unit_names_parse_and_bound)
{
	weft_def *def = def_of(mapdef);
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
